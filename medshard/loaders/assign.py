"""Who reads what: an epoch's global sample order, split over DDP ranks and DataLoader workers.

An epoch is a *base sequence* of pieces `(shard, start, end)` (sample ordinals
within a shard, end exclusive): the selected shards in an order shuffled by
`(seed, epoch)`, or, after a resume, the samples not yet delivered. Positions
0..N-1 index that sequence.

Equalization (every rank yields the same number of samples, so DDP never hangs):
  - `"drop"`: each rank gets `N // world_size` samples; the last `N % world_size`
    positions of the shuffled sequence (fewer than world_size samples) are left out
    this epoch (a different few each epoch).
  - `"repeat"`: each rank gets `ceil(N / world_size)`; the sequence wraps around, so
    fewer than world_size samples are seen twice.
Rank r reads the contiguous range `[r * per_rank, (r + 1) * per_rank)`, split into
near-equal contiguous ranges per worker; worker sizes are the same on every rank,
so every rank yields the same number of batches.

Everything here is a pure function of integers: the same code orders real samples
in a worker and simulates the order when a state dict is taken or restored.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
Piece = tuple[int, int, int]  # (shard index, first sample ordinal, end ordinal)

EQUALIZE_POLICIES = ("drop", "repeat")


def derive_seed(*parts: object) -> int:
    """A 64-bit seed that depends only on `parts` (stable across processes and runs)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def shuffled_pieces(counts: Sequence[int], seed: int, epoch: object, shuffle: bool) -> list[Piece]:
    """Every non-empty shard as one piece, in an order fixed by (seed, epoch).

    `epoch` may be any repr-stable value (the replacement mode salts it per source)."""
    order = list(range(len(counts)))
    if shuffle:
        random.Random(derive_seed(seed, epoch, "shards")).shuffle(order)
    return [(s, 0, counts[s]) for s in order if counts[s] > 0]


def count(pieces: Iterable[Piece]) -> int:
    return sum(end - start for _, start, end in pieces)


def even_sizes(n: int, parts: int) -> list[int]:
    """`n` split into `parts` sizes that differ by at most one, larger ones first."""
    q, r = divmod(n, parts)
    return [q + (1 if i < r else 0) for i in range(parts)]


