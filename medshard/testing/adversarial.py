"""Adversarial mutations of a source's fixture: what a hostile or unlucky raw tree does.

Each mutation changes a fresh copy of the fixture and says what the build must make of
it (`Expect`). The kit (`check_adversarial`) applies every mutation that applies to the
source, builds once, and holds the build to the expectations, and to two rules for
every case: no byte of a file outside the source root reaches any output, and the
build finishes (a bad row or a bad record never stops it).

Generic mutations apply to every source (`GENERIC`): a payload file replaced by a
symlink to a file outside the root. Source-specific ones are declared on the fixture
(`Fixture.adversarial`, case name -> mutation), for what only the source's own index
format can express: a `..` path in its index CSV or header (`outside_path`), a
malformed index row (`malformed_row`), a raw file name longer than a tar header holds
(`long_name`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# planted in every file outside the root; found in an output, it proves an outside read
OUTSIDE_MARKER = b"MEDSHARD-OUTSIDE-ROOT-MARKER-5c1e"


@dataclass(frozen=True)
class Expect:
    """What the build of a mutated fixture must show.

    `quarantined`: record id -> stage, or `"<file>:<line>"` -> "list" for an index row
    that makes no record. `message_has`: record id (or file:line) -> a fragment of its
    quarantine message. `long_keys`: record ids whose file names are too long for a tar
    header: written, with bounded keys and the full name in the sample's `full_key`.
    """

    quarantined: Mapping[str, str] = field(default_factory=dict)
    message_has: Mapping[str, str] = field(default_factory=dict)
    long_keys: tuple[str, ...] = ()

    def merged(self, other: Expect) -> Expect:
        return Expect({**self.quarantined, **other.quarantined},
                      {**self.message_has, **other.message_has},
                      self.long_keys + other.long_keys)


# (source root, folder outside the root to plant files in) -> expectations
Mutation = Callable[[Path, Path], Expect]


def plant_outside(outside: Path, name: str, data: bytes) -> Path:
    """Write `data` + OUTSIDE_MARKER to `outside/name` (a file the source must never read)."""
    outside.mkdir(parents=True, exist_ok=True)
    path = outside / name
    path.write_bytes(data + OUTSIDE_MARKER)
    return path


def symlink_out(root: Path, rel: str, outside: Path) -> None:
    """Replace `root/rel` with a symlink to a marked copy of it outside the root."""
    target = root / rel
    secret = plant_outside(outside, f"linked-{target.name}", target.read_bytes())
    target.unlink()
    os.symlink(secret, target)


def csv_line_count(path: Path) -> int:
    """Physical lines of a text file (the line number the next appended row gets, minus 1)."""
    data = path.read_bytes()
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


__all__ = ["OUTSIDE_MARKER", "Expect", "Mutation", "csv_line_count", "plant_outside",
           "symlink_out"]
