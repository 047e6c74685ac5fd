"""`ShardDataset`: a PyTorch IterableDataset over a medshard build (local or any fsspec URL).

Each epoch has one global order, a pure function of (seed, epoch, resume state):
shards shuffled by (seed, epoch), dealt as contiguous ranges to ranks and then
workers (see `assign.py` for the equalization policy), each worker's samples
passed through a shuffle buffer of `buffer_size` raw (undecoded) samples.

Three parts: the *plan* (`plan.py`: which sample when, per rank and worker slot,
resumable; one class per mode), *reading* (`read_run` here: shard bytes to raw samples,
the same cursor for tar and Parquet) and *decoding* (`decode.py`: raw samples to tensors).

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
whose state counts delivered batches): with the same world size and workers the resumed
run yields the same sequence (and `ShardLoader` the same batches) as one that never
stopped; elastic resume yields exactly the rest. See `state_dict` for what holds.
"""

from __future__ import annotations

import collections
import functools
import inspect
import itertools
import mmap
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from medshard.errors import UserError
from medshard.loaders.assign import EQUALIZE_POLICIES, Layout, Piece
from medshard.loaders.decode import (
    RawSample,
    SampleDecoder,
    auto_decode_threads,
    image_decoder,
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
from medshard.loaders.options import DecodeOptions, ReadOptions, SamplingOptions
from medshard.loaders.options import resolve as resolve_options
from medshard.loaders.plan import ExactPlan, Plan, ReplacementPlan, positions
from medshard.loaders.remote import Buffer, ShardError, ShardRef, ShardStore, is_local
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
    samples, counted from the build's index so that ranks stay equal. `weights` per
    source: see the module docstring. `rank`/`world_size`: default torch.distributed's.

    The other options come in three groups (`medshard.loaders.options`), each as an
    object or as its flat keywords (`sampling=SamplingOptions(seed=3)` or `seed=3`):
      - `sampling`: shuffle, seed, buffer_size, replacement, samples_per_epoch, equalize;
      - `reading`: format, cache_dir, cache_bytes, verify, on_error;
      - `decoding`: decode, transform, decode_threads, image_decoder, decode_size,
        ecg_view, label_view, apply_rescale.
    `verify`: sha256 of shards fetched over the network ("remote", the default: local
    files were checked when downloaded), of every shard read (True), of each shard the
    first time this process reads it ("once"), or none (False); sizes and sample counts
    are always checked. `decode_threads` (default automatic) decodes that many samples
    at once on threads (order is kept); `image_decoder` picks the JPEG decoder.
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
        *,
        sampling: SamplingOptions | None = None,
        reading: ReadOptions | None = None,
        decoding: DecodeOptions | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        opts = resolve_options({"sampling": sampling, "reading": reading, "decoding": decoding},
                               options)
        self.sampling: SamplingOptions = opts["sampling"]
        self.reading: ReadOptions = opts["reading"]
        self.decoding: DecodeOptions = opts["decoding"]
        so, ro, do = self.sampling, self.reading, self.decoding
        if so.equalize not in EQUALIZE_POLICIES:
            raise UserError(f"equalize={so.equalize!r} is not one of {EQUALIZE_POLICIES}")
        if ro.on_error not in ("raise", "skip"):
            raise UserError(f"on_error={ro.on_error!r} is not 'raise' or 'skip'")
        if do.ecg_view not in ECG_VIEWS:
            raise UserError(f"ecg_view={do.ecg_view!r} is not one of {', '.join(ECG_VIEWS)}")
        if do.label_view not in LABEL_VIEWS:
            raise UserError(f"label_view={do.label_view!r} is not one of {', '.join(LABEL_VIEWS)}")
        image_decoder(do.image_decoder)  # an unknown or unavailable decoder fails here
        manifest, base = read_manifest(source)
        self._decoder_options = {
            "concepts": {s: m.concepts for s, m in manifest.sources.items() if m.concepts is not None},
            "ecg_view": do.ecg_view,
            "label_view": do.label_view,
            "apply_rescale": do.apply_rescale,
            "image_decoder": do.image_decoder,
            "decode_size": do.decode_size,
        }
        if weights is not None and sources is None:
            sources = [s for s, w in weights.items() if w > 0]
        refs = select_shards(manifest, base, split, sources, modalities, ro.format)
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
        if not so.replacement and weights is not None and min(self.weights) <= 0:
            raise UserError(
                "without replacement every selected source needs a weight > 0 (each sample is "
                "read once per epoch); drop the source from `sources` or give it a weight"
            )
        self.source_names = names
        # what each position of a sample's `labels` / `label_mask` vector means
        self.label_names: list[str] = list(load_vocabulary().concept_ids)
        self.mixing = weights is not None and len(names) > 1
        shard_source = [names.index(s.source) for s in self.selection.shards]
        plan_cls = ReplacementPlan if so.replacement else ExactPlan
        self.plan: Plan = plan_cls(self.selection.counts, shard_source, self.weights,
                                   self.mixing, so)
        self.store = ShardStore(ro.cache_dir, ro.cache_bytes, ro.verify)
        self._explicit_world = (rank, world_size)
        self.rank, self.world_size = 0, 1
        self.resolve_world()
        self._delivered = 0  # samples yielded when iterated in this process (no workers)
        self._iterated_here = False
        self._decoder: SampleDecoder | None = None

    # the flat names of the original API, read-only views of the option groups
    shuffle = property(lambda self: self.sampling.shuffle)
    buffer_size = property(lambda self: self.plan.buffer_size)
    replacement = property(lambda self: self.sampling.replacement)
    samples_per_epoch = property(lambda self: self.sampling.samples_per_epoch)
    equalize = property(lambda self: self.sampling.equalize)
    on_error = property(lambda self: self.reading.on_error)
    decode = property(lambda self: self.decoding.decode)
    transform = property(lambda self: self.decoding.transform)
    decode_threads = property(lambda self: self.decoding.decode_threads)

    @property
    def seed(self) -> int:
        return self.plan.seed

    @property
    def epoch(self) -> int:
        return self.plan.epoch

    # -- configuration -----------------------------------------------------------------

    def resolve_world(self) -> None:
        """Read rank and world size (explicit arguments win); call after init_process_group."""
        rank, world = self._explicit_world
        env_rank, env_world = world_from_env()
        self.rank = env_rank if rank is None else rank
        self.world_size = env_world if world is None else world

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields (same seed+epoch, same order)."""
        self.plan.set_epoch(epoch)
        self._delivered = 0
        self.resolve_world()

    def __len__(self) -> int:
        """Samples this rank yields per epoch (all its workers together)."""
        return self.layout(1).per_rank

    @property
    def total_samples(self) -> int:
        """Samples selected (after filters), before equalization."""
        return sum(self.selection.counts)

    def layout(self, num_workers: int, world_size: int | None = None) -> Layout:
        """How the current generation of this epoch is dealt to ranks and workers."""
        world = world_size or self.world_size
        return self.plan.layout(self.plan.cursor(world, num_workers), world, num_workers)

    def worker_sizes(self, num_workers: int) -> list[int]:
        """Samples each worker slot of this rank yields in the coming iteration."""
        return self.plan.sizes(self.world_size, num_workers)

    def first_slot(self, num_workers: int) -> int:
        """The slot DataLoader worker 0 plays in the coming iteration (worker i plays
        `(first_slot + i) % num_workers`): after a deterministic resume, the slot the
        interrupted run's next batch came from, so that batches keep their order."""
        return self.plan.cursor(self.world_size, num_workers).next_slot

    # -- reading -----------------------------------------------------------------------

    def _fetch(self, shard: int) -> Buffer | None:
        ref = self.selection.shards[shard]
        try:
            return self.store.fetch(ref)
        except ShardError as e:
            if self.reading.on_error == "raise":
                raise
            warnings.warn(f"skipping: {e}", stacklevel=2)
            return None

    def _read(self, part: Sequence[tuple[int, Piece]]) -> Iterator[tuple[int, RawSample | None]]:
        """(base position, raw sample) for each position of `part`, one shard fetch per run
        of consecutive pieces of one shard; None for each sample of a skipped shard.

        While a remote shard is being read, the next one downloads on a thread.
        """
        runs: list[tuple[int, list[tuple[int, Piece]]]] = []
        for item in part:
            if runs and runs[-1][0] == item[1][0]:
                runs[-1][1].append(item)
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
                    yield from read_run(self.selection.shards[shard],
                                        self.selection.keep_keys[shard], buf, run)
                else:
                    for pos in positions(run):
                        yield pos, None
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    # -- iteration ---------------------------------------------------------------------

    def _raw_stream(self, rank: int, worker: int, num_workers: int) -> tuple[Iterator[RawSample], int]:
        """(raw samples of one worker slot in order, how many it yields)."""
        stream, n = self.plan.stream(rank, worker, self.world_size, num_workers, self._read)
        raws = (raw for raw in stream if raw is not None)
        return _fill_to(raws, n, f"rank {rank} worker {worker}"), n

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        if info is None:
            self.resolve_world()
            slot, num_workers = 0, 1
        else:
            num_workers = info.num_workers
            slot = (info.id + self.first_slot(num_workers)) % num_workers
        raws, _ = self._raw_stream(self.rank, slot, num_workers)
        if self.decoding.decode and self._decoder is None:
            self._decoder = SampleDecoder(load_vocabulary(), **self._decoder_options)
        decoder = self._decoder if self.decoding.decode else None
        transform = self.decoding.transform
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

        threads = self.decoding.decode_threads
        if threads is None:  # automatic: decided on the first sample
            first = next(raws, None)
            if first is None:
                return
            raws = itertools.chain([first], raws)
            threads = auto_decode_threads(first, num_workers) if decoder is not None else 0
        samples = _ordered_map(prepare, raws, threads) if threads > 0 else map(prepare, raws)
        for sample in samples:
            if in_process:
                self._delivered += 1
            yield sample

    # -- resume ------------------------------------------------------------------------

    def state_dict(self, worker_consumed: Sequence[int] | None = None,
                   next_worker: int = 0) -> dict[str, Any]:
        """Where this epoch stands, for `load_state_dict` (JSON-serializable, same on every rank).

        Called on the dataset itself it counts samples yielded in this process
        (num_workers=0); with worker processes, `ShardLoader.state_dict()` passes the
        per-slot counts it derives from delivered batches, and the slot the next batch
        comes from. It assumes every rank has delivered as many batches as this one (true
        in DDP, which steps in lockstep).

        What holds (`medshard.loaders.plan`):
          - same world size and worker count, either mode: the resumed iteration yields
            exactly the rest of the interrupted sequence, in the same order (shuffle
            buffer and weighted draws included), and `ShardLoader` the same batches;
          - without replacement, another world size or worker count (elastic): the
            resumed epoch yields exactly the samples not yet delivered, each once, up to
            the equalization of the remainder across the new ranks (fewer than
            world_size samples dropped or repeated);
          - with replacement, another layout: the remaining number of samples, from
            fresh draws (not the same samples).
        """
        if worker_consumed is None and not self._iterated_here:
            warnings.warn(
                "ShardDataset.state_dict() counts samples yielded in this process, and none "
                "were; with DataLoader worker processes use medshard.loaders.ShardLoader",
                stacklevel=2,
            )
        consumed = [self._delivered] if worker_consumed is None else list(worker_consumed)
        state = {
            "format": STATE_FORMAT,
            "seed": self.plan.seed,
            "replacement": self.sampling.replacement,
            "selection": self.selection.fingerprint(),
        }
        state.update(self.plan.state(self.world_size, len(consumed), consumed, next_worker))
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume the epoch saved in `state` at the next iteration; see `state_dict`."""
        if state.get("format") != STATE_FORMAT:
            raise UserError(f"not a medshard loader state (format {state.get('format')!r})")
        if state["selection"] != self.selection.fingerprint():
            raise UserError(
                "this state was saved for a different selection of shards (build, split, "
                "sources or filters differ); resume with the same arguments"
            )
        if bool(state["replacement"]) != self.sampling.replacement:
            raise UserError("state and dataset disagree on replacement=; use the same setting")
        self.plan.restore(state)
        self._delivered = 0
        self.resolve_world()


def read_run(ref: ShardRef, keep: frozenset[str] | None, buf: Buffer,
             run: Sequence[tuple[int, Piece]]) -> Iterator[tuple[int, RawSample]]:
    """(base position, raw sample) for the pieces `run` of one fetched shard, by ordinal.

    Tar and Parquet shards differ only in how a shard's samples are listed (`_listing`);
    the cursor (which ordinals are wanted, and the checks against the manifest) is one.
    """
    # ordinal -> base position for every wanted ordinal in this run
    wanted = sorted((s, e, base) for base, (_, s, e) in run)
    last = max(e for _, e, _ in wanted)
    w = 0
    try:
        listing, ordinal, to_end = _listing(ref, keep, buf, wanted[0][0], last)
        for key, make in listing:
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
                raw = make()
                raw[SHARD_FIELD] = ref.path
                yield base + ordinal - s, raw
            ordinal += 1
    except (ValueError, KeyError, OSError) as e:
        raise ShardError(f"shard {ref.path} is unreadable: {e}; re-download or rebuild it") from e
    if w < len(wanted) and ordinal < last:
        raise ShardError(
            f"shard {ref.path} holds {ordinal} samples, fewer than the manifest/index says; "
            "re-download or rebuild it"
        )


def _listing(ref: ShardRef, keep: frozenset[str] | None, buf: Buffer, first: int,
             last: int) -> tuple[Iterator[tuple[str, Callable[[], RawSample]]], int, bool]:
    """(the shard's (key, make raw sample) from some ordinal on, that ordinal, whether a
    read to `last` must also check that nothing follows)."""
    if ref.format == "parquet":
        rows = parquet_rows(buf)
        if rows != ref.samples:
            raise ShardError(f"shard {ref.path} holds {rows} samples, the manifest says "
                             f"{ref.samples}; re-download or rebuild it")
        start = first if keep is None else 0  # row groups before `first` are not read
        raws = iter_parquet_raw(buf, start)
        return ((raw["__key__"], (lambda raw=raw: raw)) for raw in raws), start, False

    mapped = isinstance(buf, mmap.mmap)  # local or cached file: members can be views

    def make(key: str, members: list[tuple[str, memoryview]]) -> RawSample:
        raw: RawSample = {"__key__": key}
        for ext, view in members:
            if ext == "json":
                raw[ext] = bytes(view)
            elif mapped:
                raw[ext] = view  # a view of the mapped file: no copy
            else:
                raw[ext] = bytearray(view)  # copy: the fetched shard is freed
        return raw

    groups = iter_tar_groups(buf)
    to_end = keep is None and last == ref.samples
    return ((key, functools.partial(make, key, members)) for key, members in groups), 0, to_end


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


