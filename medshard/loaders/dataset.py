"""`ShardDataset`: a PyTorch IterableDataset over a medshard build (local or any fsspec URL).

Each epoch has one global order, a pure function of (seed, epoch, resume state):
shards shuffled by (seed, epoch), dealt as contiguous ranges to ranks and then
workers (see `assign.py` for the equalization policy), each worker's samples
passed through a shuffle buffer of `buffer_size` raw (undecoded) samples.

Modes:
  - without replacement (default): every selected sample once per epoch, up to the
    equalization (fewer than world_size samples dropped or repeated). `weights`
    then only decide how a worker interleaves its sources (more of the heavy
    source early); proportions over a whole epoch are the sources' own sizes.
  - `replacement=True`: each worker draws the source of every sample with
    probability proportional to `weights`, then takes the next sample of its
    share of that source, cycling through the share (reshuffled each pass).
    A share is 1/(world_size x workers) of the source's shuffled samples (at least
    one), a different slice each epoch. An epoch is `samples_per_epoch` samples
    (default: the selected total).

Memory: a worker holds the shards it is reading (remote ones in memory, local ones
memory-mapped, so payload tensors are views of the page cache) and `buffer_size`
samples per source stream; nothing else.

Resume (`state_dict` / `load_state_dict`; with worker processes use `ShardLoader`,
whose state counts delivered batches): see `state_dict` for what holds.
"""

from __future__ import annotations

import collections
import inspect
import itertools
import mmap
import os
import random
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from medshard.errors import UserError
from medshard.loaders.assign import (
    EQUALIZE_POLICIES,
    Layout,
    Piece,
    PieceIndex,
    derive_seed,
    order_slot,
    shuffled_pieces,
    weighted_interleave,
)
from medshard.loaders.decode import (
    RawSample,
    SampleDecoder,
    iter_parquet_raw,
    iter_tar_groups,
    parquet_rows,
)
from medshard.loaders.manifest import (
    Selection,
    apply_sample_filters,
    read_key_list,
    read_manifest,
    select_shards,
)
from medshard.loaders.remote import Buffer, ShardError, ShardStore, is_local
from medshard.loaders.views import ECG_VIEWS, LABEL_VIEWS
from medshard.schemas.vocabulary import load_vocabulary

STATE_FORMAT = "medshard.loader/1"
SHARD_FIELD = "__shard__"  # set on raw samples while they travel to decoding; never yielded


class SampleError(RuntimeError):
    """A sample failed to decode or transform; the message names its shard and key."""


def detach(sample: Any) -> Any:
    """`sample` with every memoryview (of a mapped shard) turned into bytes, so it pickles."""
    if isinstance(sample, memoryview):
        return sample.tobytes()
    if isinstance(sample, dict):
        return {k: detach(v) for k, v in sample.items()}
    if isinstance(sample, list):
        return [detach(v) for v in sample]
    if isinstance(sample, tuple):
        return tuple(detach(v) for v in sample)
    return sample


