"""`medshard demo OUT`: write every registered source's fixture, then build them all.

Layout: OUT/raw/<source>/ (the raw files, in each dataset's real layout, including the
records each fixture breaks on purpose) and OUT/build/ (manifest.json, index.parquet,
quarantine.jsonl, shards in both formats). Nothing here names a source: a source with a
`fixture` is in the demo.
"""

from __future__ import annotations

from pathlib import Path

from medshard.pipeline.build import BuildConfig, BuildResult, run_build
from medshard.sources.registry import available_sources, source_class
from medshard.testing.kit import write_fixtures


def demo_sources() -> list[str]:
    """Registered sources that declare a fixture."""
    return [s for s in available_sources() if source_class(s).fixture]


def run_demo(out: Path, workers: int = 1, progress: bool = True) -> BuildResult:
    slugs = demo_sources()
    fixtures = write_fixtures(slugs, out / "raw")
    config = BuildConfig(
        sources=slugs,
        data_root=out / "raw",
        out=out / "build",
        formats=("webdataset", "parquet"),
        workers=workers,
        shard_size=4 << 20,
        source_options={s: dict(f.options) for s, f in fixtures.items() if f.options},
        progress=progress,
    )
    return run_build(config)
