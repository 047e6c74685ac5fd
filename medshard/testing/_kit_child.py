"""The child process of `medshard.testing.kit.start_build_fixtures`.

    python -m medshard.testing._kit_child WORKDIR REPEAT SLUG [SLUG ...]

Runs `build_fixtures` and leaves beside the build what the parent's `KitBuild` needs that
the build's own files do not hold: the logs and the sources' read traces. A source that
fails a check while the kit builds leaves its `ConformanceError` message instead.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

from medshard.testing.kit import ConformanceError, PendingKit, build_fixtures


def main(argv: list[str]) -> int:
    workdir, repeat, slugs = Path(argv[0]), argv[1] == "1", argv[2:]
    try:
        kit = build_fixtures(slugs, workdir, repeat=repeat)
    except ConformanceError as exc:
        (workdir / PendingKit.ERROR).write_text(str(exc))
        return 3
    (workdir / PendingKit.LOG).write_text(kit.log_text)
    (workdir / PendingKit.TRACES).write_bytes(pickle.dumps(kit.traces))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