def world_from_env() -> tuple[int, int]:
    """(rank, world_size) from torch.distributed if initialized, else RANK/WORLD_SIZE, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class ShardDataset(IterableDataset):
    """Streams decoded samples of one build's shards; see the module docstring.

    `source` is a build directory, its manifest.json, or an fsspec URL of either.
    Filters: `split`, `sources`, `modalities` select shards; `labels` (any of these
    concept ids), `filter` (a predicate over index.parquet rows) and `keys` (sample
    keys, or the path/URL of a few-shot manifest from `medshard fewshot`) select
    samples, counted from the build's index so that ranks stay equal. `decode_threads` > 0
    decodes that many samples at once on threads (worth it for JPEG/PNG when a process
    has spare cores; order is kept). `verify`: sha256 of shards fetched over the
    network ("remote", the default: local files were checked when downloaded), of
    every shard read (True), of each shard the first time this process reads it
    ("once": catches bit rot in a local build at the cost of one full read per shard
    and process), or none (False); sizes and sample counts are always checked.
    `label_names` are the unified concept ids in the order of each sample's `labels` and
    `label_mask` vectors. A sample is a dict: key, source, modality, split, one entry per
    payload role, labels, label_mask and `meta`: the source's metadata (flat) plus
    subject, task, source_labels, provenance and `payloads` (each role's descriptor).
    Views (`medshard.loaders.views`): `ecg_view` ("full", "climb-paper", "ecg-jepa"),
    `label_view` ("source", or "climb" for CLIMB's merged classes), and
    `apply_rescale` (images stored without a fractional modality rescale come back as
    float32 physical values).
    """

    def __init__(
        self,
        source: str,
        split: str | Iterable[str] | None = "train",
        sources: str | Iterable[str] | None = None,
        weights: Mapping[str, float] | None = None,
        modalities: str | Iterable[str] | None = None,
        labels: str | Iterable[str] | None = None,
        filter: Callable[[Mapping[str, Any]], bool] | None = None,
        keys: str | Iterable[str] | None = None,
        shuffle: bool = True,
        seed: int = 0,
        buffer_size: int = 256,
        decode: bool = True,
        transform: Callable[[Any], Any] | None = None,
        decode_threads: int = 0,
        cache_dir: str | None = None,
        cache_bytes: int = 20 << 30,
        format: str = "auto",
        replacement: bool = False,
        samples_per_epoch: int | None = None,
        equalize: str = "drop",
        verify: bool | str = "remote",
        on_error: str = "raise",
        rank: int | None = None,
        world_size: int | None = None,
        ecg_view: str = "full",
        label_view: str = "source",
        apply_rescale: bool = False,
    ) -> None:
        super().__init__()
        if equalize not in EQUALIZE_POLICIES:
            raise UserError(f"equalize={equalize!r} is not one of {EQUALIZE_POLICIES}")
        if on_error not in ("raise", "skip"):
            raise UserError(f"on_error={on_error!r} is not 'raise' or 'skip'")
        if ecg_view not in ECG_VIEWS:
            raise UserError(f"ecg_view={ecg_view!r} is not one of {', '.join(ECG_VIEWS)}")
        if label_view not in LABEL_VIEWS:
            raise UserError(f"label_view={label_view!r} is not one of {', '.join(LABEL_VIEWS)}")
        manifest, base = read_manifest(source)
        self._decoder_options = {
            "concepts": {s: m.concepts for s, m in manifest.sources.items() if m.concepts is not None},
            "ecg_view": ecg_view,
            "label_view": label_view,
            "apply_rescale": apply_rescale,
        }
        if weights is not None and sources is None:
            sources = [s for s, w in weights.items() if w > 0]
        refs = select_shards(manifest, base, split, sources, modalities, format)
        self.selection: Selection = apply_sample_filters(
            refs, base, labels, filter, None if keys is None else read_key_list(keys)
        )
        if not self.selection.shards:
            raise UserError(
                f"no shards in {source} match split={split!r} sources={sources!r} "
                f"modalities={modalities!r}"
            )
        names = self.selection.sources()
        if weights is not None:
            unknown = set(weights) - set(names)
            if unknown:
                raise UserError(f"weights name sources not selected: {sorted(unknown)}")
        self.weights = [float((weights or {}).get(s, 1.0 if weights is None else 0.0)) for s in names]
        if not replacement and weights is not None and min(self.weights) <= 0:
            raise UserError(
                "without replacement every selected source needs a weight > 0 (each sample is "
                "read once per epoch); drop the source from `sources` or give it a weight"
            )
        self.source_names = names
        # what each position of a sample's `labels` / `label_mask` vector means
        self.label_names: list[str] = list(load_vocabulary().concept_ids)
        self.mixing = weights is not None and len(names) > 1
        self.shuffle = shuffle
        self.seed = seed
        self.buffer_size = buffer_size if shuffle else 0
        self.decode = decode
        self.transform = transform
        self.decode_threads = decode_threads
        self.replacement = replacement
        self.samples_per_epoch = samples_per_epoch
        self.equalize = equalize
        self.on_error = on_error
        self.store = ShardStore(cache_dir, cache_bytes, verify)
        self.epoch = 0
        self._explicit_world = (rank, world_size)
        self.rank, self.world_size = 0, 1
        self.resolve_world()
        self._resume: dict[str, Any] | None = None
        self._delivered = 0  # samples yielded when iterated in this process (no workers)
        self._iterated_here = False
        self._decoder: SampleDecoder | None = None
        self._shard_source = [self.source_names.index(s.source) for s in self.selection.shards]

    # -- configuration -----------------------------------------------------------------

    def resolve_world(self) -> None:
        """Read rank and world size (explicit arguments win); call after init_process_group."""
        rank, world = self._explicit_world
        env_rank, env_world = world_from_env()
        self.rank = env_rank if rank is None else rank
        self.world_size = env_world if world is None else world

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields (same seed+epoch, same order)."""
        self.epoch = epoch
        self._delivered = 0
        if self._resume is not None and self._resume["epoch"] != epoch:
            self._resume = None
        self.resolve_world()

    def __len__(self) -> int:
        """Samples this rank yields per epoch (all its workers together)."""
        return self.layout(1).per_rank

    @property
    def total_samples(self) -> int:
        """Samples selected (after filters), before equalization."""
        return sum(self.selection.counts)

    # -- the epoch's plan --------------------------------------------------------------

    def _base(self) -> tuple[list[Piece], int, int | None]:
        """(base pieces, generation, epoch total or None) for the current epoch."""
        r = self._resume
        if r is not None and r["epoch"] == self.epoch:
            pieces = [tuple(p) for p in r["base"]] if r["base"] is not None else None
            if pieces is None:
                pieces = shuffled_pieces(self.selection.counts, self.seed, self.epoch, self.shuffle)
            return pieces, r["generation"], r.get("total")  # type: ignore[return-value]
        return shuffled_pieces(self.selection.counts, self.seed, self.epoch, self.shuffle), 0, None

    def layout(self, num_workers: int, world_size: int | None = None) -> Layout:
        pieces, _, total = self._base()
        if total is None:
            total = self.samples_per_epoch if self.replacement and self.samples_per_epoch else None
        if total is None:
            total = sum(e - s for _, s, e in pieces)
        return Layout(total, world_size or self.world_size, num_workers, self.equalize)

    def worker_sizes(self, num_workers: int) -> list[int]:
        """Samples each worker of this rank yields in the coming iteration."""
        sizes = self.layout(num_workers).worker_sizes
        r = self._resume
        if self.replacement and r is not None and r["epoch"] == self.epoch and r.get("skip"):
            if len(r["skip"]) == num_workers:
                sizes = [n - k for n, k in zip(sizes, r["skip"], strict=True)]
        return sizes

    def _slot_seed(self, generation: int, rank: int, worker: int) -> int:
        return derive_seed(self.seed, self.epoch, generation, rank, worker)

    def _exact_groups(
        self, index: PieceIndex, layout: Layout, rank: int, worker: int
    ) -> list[list[tuple[int, Piece]]]:
        """A slot's pieces (with base positions), one group per source when mixing."""
        part = index.slice(*layout.slot_range(rank, worker))
        if not self.mixing:
            return [part]
        groups: list[list[tuple[int, Piece]]] = [[] for _ in self.source_names]
        for item in part:
            groups[self._shard_source[item[1][0]]].append(item)
        return groups

    def _source_share(self, source: int, layout: Layout, rank: int, worker: int, gen: int) -> list[tuple[int, Piece]]:
        """With replacement: this slot's share of one source (at least one sample)."""
        counts = [c if self._shard_source[i] == source else 0 for i, c in enumerate(self.selection.counts)]
        index = PieceIndex(shuffled_pieces(counts, self.seed, (self.epoch, gen, source), self.shuffle))
        slots = layout.world_size * layout.num_workers
        size = max(1, index.total // slots)
        slot = rank * layout.num_workers + worker
        start = (slot * size) % max(index.total, 1)
        return index.slice(start, start + size)

    # -- reading -----------------------------------------------------------------------

    def _fetch(self, shard: int) -> Buffer | None:
        ref = self.selection.shards[shard]
        try:
            return self.store.fetch(ref)
        except ShardError as e:
            if self.on_error == "raise":
                raise
            warnings.warn(f"skipping: {e}", stacklevel=2)
            return None

    def _read(self, part: Sequence[tuple[int, Piece]]) -> Iterator[tuple[int, RawSample]]:
        """(base position, raw sample) for each position of `part`, one shard fetch per run.

        While a remote shard is being read, the next one downloads on a thread.
        """
        runs: list[tuple[int, Sequence[tuple[int, Piece]]]] = []
        for item in part:
            if runs and runs[-1][0] == item[1][0]:
                runs[-1][1].append(item)  # type: ignore[attr-defined]
            else:
                runs.append((item[1][0], [item]))
        pool: ThreadPoolExecutor | None = None
        ahead: Future[Buffer | None] | None = None
        try:
            for n, (shard, run) in enumerate(runs):
                buf = ahead.result() if ahead is not None else self._fetch(shard)
                ahead = None
                if n + 1 < len(runs) and not is_local(self.selection.shards[runs[n + 1][0]].url):
                    pool = pool or ThreadPoolExecutor(1)
                    ahead = pool.submit(self._fetch, runs[n + 1][0])
                if buf is not None:
                    yield from self._read_shard(shard, buf, run)
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def _read_shard(
        self, shard: int, buf: Buffer, run: Sequence[tuple[int, Piece]]
    ) -> Iterator[tuple[int, RawSample]]:
        ref = self.selection.shards[shard]
        keep = self.selection.keep_keys[shard]
        # ordinal -> base position for every wanted ordinal in this run
        wanted = sorted((s, e, base) for base, (_, s, e) in run)
        first = wanted[0][0]
        last = max(e for _, e, _ in wanted)
        w = 0
        ordinal = 0
        mapped = isinstance(buf, mmap.mmap)  # local or cached file: members can be views
        try:
            if ref.format == "parquet":
                rows = parquet_rows(buf)
                if rows != ref.samples:
                    raise ShardError(f"shard {ref.path} holds {rows} samples, the manifest says "
                                     f"{ref.samples}; re-download or rebuild it")
                raws: Iterator[RawSample] = iter_parquet_raw(buf, first if keep is None else 0)
                ordinal = first if keep is None else 0
                for raw in raws:
                    if keep is not None and raw["__key__"] not in keep:
                        continue
                    while w < len(wanted) and ordinal >= wanted[w][1]:
                        w += 1
                    if w == len(wanted) or ordinal >= last:
                        return
                    s, _, base = wanted[w]
                    if ordinal >= s:
                        raw[SHARD_FIELD] = ref.path
                        yield base + ordinal - s, raw
                    ordinal += 1
            else:
                # a run that reads to the shard's end also checks that nothing follows it
                to_end = keep is None and last == ref.samples
                for key, members in iter_tar_groups(buf):
                    if keep is not None and key not in keep:
                        continue
                    while w < len(wanted) and ordinal >= wanted[w][1]:
                        w += 1
                    if w == len(wanted):
                        if to_end:
                            raise ShardError(
                                f"shard {ref.path} holds more samples than the manifest's "
                                f"{ref.samples}: the manifest was changed; re-download it")
                        return
                    s, _, base = wanted[w]
                    if ordinal >= s:
                        raw = {"__key__": key, SHARD_FIELD: ref.path}
                        for ext, view in members:
                            if ext == "json":
                                raw[ext] = bytes(view)
                            elif mapped:
                                raw[ext] = view  # a view of the mapped file: no copy
                            else:
                                raw[ext] = bytearray(view)  # copy: the fetched shard is freed
                        yield base + ordinal - s, raw
                    ordinal += 1
        except (ValueError, KeyError, OSError) as e:
            raise ShardError(f"shard {ref.path} is unreadable: {e}; re-download or rebuild it") from e
        if w < len(wanted) and ordinal < last:
            raise ShardError(
                f"shard {ref.path} holds {ordinal} samples, fewer than the manifest/index says; "
                "re-download or rebuild it"
            )

    # -- iteration ---------------------------------------------------------------------

    def _raw_stream(self, rank: int, worker: int, num_workers: int) -> tuple[Iterator[RawSample], int]:
        """(raw samples of one worker in order, how many it yields)."""
        pieces, gen, _ = self._base()
        layout = self.layout(num_workers)
        n = layout.worker_sizes[worker]
        seed = self._slot_seed(gen, rank, worker)
        skip = 0
        r = self._resume
        if self.replacement:
            if r is not None and r["epoch"] == self.epoch and r.get("skip"):
                if len(r["skip"]) != num_workers:
                    raise UserError(
                        f"this replacement-mode state was saved with {len(r['skip'])} workers; "
                        f"resume with the same num_workers (not {num_workers})"
                    )
                skip = r["skip"][worker]

            def source_stream(src: int) -> Iterator[tuple[int, RawSample]]:
                share = self._source_share(src, layout, rank, worker, gen)
                for p in itertools.count():  # cycle through the share, reshuffled each pass
                    yield from order_slot(
                        [lambda: self._read(share)], None, self.buffer_size, derive_seed(seed, src, p)
                    )

            per_source = [0] * len(self.source_names)
            for i, c in enumerate(self.selection.counts):
                per_source[self._shard_source[i]] += c
            active = [i for i, w in enumerate(self.weights) if w > 0 and per_source[i] > 0]
            if not active:
                raise UserError("no selected source with a weight > 0 has any sample")
            mixed = weighted_interleave(
                [source_stream(i) for i in active],
                [self.weights[i] for i in active],
                random.Random(derive_seed(seed, "mix")),
            )
            ordered: Iterator[tuple[int, RawSample]] = itertools.islice(mixed, n)
        else:
            index = PieceIndex(pieces)
            groups = self._exact_groups(index, layout, rank, worker)
            ordered = order_slot(
                [(lambda g=g: self._read(g)) for g in groups],
                self.weights if self.mixing else None,
                self.buffer_size,
                seed,
            )
        raws = (raw for _, raw in ordered)
        if skip:
            raws = itertools.islice(raws, skip, None)
            n -= skip
        return _fill_to(raws, n, f"rank {rank} worker {worker}"), n

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        if info is None:
            self.resolve_world()
            worker, num_workers = 0, 1
        else:
            worker, num_workers = info.id, info.num_workers
        raws, _ = self._raw_stream(self.rank, worker, num_workers)
        if self.decode and self._decoder is None:
            self._decoder = SampleDecoder(load_vocabulary(), **self._decoder_options)
        decoder = self._decoder
        transform = self.transform
        in_process = info is None
        if in_process:
            self._delivered = 0
            self._iterated_here = True

        def prepare(raw: RawSample) -> Any:
            shard = raw.pop(SHARD_FIELD, "?")
            try:
                sample: Any = decoder(raw) if decoder is not None else raw
                sample = transform(sample) if transform is not None else sample
            except Exception as exc:
                # in a worker process this is the only text that reaches the main process
                raise SampleError(
                    f"shard {shard}, sample {raw.get('__key__', '?')}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            # a worker's samples are pickled into the main process: no views of a map
            return detach(sample) if not in_process else sample

        samples = (
            _ordered_map(prepare, raws, self.decode_threads)
            if self.decode_threads > 0
            else map(prepare, raws)
        )
        for sample in samples:
            if in_process:
                self._delivered += 1
            yield sample

    # -- resume ------------------------------------------------------------------------

    def state_dict(self, worker_consumed: Sequence[int] | None = None) -> dict[str, Any]:
        """Where this epoch stands, for `load_state_dict` (JSON-serializable, same on every rank).

        Called on the dataset itself it counts samples yielded in this process
        (num_workers=0); with worker processes, `ShardLoader.state_dict()` passes the
        per-worker counts it derives from delivered batches. It assumes every rank has
        delivered as many batches as this one (true in DDP, which steps in lockstep).

        What holds:
          - without replacement, same or different world size / worker count (elastic):
            the resumed epoch yields exactly the samples not yet delivered, each once,
            up to the equalization of the remainder across the new ranks (fewer than
            world_size samples dropped or repeated);
          - with replacement, same world size and worker count: the resumed epoch yields
            exactly the rest of the interrupted sequence; with another layout it yields
            the remaining number of samples from fresh draws (not the same samples).
        """
        if worker_consumed is None and not self._iterated_here:
            warnings.warn(
                "ShardDataset.state_dict() counts samples yielded in this process, and none "
                "were; with DataLoader worker processes use medshard.loaders.ShardLoader",
                stacklevel=2,
            )
        num_workers = 1 if worker_consumed is None else len(worker_consumed)
        consumed = [self._delivered] if worker_consumed is None else list(worker_consumed)
        pieces, gen, total = self._base()
        layout = self.layout(num_workers)
        r = self._resume if self._resume is not None and self._resume["epoch"] == self.epoch else None
        return {
            "format": STATE_FORMAT,
            "seed": self.seed,
            "epoch": self.epoch,
            "generation": gen,
            "replacement": self.replacement,
            "base": [list(p) for p in pieces] if r is not None and r["base"] is not None else None,
            "total": layout.total if self.replacement else None,
            "skip": r.get("skip") if r is not None else None,
            "world_size": layout.world_size,
            "num_workers": num_workers,
            "consumed": consumed,
            "selection": self.selection.fingerprint(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume the epoch saved in `state` at the next iteration; see `state_dict`."""
        if state.get("format") != STATE_FORMAT:
            raise UserError(f"not a medshard loader state (format {state.get('format')!r})")
        if state["selection"] != self.selection.fingerprint():
            raise UserError(
                "this state was saved for a different selection of shards (build, split, "
                "sources or filters differ); resume with the same arguments"
            )
        if bool(state["replacement"]) != self.replacement:
            raise UserError("state and dataset disagree on replacement=; use the same setting")
        self.seed = state["seed"]
        self.epoch = state["epoch"]
        self._delivered = 0
        self.resolve_world()
        self._resume = {
            "epoch": state["epoch"],
            "generation": state["generation"],
            "base": state["base"],
            "total": state["total"],
            "skip": state.get("skip"),
        }
        if self.replacement:
            self._resume_replacement(state)
        else:
            self._resume_exact(state)

    def _resume_exact(self, state: Mapping[str, Any]) -> None:
        pieces, gen, _ = self._base()
        index = PieceIndex(pieces)
        old = Layout(index.total, state["world_size"], state["num_workers"], self.equalize)
        delivered = bytearray(index.total)
        for rank in range(old.world_size):
            for worker, n in enumerate(state["consumed"]):
                groups = self._exact_groups(index, old, rank, worker)
                order = order_slot(
                    [(lambda g=g: _positions(g)) for g in groups],
                    self.weights if self.mixing else None,
                    self.buffer_size,
                    self._slot_seed(gen, rank, worker),
                )
                for pos in itertools.islice(order, n):
                    delivered[pos] = 1
        self._resume = {
            "epoch": state["epoch"],
            "generation": gen + 1,
            "base": [list(p) for p in index.rest(delivered)],
            "total": None,
            "skip": None,
        }

    def _resume_replacement(self, state: Mapping[str, Any]) -> None:
        same = state["world_size"] == self.world_size
        prior = state.get("skip") or [0] * state["num_workers"]
        consumed = [a + b for a, b in zip(prior, state["consumed"], strict=True)]
        if same:
            self._resume["skip"] = consumed  # type: ignore[index]
            return
        old = Layout(state["total"], state["world_size"], state["num_workers"], self.equalize)
        left = old.world_size * (old.per_rank - sum(consumed))
        self._resume = {
            "epoch": state["epoch"],
            "generation": state["generation"] + 1,
            "base": None,
            "total": max(left, 0),
            "skip": None,
        }


def _positions(part: Sequence[tuple[int, Piece]]) -> Iterator[int]:
    for base, (_, s, e) in part:
        yield from range(base, base + e - s)


def _ordered_map(fn: Callable[[Any], Any], items: Iterator[Any], threads: int) -> Iterator[Any]:
    """`map(fn, items)` on a small thread pool, in order, at most 2 x threads ahead.

    Pillow and numpy release the GIL while decoding, so image decoding overlaps.
    """
    with ThreadPoolExecutor(threads) as pool:
        pending: collections.deque[Future[Any]] = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _fill_to(raws: Iterator[RawSample], n: int, where: str) -> Iterator[RawSample]:
    """Exactly `n` samples: after skipped shards, recent samples are repeated to fill up.

    Keeps every rank's count equal (DDP never hangs) when on_error='skip' lost a shard.
    """
    recent: list[RawSample] = []
    produced = 0
    for raw in raws:
        if produced == n:
            return
        yield raw
        produced += 1
        if len(recent) < 64:
            recent.append(raw)
        else:
            recent[produced % 64] = raw
    if produced < n:
        if not recent:
            raise ShardError(f"{where} has no readable shard left; cannot equalize the epoch")
        for i in range(n - produced):
            yield recent[i % len(recent)]


def load(*args: Any, **kwargs: Any) -> ShardDataset:
    return ShardDataset(*args, **kwargs)


# `load` is `ShardDataset(...)`: its signature and docstring are the class's, copied here
# so that a keyword argument added to ShardDataset.__init__ needs no second edit
load.__signature__ = inspect.signature(ShardDataset).replace(  # type: ignore[attr-defined]
    return_annotation=ShardDataset)
load.__doc__ = (f"Open a medshard build for training: `ShardDataset(...)`.\n\n"
                f"{inspect.cleandoc(ShardDataset.__doc__ or '')}")


