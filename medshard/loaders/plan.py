"""Which sample when: one epoch's plan per DDP rank and DataLoader worker, resumable.

A plan orders *ids* (one per sample draw) and asks a reader for the samples; it never
reads shards itself. Two plans, one per sampling mode (see `dataset.py` for what each
mode means to a user):

  - `ExactPlan` (without replacement): the epoch's base sequence of pieces (`assign.py`)
    dealt to rank x worker slots, each slot's samples through the shuffle buffer (and,
    when mixing sources by weight, one buffer per source interleaved by weight). An id is
    a base position.
  - `ReplacementPlan`: each slot cycles through its share of every source (reshuffled
    each pass) and draws the source of each sample by weight. An id is
    (source, pass, base position).

Everything is a pure function of integers, so the same code orders real samples in a
worker and, with a simulating reader, says which ids a slot has delivered after k.

Resume. A state names the generation (the base sequence: the epoch's shuffled shards,
or after an elastic resume the samples then left), the layout it was dealt on (world
size, workers), the samples each slot delivered in it, and the slot the next batch
comes from. Restored on:
  - the same layout: *deterministic*. Each slot recomputes its order on ids (no reading),
    the ids it already delivered become placeholders that are never read, and the first
    `delivered` outputs (exactly those placeholders) are dropped: the shuffle buffer and
    the weighted draws are where the interrupted run left them, so the resumed run yields
    the same sequence as one that never stopped. `ShardLoader` also starts the
    DataLoader's round-robin at the slot the next batch came from, so batches come in the
    same order too.
  - another layout (elastic): `ExactPlan` deals the samples not yet delivered (each once)
    as a new generation; `ReplacementPlan` draws the remaining number of samples afresh.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medshard.errors import UserError
from medshard.loaders.assign import (
    Layout,
    Piece,
    PieceIndex,
    derive_seed,
    order_slot,
    shuffled_pieces,
    weighted_interleave,
)
from medshard.loaders.options import SamplingOptions

Part = Sequence[tuple[int, Piece]]  # (first base position, piece), in read order
# a reader: (base position, sample) for every position of a part (any order; None for a
# sample that could not be read); the plan restores part order
Reader = Callable[[Part], Iterator[tuple[int, Any]]]
# the plan's internal reader: (id, sample) in part order; the tag makes ids unique
_Tagged = Callable[[Part, Hashable], Iterator[tuple[Hashable, Any]]]


@dataclass(frozen=True)
class Cursor:
    """Where a layout's iteration starts: generation, its base, per-slot skips, first slot."""

    pieces: list[Piece]
    generation: int
    total: int | None  # replacement: samples in this generation (None: the epoch's)
    skip: tuple[int, ...] | None
    next_slot: int = 0


def positions(part: Part) -> Iterator[int]:
    for base, (_, s, e) in part:
        yield from range(base, base + e - s)


class Delivered:
    """Ids a slot already delivered: one byte per base position per tag (an epoch of 10
    million samples costs 10 MB, not a set of 10 million tuples)."""

    def __init__(self, ids: Iterator[Hashable]) -> None:
        self.flags: dict[Hashable, bytearray] = {}
        for tag, pos in ids:  # type: ignore[misc]
            flags = self.flags.setdefault(tag, bytearray())
            if pos >= len(flags):
                flags.extend(bytes(max(pos + 1 - len(flags), len(flags))))
            flags[pos] = 1

    def __bool__(self) -> bool:
        return bool(self.flags)

    def __contains__(self, item: Hashable) -> bool:
        tag, pos = item  # type: ignore[misc]
        flags = self.flags.get(tag)
        return flags is not None and pos < len(flags) and flags[pos] == 1


def _in_order(part: Part, tag: Hashable, read: Reader, skip: Delivered) -> Iterator[
        tuple[Hashable, Any]]:
    """(id, sample) in part order; ids in `skip` come as placeholders and are not read."""
    if skip:
        wanted: list[tuple[int, Piece]] = []
        for base, (shard, s, e) in part:
            run = None
            for j in range(e - s + 1):
                free = j < e - s and (tag, base + j) not in skip
                if free and run is None:
                    run = j
                elif not free and run is not None:
                    wanted.append((base + run, (shard, s + run, s + j)))
                    run = None
    else:
        wanted = list(part)
    real = read(wanted) if wanted else iter(())
    pending: dict[int, Any] = {}
    for pos in positions(part):
        if skip and (tag, pos) in skip:
            yield (tag, pos), None
            continue
        while pos not in pending:
            got = next(real, None)
            if got is None:  # the reader ended early: nothing more of this part
                return
            pending[got[0]] = got[1]
        yield (tag, pos), pending.pop(pos)


