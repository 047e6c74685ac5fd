"""What a source's fixture is: a miniature raw copy in the real layout, and what it must build to.

A source names its fixture with `fixture = "package.module:FIXTURE"` (a `Fixture`). The
conformance kit (`medshard.testing.kit`) writes it, builds it, and holds the build to the
declaration: samples per split, the records broken on purpose and the stage each is
quarantined at, the rule-based filters, and the PHI markers that must never come out.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Fixture:
    """A source's miniature raw copy and the build it must give.

    `write(root)` writes the raw layout under `root` (the source root) from real
    recordings shipped inside packages; `real` and `illustrative` say which parts are
    which (the README's demo table is generated from them).
    """

    write: Callable[[Path], Any]
    samples: Mapping[str, int]  # split -> samples the build writes
    # record id (or "file:line" of an index row that made no record) -> stage
    quarantined: Mapping[str, str] = field(default_factory=dict)
    filtered: Mapping[str, int] = field(default_factory=dict)  # reason -> records
    phi_markers: tuple[str, ...] = ()  # strings planted in the raw files; never in any output
    options: Mapping[str, Any] = field(default_factory=dict)  # source options for the build
    # case name -> mutation of a fresh copy (medshard.testing.adversarial), for the cases
    # only this source's index format can express: outside_path, malformed_row, long_name
    adversarial: Mapping[str, Callable[[Path, Path], Any]] = field(default_factory=dict)
    real: str = ""
    illustrative: str = ""


def load_fixture(target: str) -> Fixture:
    """The `Fixture` at "package.module:NAME"."""
    module, _, attr = target.partition(":")
    fixture = getattr(importlib.import_module(module), attr or "FIXTURE")
    if not isinstance(fixture, Fixture):
        raise TypeError(f"{target} is not a medshard.testing.Fixture")
    return fixture