@dataclass(frozen=True)
class Layout:
    """How an epoch of `total` positions is dealt to world_size x num_workers slots."""

    total: int
    world_size: int
    num_workers: int
    equalize: str = "drop"

    @property
    def per_rank(self) -> int:
        if self.equalize == "repeat":
            return -(-self.total // self.world_size)
        return self.total // self.world_size

    @property
    def worker_sizes(self) -> list[int]:
        return even_sizes(self.per_rank, self.num_workers)

    def slot_range(self, rank: int, worker: int) -> tuple[int, int]:
        """Global positions [start, stop) of one worker on one rank (may pass `total`: wraps)."""
        sizes = self.worker_sizes
        start = rank * self.per_rank + sum(sizes[:worker])
        return start, start + sizes[worker]


class PieceIndex:
    """Maps base positions to (shard, ordinal) and back to pieces."""

    def __init__(self, pieces: Sequence[Piece]) -> None:
        self.pieces = list(pieces)
        self.offsets: list[int] = []
        acc = 0
        for _, start, end in self.pieces:
            self.offsets.append(acc)
            acc += end - start
        self.total = acc

    def locate(self, pos: int) -> tuple[int, int]:
        """(piece index, shard ordinal) of base position `pos` (0 <= pos < total)."""
        i = bisect_right(self.offsets, pos) - 1
        return i, self.pieces[i][1] + pos - self.offsets[i]

    def slice(self, start: int, stop: int) -> list[tuple[int, Piece]]:
        """(first base position, piece) for global positions [start, stop), wrapping past total."""
        out: list[tuple[int, Piece]] = []
        pos = start
        while pos < stop and self.total:
            base = pos % self.total
            i, ordinal = self.locate(base)
            shard, _, end = self.pieces[i]
            take = min(end - ordinal, stop - pos)
            out.append((base, (shard, ordinal, ordinal + take)))
            pos += take
        return out

    def rest(self, consumed: bytearray) -> list[Piece]:
        """The pieces of base positions whose `consumed` flag is 0, in base order."""
        out: list[Piece] = []
        for (shard, start, _end), off in zip(self.pieces, self.offsets, strict=True):
            run_start = None
            n = _end - start
            for j in range(n + 1):
                free = j < n and not consumed[off + j]
                if free and run_start is None:
                    run_start = j
                elif not free and run_start is not None:
                    out.append((shard, start + run_start, start + j))
                    run_start = None
        return out


def buffer_shuffle(items: Iterable[T], size: int, rng: random.Random) -> Iterator[T]:
    """Shuffle through a buffer of at most `size` items; the order depends only on the count.

    The first `size` items fill the buffer; each later item replaces a uniformly chosen
    buffered one, which is yielded; the remainder is shuffled at the end.
    """
    if size <= 1:
        yield from items
        return
    buf: list[T] = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        j = rng.randrange(size)
        out, buf[j] = buf[j], item
        yield out
    rng.shuffle(buf)
    yield from buf


def weighted_interleave(
    streams: Sequence[Iterator[T]], weights: Sequence[float], rng: random.Random
) -> Iterator[T]:
    """Draw from the streams with probability proportional to weight, until all are exhausted.

    An exhausted stream leaves the draw; the others keep their relative weights.
    """
    active = [i for i, w in enumerate(weights) if w > 0]
    while active:
        total = sum(weights[i] for i in active)
        x = rng.random() * total
        pick = active[-1]
        for i in active:
            x -= weights[i]
            if x < 0:
                pick = i
                break
        try:
            yield next(streams[pick])
        except StopIteration:
            active.remove(pick)


def order_slot(
    groups: Sequence[Callable[[], Iterator[T]]],
    weights: Sequence[float] | None,
    buffer_size: int,
    seed: int,
) -> Iterator[T]:
    """The order one worker yields its items in.

    `groups` are item streams (one per source when mixing by weight, else one); each is
    buffer-shuffled, then interleaved by weight. Used both on real samples and, with the
    same arguments, on plain positions to simulate what a worker has yielded.
    """
    shuffled = [
        buffer_shuffle(make(), buffer_size, random.Random(derive_seed(seed, "buffer", i)))
        for i, make in enumerate(groups)
    ]
    if len(shuffled) == 1:
        return shuffled[0]
    w = list(weights) if weights is not None else [1.0] * len(shuffled)
    return weighted_interleave(shuffled, w, random.Random(derive_seed(seed, "mix")))


def consumed_per_worker(
    worker_sizes: Sequence[int], batch_size: int, batches: int, drop_last: bool
) -> list[int]:
    """Samples each DataLoader worker has delivered after `batches` batches (see `round_robin`)."""
    return round_robin(worker_sizes, batch_size, batches, drop_last)[0]


def round_robin(
    slot_sizes: Sequence[int], batch_size: int, batches: int, drop_last: bool, first: int = 0
) -> tuple[list[int], int]:
    """(samples each slot has delivered, the slot the next batch comes from) after `batches`
    batches, when DataLoader worker i plays slot `(first + i) % len(slot_sizes)`.

    PyTorch's DataLoader (in_order=True, the default) takes batches from workers in
    round-robin order starting at worker 0 and skips a worker once it is exhausted;
    each worker batches its own samples.
    """
    n = len(slot_sizes)
    order = [(first + i) % n for i in range(n)]
    n_batches = [(s // batch_size if drop_last else -(-s // batch_size)) for s in slot_sizes]
    taken = [0] * n
    left = batches
    last: int | None = None
    while left > 0 and any(t < nb for t, nb in zip(taken, n_batches, strict=True)):
        for k in order:
            if left and taken[k] < n_batches[k]:
                taken[k] += 1
                left -= 1
                last = k
    consumed = [min(t * batch_size, s) for t, s in zip(taken, slot_sizes, strict=True)]
    if last is None:
        return consumed, first % n if n else 0
    at = order.index(last)
    for step in range(1, n + 1):
        k = order[(at + step) % n]
        if taken[k] < n_batches[k]:
            return consumed, k
    return consumed, order[(at + 1) % n]