def _simulate(part: Part, tag: Hashable) -> Iterator[tuple[Hashable, Any]]:
    return (((tag, pos), None) for pos in positions(part))


class Plan:
    """The shared part of both plans: the epoch, the saved state, per-layout cursors."""

    replacement = False

    def __init__(self, counts: Sequence[int], shard_source: Sequence[int],
                 weights: Sequence[float], mixing: bool, options: SamplingOptions) -> None:
        self.counts = list(counts)
        self.shard_source = list(shard_source)
        self.weights = list(weights)
        self.mixing = mixing
        self.seed = options.seed
        self.shuffle = options.shuffle
        self.buffer_size = options.buffer_size if options.shuffle else 0
        self.equalize = options.equalize
        self.samples_per_epoch = options.samples_per_epoch
        self.epoch = 0
        self._saved: dict[str, Any] | None = None
        self._cursors: dict[tuple[int, int], Cursor] = {}

    # -- epoch and cursor ------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self._saved is not None and self._saved["epoch"] != epoch:
            self._saved = None
            self._cursors.clear()

    def fresh(self) -> Cursor:
        return Cursor(shuffled_pieces(self.counts, self.seed, self.epoch, self.shuffle), 0, None,
                      None, 0)

    def cursor(self, world: int, workers: int) -> Cursor:
        """Where an iteration on this layout starts (the saved state resolved for it)."""
        s = self._saved
        if s is None or s["epoch"] != self.epoch:
            return self.fresh()
        key = (world, workers)
        if key not in self._cursors:
            pieces = ([tuple(p) for p in s["base"]] if s["base"] is not None
                      else self.fresh().pieces)
            saved = Cursor(pieces, s["generation"], s["total"], tuple(s["consumed"]),  # type: ignore[arg-type]
                           s["next_worker"] % s["num_workers"])
            if (s["world_size"], s["num_workers"]) == key:
                self._cursors[key] = saved
            else:
                self._cursors[key] = self.elastic(saved, s["world_size"], s["num_workers"])
        return self._cursors[key]

    def layout(self, cursor: Cursor, world: int, workers: int) -> Layout:
        total = cursor.total
        if total is None:
            total = self._epoch_total(cursor)
        return Layout(total, world, workers, self.equalize)

    def _epoch_total(self, cursor: Cursor) -> int:
        return sum(e - s for _, s, e in cursor.pieces)

    def sizes(self, world: int, workers: int) -> list[int]:
        """Samples each slot of a rank yields in the coming iteration."""
        cur = self.cursor(world, workers)
        sizes = self.layout(cur, world, workers).worker_sizes
        if cur.skip is not None:
            sizes = [max(n - k, 0) for n, k in zip(sizes, cur.skip, strict=True)]
        return sizes

    # -- ordering --------------------------------------------------------------------------

    def slot_seed(self, cursor: Cursor, rank: int, slot: int) -> int:
        return derive_seed(self.seed, self.epoch, cursor.generation, rank, slot)

    def ordered(self, cursor: Cursor, layout: Layout, rank: int, slot: int,
                read: _Tagged) -> Iterator[tuple[Hashable, Any]]:
        raise NotImplementedError

    def stream(self, rank: int, slot: int, world: int, workers: int, read: Reader) -> tuple[
            Iterator[Any], int]:
        """(samples slot `slot` of `rank` yields next, in order; how many).

        A sample the reader could not supply (a skipped shard) comes as None.
        """
        cur = self.cursor(world, workers)
        layout = self.layout(cur, world, workers)
        n = layout.worker_sizes[slot]
        skip = cur.skip[slot] if cur.skip is not None else 0
        simulated = self.ordered(cur, layout, rank, slot, _simulate) if skip else iter(())
        done = Delivered(i for i, _ in itertools.islice(simulated, skip))

        def tagged(part: Part, tag: Hashable) -> Iterator[tuple[Hashable, Any]]:
            return _in_order(part, tag, read, done)

        order = itertools.islice(self.ordered(cur, layout, rank, slot, tagged), skip, n)
        return (item for _, item in order), max(n - skip, 0)

    # -- resume ----------------------------------------------------------------------------

    def state(self, world: int, workers: int, consumed: Sequence[int],
              next_slot: int) -> dict[str, Any]:
        """The plan's part of a resume state after each slot delivered `consumed` more."""
        cur = self.cursor(world, workers)
        prior = cur.skip or (0,) * workers
        fresh = cur.generation == 0
        return {
            "epoch": self.epoch,
            "generation": cur.generation,
            "base": None if fresh else [list(p) for p in cur.pieces],
            "total": self.layout(cur, world, workers).total if self.replacement else None,
            "skip": None,
            "world_size": world,
            "num_workers": workers,
            "consumed": [a + b for a, b in zip(prior, consumed, strict=True)],
            "next_worker": next_slot,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        consumed = list(state["consumed"])
        if state.get("skip"):  # a replacement state saved before issue 19 kept these apart
            consumed = [a + b for a, b in zip(state["skip"], consumed, strict=True)]
        if len(consumed) != state["num_workers"]:
            raise UserError("this loader state is damaged (consumed counts do not match "
                            "num_workers); resume from another checkpoint")
        self.seed = state["seed"]
        self.epoch = state["epoch"]
        self._saved = {
            "epoch": state["epoch"], "generation": state["generation"], "base": state["base"],
            "total": state.get("total"), "world_size": state["world_size"],
            "num_workers": state["num_workers"], "consumed": consumed,
            "next_worker": state.get("next_worker", 0),
        }
        self._cursors.clear()

    def elastic(self, saved: Cursor, world: int, workers: int) -> Cursor:
        raise NotImplementedError


class ExactPlan(Plan):
    """Without replacement: every sample of the base sequence once (up to equalization)."""

    def groups(self, part: Part) -> list[Part]:
        if not self.mixing:
            return [part]
        groups: list[list[tuple[int, Piece]]] = [[] for _ in self.weights]
        for item in part:
            groups[self.shard_source[item[1][0]]].append(item)
        return groups  # type: ignore[return-value]

    def ordered(self, cursor: Cursor, layout: Layout, rank: int, slot: int,
                read: _Tagged) -> Iterator[tuple[Hashable, Any]]:
        part = PieceIndex(cursor.pieces).slice(*layout.slot_range(rank, slot))
        return order_slot(
            [(lambda g=g: read(g, 0)) for g in self.groups(part)],
            self.weights if self.mixing else None,
            self.buffer_size,
            self.slot_seed(cursor, rank, slot),
        )

    def elastic(self, saved: Cursor, world: int, workers: int) -> Cursor:
        """The samples `saved` had not delivered on its layout, as the next generation."""
        index = PieceIndex(saved.pieces)
        old = Layout(index.total, world, workers, self.equalize)
        delivered = bytearray(index.total)
        for rank in range(old.world_size):
            for slot, n in enumerate(saved.skip or ()):
                for (_, pos), _ in itertools.islice(
                        self.ordered(saved, old, rank, slot, _simulate), n):
                    delivered[pos] = 1  # type: ignore[index]
        return Cursor(index.rest(delivered), saved.generation + 1, None, None, 0)


class ReplacementPlan(Plan):
    """With replacement: sources drawn by weight, each slot cycling through its shares."""

    replacement = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.per_source = [0] * len(self.weights)
        for shard, c in enumerate(self.counts):
            self.per_source[self.shard_source[shard]] += c
        self.active = [i for i, w in enumerate(self.weights) if w > 0 and self.per_source[i] > 0]

    def _epoch_total(self, cursor: Cursor) -> int:
        return self.samples_per_epoch or sum(self.counts)

    def share(self, source: int, layout: Layout, rank: int, slot: int, gen: int) -> Part:
        """One slot's share of one source (at least one sample), a different slice each epoch."""
        counts = [c if self.shard_source[i] == source else 0 for i, c in enumerate(self.counts)]
        index = PieceIndex(shuffled_pieces(counts, self.seed, (self.epoch, gen, source),
                                           self.shuffle))
        slots = layout.world_size * layout.num_workers
        size = max(1, index.total // slots)
        start = ((rank * layout.num_workers + slot) * size) % max(index.total, 1)
        return index.slice(start, start + size)

    def ordered(self, cursor: Cursor, layout: Layout, rank: int, slot: int,
                read: _Tagged) -> Iterator[tuple[Hashable, Any]]:
        if not self.active:
            raise UserError("no selected source with a weight > 0 has any sample")
        seed = self.slot_seed(cursor, rank, slot)

        def source_stream(src: int) -> Iterator[tuple[Hashable, Any]]:
            share = self.share(src, layout, rank, slot, cursor.generation)
            for p in itertools.count():  # cycle through the share, reshuffled each pass
                yield from order_slot([lambda p=p: read(share, (src, p))], None,
                                      self.buffer_size, derive_seed(seed, src, p))

        return weighted_interleave([source_stream(i) for i in self.active],
                                   [self.weights[i] for i in self.active],
                                   random.Random(derive_seed(seed, "mix")))

    def elastic(self, saved: Cursor, world: int, workers: int) -> Cursor:
        """Fresh draws of the remaining number of samples, as the next generation."""
        old = self.layout(saved, world, workers)
        left = old.world_size * (old.per_rank - sum(saved.skip or ()))
        return Cursor(saved.pieces, saved.generation + 1, max(left, 0), None, 0)
