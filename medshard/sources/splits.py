"""Keyed-hash split assignment, shared by the pipeline and by sources that carve a split.

The key is public and fixed per source, so every user gets the same split for the
same data, and one subject never lands in two splits.
"""

from __future__ import annotations

import hashlib
import hmac


def subject_unit_interval(source: str, subject_id: str) -> float:
    """A uniform number in [0, 1) from HMAC-SHA256(key="medshard-split:<source>", subject)."""
    mac = hmac.new(f"medshard-split:{source}".encode(), subject_id.encode(), hashlib.sha256)
    return int.from_bytes(mac.digest()[:8], "big") / 2**64


def hash_split(source: str, subject_id: str, fractions: dict[str, float]) -> str:
    """train/val/test by cumulative fractions (in that order) of the subject's keyed hash."""
    u = subject_unit_interval(source, subject_id)
    acc = 0.0
    last = "train"
    for name in ("train", "val", "test"):
        share = fractions.get(name, 0.0)
        if share <= 0:
            continue
        acc += share
        last = name
        if u < acc:
            return name
    return last
