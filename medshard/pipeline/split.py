"""Split assignment: the source's official split, else a keyed hash of the subject id."""

from __future__ import annotations

from medshard.sources.splits import hash_split

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}


def assign_split(
    source: str, subject_id: str, official: str | None, fractions: dict[str, float]
) -> str:
    return official if official is not None else hash_split(source, subject_id, fractions)
