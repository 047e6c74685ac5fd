"""Shard planning: records are cut into shards by estimated size before any payload is read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ShardPlan:
    """One unit of work: these records (any record-like item), in this order, into this shard."""

    source: str
    split: str
    index: int
    records: list[Any] = field(default_factory=list)

    @property
    def stem(self) -> str:
        """`<source>/<split>/<source>-<split>-NNNNNN` relative to the build directory."""
        return f"{self.source}/{self.split}/{self.source}-{self.split}-{self.index:06d}"


def plan_shards(
    source: str,
    split: str,
    records: Sequence[Any],
    target_bytes: int,
    estimate: Callable[[Any], int],
    max_records: int | None = None,
) -> list[ShardPlan]:
    """Greedy cut of `records` (already in their final order) at `target_bytes` estimated output.

    A record is never split across shards; a record larger than the target gets a shard alone.
    """
    plans: list[ShardPlan] = []
    current = ShardPlan(source, split, 0)
    size = 0
    for rec in records:
        est = estimate(rec)
        full = size + est > target_bytes or (max_records and len(current.records) >= max_records)
        if current.records and full:
            plans.append(current)
            current = ShardPlan(source, split, len(plans))
            size = 0
        current.records.append(rec)
        size += est
    if current.records:
        plans.append(current)
    return plans
