"""The build: list records -> assign split -> plan shards -> write shards (Beam) -> manifest.

The driver lists records (cheap), pseudonymizes subjects, assigns splits and plans
shards, writing each shard's records to `OUT/.medshard/plans/`; only the shard's name
and settings cross into the pipeline graph and the shuffle. Each shard is one Beam task
(`shard_task.run_shard_job`) that streams its samples to its files. Finished shards
are skipped on a re-run, so an interrupted build resumes and ends byte-identical.

The raw data root and the output may each be a local folder or any fsspec URL
(`s3://`, `gs://`, `az://`, `file://`): raw files are read through
`medshard.formats.remote`, every output file is written through
`medshard.sharding.storage.Store`, so a cluster's workers need no shared filesystem.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import logging
import os
import re
import socket
import threading
import time
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medshard import __version__
from medshard.errors import UserError
from medshard.formats.remote import RemotePath, clear_listing_cache, open_root, staging_area
from medshard.pipeline.duplicates import build_report, plan_dedupe
from medshard.pipeline.lock import BuildLock, RemoteBuildLock
from medshard.pipeline.pseudonym import installation_secret, key_id, pseudonymize
from medshard.pipeline.runner import beam_options
from medshard.pipeline.shard_task import (
    PARTS_DIR,
    ShardJob,
    load_done_part,
    raw_fingerprint,
    read_part,
    records_digest,
    run_shard_job,
    sha256_file,
    write_plan,
)
from medshard.pipeline.split import DEFAULT_FRACTIONS, assign_split
from medshard.schemas import SPLITS, BadRow, Manifest, SourceSummary, SplitCounts
from medshard.schemas.models import DuplicateReport
from medshard.schemas.standards import DEFAULT_PNG_LEVEL, SIGNAL_STANDARDS, SignalSpec
from medshard.schemas.vocabulary import load_vocabulary
from medshard.sharding.layout import WORK_DIR
from medshard.sharding.manifest import (
    manifest_bytes,
    quarantine_bytes,
    write_index,
)
from medshard.sharding.members import column_name, json_bytes
from medshard.sharding.plan import plan_shards
from medshard.sharding.storage import Store
from medshard.sources.base import MissingRawData, Source
from medshard.sources.registry import UnknownSource, get_source

log = logging.getLogger("medshard.build")

FORMATS = ("webdataset", "parquet")
# counts and quarantine lines of index rows that made no record (no split could be given)
LIST_PSEUDO_SPLIT = "unlisted"


@dataclass
class BuildConfig:
    sources: list[str]
    data_root: Path | str  # a folder or an fsspec URL (s3://bucket/raw)
    out: Path | str  # a folder or an fsspec URL (s3://bucket/build)
    raw: dict[str, Path | str] = field(default_factory=dict)
    formats: tuple[str, ...] = ("webdataset",)
    workers: int = 1
    shard_size: int = 512 << 20
    row_group_bytes: int = 16 << 20
    parquet_payload_compression: str = "none"  # or "zstd"
    png_level: int = DEFAULT_PNG_LEVEL  # zlib level 0-9 of the PNGs written (lossless)
    source_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    signal_specs: dict[str, SignalSpec] = field(default_factory=lambda: dict(SIGNAL_STANDARDS))
    split_fractions: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FRACTIONS))
    beam_args: list[str] = field(default_factory=list)
    progress: bool = True
    # source filter by declared terms (medshard.sources.terms); None: no filter
    license_allow: list[str] | None = None
    access_allow: list[str] | None = None
    # read symlinks in a raw tree whose targets stay inside the source root (default: refuse)
    follow_symlinks: bool = False
    # re-hash every raw file of finished shards and rebuild those whose content changed
    verify_raw: bool = False
    # replace another build in `out`: files the new manifest will not list are removed
    overwrite: bool = False
    # drop every later copy of an exact duplicate payload (medshard.pipeline.duplicates)
    dedupe: bool = False


@dataclass
class BuildResult:
    out: Path | str  # a local Path, or the URL of a remote output
    manifest: Manifest
    shards_written: int
    shards_skipped: int
    # shards rebuilt because raw files changed since the last run, with those files
    raw_changed: dict[str, list[str]] = field(default_factory=dict)
    # shards written per worker process ("host:pid"), as the runner's counters report it
    worker_shards: dict[str, int] = field(default_factory=dict)


def source_root(config: BuildConfig, slug: str) -> Path | RemotePath:
    """The raw root of one source: `--raw SLUG=...`, else DATA_ROOT/<slug> (local or URL)."""
    if slug in config.raw:
        return open_root(config.raw[slug])
    root = open_root(config.data_root)
    return root / slug


def config_record(config: BuildConfig, sources: dict[str, Source],
                  excluded: dict[str, str] | None = None) -> dict[str, Any]:
    """What determines the output bytes: recorded in the manifest and hashed."""
    record: dict[str, Any] = {
        "sources": {s: {"options": sources[s].options()} for s in sorted(sources)},
        "formats": sorted(config.formats),
        "shard_size": config.shard_size,
        "row_group_bytes": config.row_group_bytes,
        "parquet_payload_compression": config.parquet_payload_compression,
        "png_level": config.png_level,
        "signal_specs": {m: s.as_config() for m, s in sorted(config.signal_specs.items())},
        "split_fractions": dict(sorted(config.split_fractions.items())),
        "vocabulary_version": load_vocabulary().version,
        "parquet_payload_columns": parquet_columns(sources),
    }
    if config.follow_symlinks:
        record["follow_symlinks_within_root"] = True
    if config.dedupe:
        record["dedupe"] = True
    if config.license_allow is not None or config.access_allow is not None:
        record["source_filter"] = {
            "license_allow": config.license_allow,
            "access": config.access_allow,
            "excluded": dict(sorted((excluded or {}).items())),
        }
    return record


def parquet_columns(sources: dict[str, Source]) -> list[str]:
    """The payload columns of every Parquet shard of a build: each source's declared members."""
    return sorted({column_name(m) for src in sources.values() for m in src.payload_members})


def apply_source_filter(config: BuildConfig) -> dict[str, str]:
    """Drop the sources whose declared terms the filter excludes; returns slug -> reason.

    Reads only each source's declaration, before any raw file is touched.
    """
    from medshard.sources.registry import source_class
    from medshard.sources.terms import ACCESS_KINDS, LICENSE_TERMS, filter_exclusion

    if config.license_allow is None and config.access_allow is None:
        return {}
    for value, allowed, flag in ((config.license_allow, LICENSE_TERMS, "--license-allow"),
                                 (config.access_allow, ACCESS_KINDS, "--access")):
        bad = [v for v in value or [] if v not in allowed]
        if bad:
            raise UserError(f"{flag} got {bad[0]!r}; choose from {', '.join(allowed)}")
    excluded: dict[str, str] = {}
    for slug in config.sources:
        try:
            cls = source_class(slug)
        except UnknownSource as exc:
            raise UserError(str(exc)) from None
        reason = filter_exclusion(cls.info, cls.download, config.license_allow,
                                  config.access_allow)
        if reason:
            excluded[slug] = reason
            log.warning("source %s excluded by the license filter: %s", slug, reason)
    config.sources = [s for s in config.sources if s not in excluded]
    if not config.sources:
        raise UserError("the license/access filter excludes every source named "
                        f"({'; '.join(f'{k}: {v}' for k, v in excluded.items())}); widen it")
    return excluded


def receipt_digest(root: Path) -> str | None:
    """sha256 over a download receipt's (path, size, sha256) list; None without a receipt.

    The receipt's timestamps are left out, so downloading the same files again gives the
    same digest.
    """
    from medshard.schemas.download import RECEIPT_NAME, Receipt

    path = root / RECEIPT_NAME
    if not path.is_file():
        return None
    receipt = Receipt.model_validate_json(path.read_text())
    files = sorted((f.path, f.size, f.sha256) for f in receipt.files)
    return hashlib.sha256(json_bytes(files)).hexdigest()


def _check_config(config: BuildConfig) -> dict[str, Source]:
    if not config.sources:
        raise UserError("no source given: name one or more, e.g. `medshard build ptb-xl ...`")
    bad = [f for f in config.formats if f not in FORMATS]
    if bad:
        raise UserError(f"unknown format {bad[0]!r}: use webdataset, parquet or both")
    if config.parquet_payload_compression not in ("none", "zstd"):
        raise UserError("--parquet-compression must be none or zstd")
    if not (isinstance(config.png_level, int) and 0 <= config.png_level <= 9):
        raise UserError(f"--png-level must be a zlib level from 0 to 9, got {config.png_level!r}")
    if config.workers < 1:
        raise UserError("--workers must be at least 1")
    if config.shard_size < 1:
        raise UserError("--shard-size must be positive, e.g. 512MB")
    extra = set(config.raw) - set(config.sources)
    if extra:
        raise UserError(f"--raw names {sorted(extra)[0]!r}, which is not being built")
    sources: dict[str, Source] = {}
    for slug in config.sources:
        try:
            sources[slug] = get_source(slug, **config.source_options.get(slug, {}))
        except UnknownSource as exc:
            raise UserError(str(exc)) from None
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if not sources[slug].payload_members:
            raise UserError(f"source {slug} declares no payload_members (the members its "
                            "samples carry, e.g. ('signal.npy',)); add them to its class")
        root = source_root(config, slug)
        try:
            sources[slug].check_root(root)
        except MissingRawData as exc:
            raise UserError(
                f"{exc}; put the files there (see `medshard info {slug}`) or pass --raw {slug}=PATH"
            ) from None
    return sources


@dataclass(frozen=True)
class _Listed:
    """One listed record as the driver keeps it: canonical JSON, not a model (~5x smaller)."""

    record_id: str
    estimate: int
    blob: bytes


def bad_row_line(slug: str, bad: BadRow) -> dict[str, Any]:
    """The quarantine line of an index row that made no record (stage `list`)."""
    return {
        "key": None,
        "source": slug,
        "split": LIST_PSEUDO_SPLIT,
        "record_id": None,
        "files": [bad.file],
        "line": bad.line,
        "stage": "list",
        "error_type": bad.error_type,
        "message": f"{bad.file} line {bad.line}: {bad.reason}"[:500],
    }


def plan_jobs(
    config: BuildConfig, sources: dict[str, Source], cfg_hash: str
) -> tuple[list[ShardJob], list[dict[str, Any]]]:
    """List, pseudonymize, split and plan every source. Deterministic in its inputs.

    Each shard's records are written to its plan file; the returned jobs are small.
    Also returns the quarantine lines of the index rows that made no record (BadRow).
    """
    secret = installation_secret()
    store = Store(config.out)
    columns = tuple(parquet_columns(sources))
    jobs: list[ShardJob] = []
    bad_rows: list[dict[str, Any]] = []
    for slug in sorted(sources):
        src = sources[slug]
        src.follow_symlinks_within_root = config.follow_symlinks
        root = source_root(config, slug)
        by_split: dict[str, list[_Listed]] = defaultdict(list)
        seen: set[str] = set()
        # a remote root's index files are staged locally while listing, then deleted
        listing_area = staging_area() if isinstance(root, RemotePath) else nullcontext()
        try:
            with listing_area:
                for rec in src.list_records(root):
                    if isinstance(rec, BadRow):
                        bad_rows.append(bad_row_line(slug, rec))
                        log.warning("%s: %s line %d quarantined: %s", slug, rec.file, rec.line,
                                    rec.reason)
                        continue
                    if rec.record_id in seen:
                        raise RuntimeError(f"source {slug} listed record id {rec.record_id} twice")
                    seen.add(rec.record_id)
                    split = assign_split(slug, rec.subject_id, rec.split, config.split_fractions)
                    pseudo = rec.model_copy(update={
                        "subject_id": pseudonymize(slug, rec.subject_id, secret), "split": split})
                    by_split[split].append(_Listed(rec.record_id, src.estimate_output_bytes(pseudo),
                                                   json_bytes(pseudo.model_dump(mode="json"))))
        except MissingRawData as exc:
            raise UserError(f"{exc}; see `medshard info {slug}` for the expected layout") from None
        labels = label_file_hashes(src, root)
        # a revised label file (same records) must rebuild the shards: it enters the digest
        label_blob = json_bytes(labels) if labels else b""
        for split in SPLITS:
            listed = sorted(by_split.pop(split, []), key=lambda r: r.record_id)
            for plan in plan_shards(slug, split, listed, config.shard_size, lambda r: r.estimate):
                blobs = [r.blob for r in plan.records]
                # a raw file changed in place (same name) changes its fingerprint: rebuild
                fingerprints = json_bytes({f: raw_fingerprint(root, f) for r in plan.records
                                           for f in json.loads(r.blob)["files"]})
                digest = records_digest(blobs + ([label_blob] if label_blob else [])
                                        + [fingerprints])
                jobs.append(
                    ShardJob(
                        source=slug,
                        split=split,
                        index=plan.index,
                        n_records=len(blobs),
                        source_root=str(root.resolve()),  # an absolute path or a URL
                        source_options=src.options(),
                        source_version=src.info.version,
                        modality=src.info.modality,
                        formats=tuple(sorted(config.formats)),
                        signal_specs=dict(config.signal_specs),
                        config_hash=cfg_hash,
                        out=store.base,
                        row_group_bytes=config.row_group_bytes,
                        parquet_payload_compression=config.parquet_payload_compression,
                        png_level=config.png_level,
                        records_digest=digest,
                        label_files=labels,
                        follow_symlinks_within_root=config.follow_symlinks,
                        payload_members=tuple(src.payload_members),
                        demographic_fields=dict(src.demographic_fields),
                        parquet_columns=columns,
                    )
                )
                write_plan(jobs[-1], blobs, store)
    return jobs, bad_rows


def label_file_hashes(src: Source, root: Path | RemotePath) -> dict[str, str]:
    """sha256 of each file the source reads its labels from (see Source.label_files)."""
    out: dict[str, str] = {}
    for rel in src.label_files(root):
        path = root / rel
        if not path.is_file():
            raise UserError(f"{src.info.name}: label file {rel} not found in {root}")
        out[rel] = sha256_file(path)
    return out


class _Progress:
    """Polls finished part files (one listing per poll), so the bar works for any runner
    whose workers write to the build's output, local or remote."""

    def __init__(self, jobs: list[ShardJob], enabled: bool, store: Store) -> None:
        self.jobs = jobs
        self.store = store
        self.enabled = enabled and bool(jobs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        from tqdm import tqdm

        total = sum(j.n_records for j in self.jobs)
        pending = {j.part_rel(): j.n_records for j in self.jobs}
        done_shards = 0
        with tqdm(total=total, unit="rec", desc="build", dynamic_ncols=True, mininterval=0.5) as bar:
            while True:
                stopping = self._stop.is_set()
                present = set(self.store.find(PARTS_DIR))
                finished = [p for p in pending if p in present]
                for p in finished:
                    bar.update(pending.pop(p))
                    done_shards += 1
                bar.set_postfix_str(f"shards {done_shards}/{len(self.jobs)}", refresh=False)
                if not pending or stopping:
                    bar.refresh()
                    break
                self._stop.wait(0.5)


class _DropBeamImportNoise(logging.Filter):
    """Beam logs a warning about optional GCP client libraries on import; it is not ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


# Beam counter namespace: one counter per worker process ("host:pid"), shards it wrote
WORKER_METRICS = "medshard.shards_per_worker"


def _write_shard(job: ShardJob) -> str:
    """The WriteShard step: one shard task, counted for the worker process that ran it."""
    from apache_beam.metrics import Metrics

    stem = run_shard_job(job)["stem"]
    Metrics.counter(WORKER_METRICS, f"{socket.gethostname()}:{os.getpid()}").inc()
    return stem


def _worker_counts(result: Any) -> dict[str, int]:
    """Shards per worker process from the runner's counters; {} where it reports none."""
    from apache_beam.metrics.metric import MetricsFilter

    try:
        counters = result.metrics().query(MetricsFilter().with_namespace(WORKER_METRICS))
    except Exception:  # a runner without metrics (or a failing query) must not fail the build
        return {}
    counts: dict[str, int] = {}
    for c in counters["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        counts[c.key.metric.name] = counts.get(c.key.metric.name, 0) + int(value or 0)
    return dict(sorted(counts.items()))


def _run_beam(jobs: list[ShardJob], config: BuildConfig) -> dict[str, int]:
    """Run the shard tasks on the configured runner; returns shards per worker process."""
    root_logger = logging.getLogger()
    noise = _DropBeamImportNoise()
    for handler in root_logger.handlers:
        handler.addFilter(noise)
    import apache_beam as beam

    options = beam_options(config.workers, config.beam_args)
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    p = beam.Pipeline(options=options)
    _ = (
        p
        | "PlanShards" >> beam.Create(jobs, reshuffle=False)
        | "Distribute" >> beam.Reshuffle()
        | "WriteShard" >> beam.Map(_write_shard)
    )
    result = p.run()
    result.wait_until_finish()
    return _worker_counts(result)


def _remove_stale_shards(store: Store, jobs: list[ShardJob], sources: list[str]) -> None:
    """Delete shard files of the built sources that the current plan does not produce.

    Runs after the shards of this run are renamed into place, so any temporary file
    left is from an interrupted earlier run.
    """
    keep = {j.shard_path(f) for j in jobs for f in j.formats}
    pattern = re.compile(r"^[a-z0-9-]+-(train|val|test)-\d{6}\.(tar|parquet)$")
    temp = re.compile(
        r"^\.[a-z0-9-]+-(train|val|test)-\d{6}\.(tar|parquet)\.\d+(-[0-9a-f]+)?\.tmp$")
    for slug in sources:
        for rel in (r for fmt in FORMATS for r in store.find(f"{fmt}/{slug}")):
            name = rel.rsplit("/", 1)[-1]
            if rel.count("/") != 3:
                continue  # <format>/<source>/<split>/<name> only
            if (pattern.match(name) and rel not in keep) or temp.match(name):
                store.remove(rel)  # a shard no longer planned, or a killed run's partial file


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc` (Beam wraps a worker's exception), if any."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError) and e.errno is not None:
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    text = str(exc)
    for code in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT):
        if f"[Errno {code}]" in text:
            return OSError(code, os.strerror(code))
    return None


def _storage_error(exc: BaseException, out: Path | str) -> UserError | None:
    """One actionable line for a full disk or an unwritable output; None for anything else."""
    err = _os_error(exc)
    if err is None:
        return None
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return UserError(f"no space left on the device of {out}: free space (or give another "
                         "--out) and run the same command again; finished shards are kept")
    if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return UserError(f"cannot write to {out} ({os.strerror(err.errno).lower()}): give a "
                         "writable --out or fix its permissions")
    return None


def _raw_changes(job: ShardJob, verify_raw: bool) -> list[str] | None:
    """Raw files of a finished shard that changed since it was built; None: not finished."""
    part = read_part(job)
    if part is None:
        return None
    root = open_root(job.source_root)
    old = part.get("raw_files", {})
    changed = [f for f, fp in old.items() if raw_fingerprint(root, f) != fp]
    if verify_raw and not changed:
        sha = part.get("raw_sha256", {})
        changed = [f for f, h in sha.items() if h is not None
                   and (not (root / f).is_file() or sha256_file(root / f) != h)]
    return sorted(changed)
# what a build writes at the top of its output folder
BUILD_ENTRIES = frozenset({"manifest.json", "index.parquet", "quarantine.jsonl", WORK_DIR,
                           *FORMATS, ".manifest.json.tmp", ".index.parquet.tmp",
                           ".quarantine.jsonl.tmp"})


def _existing_build_hashes(store: Store) -> set[str]:
    """Config hashes of whatever build the output holds: its manifest's, and its parts'."""
    hashes = set()
    if store.is_file("manifest.json"):
        try:
            hashes.add(json.loads(store.read_bytes("manifest.json"))["config_hash"])
        except (OSError, ValueError, KeyError):
            hashes.add("unreadable manifest")
    for part in store.find(PARTS_DIR):
        if not part.endswith(".json"):
            continue
        try:
            hashes.add(json.loads(store.read_bytes(part))["config_hash"])
        except (OSError, ValueError, KeyError):
            continue
    return hashes


def check_out(out: Path | str | Store, cfg_hash: str, overwrite: bool) -> None:
    """Refuse an output folder that is a file, holds something that is not a medshard
    build, or holds another build (other config or sources) unless `overwrite`.

    The same config resumes: finished shards are kept.
    """
    store = out if isinstance(out, Store) else Store(out)
    if store.is_file():
        raise UserError(f"--out {store} is a file; give a directory (a new one, or a build's "
                        "to resume it)")
    if not store.is_dir():
        return
    foreign = sorted(n for n in store.listdir() if n not in BUILD_ENTRIES
                     and not (n.startswith(".") and n.endswith(".tmp")))
    if foreign:
        raise UserError(f"--out {store} holds files that are not a medshard build "
                        f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                        "give an empty or new folder")
    others = _existing_build_hashes(store) - {cfg_hash}
    if others and not overwrite:
        raise UserError(f"--out {store} holds another build (other config or sources, "
                        f"config {sorted(others)[0][:12]}); give a new folder, or add "
                        "--overwrite to replace it (removes the files the new build does "
                        "not list)")


def _remove_unlisted(store: Store, jobs: list[ShardJob]) -> None:
    """--overwrite: delete every shard, plan and part of the replaced build that this
    build does not produce (any source), then empty folders."""
    keep = {j.shard_path(f) for j in jobs for f in j.formats}
    keep |= {j.part_rel() for j in jobs} | {j.plan_rel() for j in jobs}
    for top in (*FORMATS, WORK_DIR):
        for rel in store.find(top):
            if rel not in keep:
                store.remove(rel)
        if not store.remote:  # object stores have no empty folders to leave behind
            for path in sorted(store.local(top).rglob("*"), reverse=True):
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()


def run_build(config: BuildConfig) -> BuildResult:
    """Build (or resume) the release in `config.out`. User errors raise UserError.

    One build at a time per output folder (`medshard.pipeline.lock`); a full disk or an
    unwritable output is a UserError, and what was finished stays for the next run.
    """
    clear_listing_cache()  # raw files on object storage may have changed since a last build
    excluded = apply_source_filter(config)
    sources = _check_config(config)
    store = Store(config.out)
    out = store.base
    cfg = config_record(config, sources, excluded)
    cfg_hash = hashlib.sha256(json_bytes(cfg)).hexdigest()
    check_out(store, cfg_hash, config.overwrite)
    replacing = bool(config.overwrite and store.is_dir()
                     and _existing_build_hashes(store) - {cfg_hash})
    try:
        store.mkdir()
        lock = RemoteBuildLock(store) if store.remote else BuildLock(store.local(""))
        with lock:
            return _locked_build(config, sources, cfg, cfg_hash, replacing, store)
    except OSError as exc:
        problem = _storage_error(exc, out)
        if problem is None:
            raise
        raise problem from None
    except Exception as exc:  # Beam re-raises a worker's OSError wrapped in its own type
        problem = _storage_error(exc, out) if not isinstance(exc, UserError) else None
        if problem is None:
            raise
        raise problem from None


def _locked_build(config: BuildConfig, sources: dict[str, Source], cfg: dict[str, Any],
                  cfg_hash: str, replacing: bool, store: Store) -> BuildResult:
    jobs, bad_rows = plan_jobs(config, sources, cfg_hash)
    # --dedupe: a hash-only pass first; the later copies' keys go to their shards' jobs
    dedupe = plan_dedupe(jobs, lambda todo: _run_beam(todo, config)) if config.dedupe else None

    todo: list[ShardJob] = []
    raw_changed: dict[str, list[str]] = {}
    for job in jobs:
        done = load_done_part(job, store)
        if done is not None and config.verify_raw:
            changed = _raw_changes(job, verify_raw=True)
            if changed:
                done = None
                store.remove(job.part_rel())
        else:
            changed = _raw_changes(job, verify_raw=False) if done is None else None
        if done is None:
            todo.append(job)
            if changed:
                raw_changed[job.stem] = changed
    if raw_changed:
        files = sorted({f for fs in raw_changed.values() for f in fs})
        log.warning("raw files changed since the last build (%d, e.g. %s): rebuilding %d shards",
                    len(files), files[0], len(raw_changed))
    log.info("%d shards planned, %d already built", len(jobs), len(jobs) - len(todo))

    worker_shards: dict[str, int] = {}
    if todo:
        started = time.monotonic()
        with _Progress(todo, config.progress, store):
            worker_shards = _run_beam(todo, config)
        log.info("wrote %d shards in %.1fs on %d worker processes", len(todo),
                 time.monotonic() - started, len(worker_shards))

    part_paths = [job.part_rel() for job in jobs]
    present = set(store.find(PARTS_DIR))
    for job, path in zip(jobs, part_paths, strict=True):
        if path not in present:
            raise RuntimeError(f"shard {job.stem} produced no result; run the build again")

    duplicates = build_report(jobs, dedupe)  # before --overwrite tidies the work folder
    if replacing:
        _remove_unlisted(store, jobs)
    else:
        _remove_stale_shards(store, jobs, list(sources))
    receipts = {s: d for s in sorted(sources) if (d := receipt_digest(source_root(config, s)))}
    _finish(store, part_paths, sources, cfg, cfg_hash, receipts, bad_rows, duplicates)
    manifest = Manifest.model_validate_json(store.read_bytes("manifest.json"))
    out = store.local("") if not store.remote else store.base
    return BuildResult(out, manifest, len(todo), len(jobs) - len(todo), raw_changed,
                       worker_shards)


def _read_parts(store: Store, paths: list[str]):
    """Parts in plan order, one at a time (a build may have many thousands)."""
    for path in paths:
        yield json.loads(store.read_bytes(path))


def _finish(
    store: Store,
    part_paths: list[str],
    sources: dict[str, Source],
    cfg: dict[str, Any],
    cfg_hash: str,
    receipts: dict[str, str],
    bad_rows: list[dict[str, Any]] | None = None,
    duplicates: DuplicateReport | None = None,
) -> None:
    """Counts, manifest, index and quarantine from the parts, streaming them from disk.

    Index rows that made no record are counted under the pseudo-split LIST_PSEUDO_SPLIT
    (listed = quarantined there) and lead quarantine.jsonl.
    """
    counts: dict[str, dict[str, SplitCounts]] = {
        s: {sp: SplitCounts() for sp in (*SPLITS, LIST_PSEUDO_SPLIT)} for s in sources
    }
    for line in bad_rows or []:
        c = counts[line["source"]][LIST_PSEUDO_SPLIT]
        c.listed += 1
        c.quarantined += 1
    shards = []
    label_files: dict[str, dict[str, str]] = {}
    for part in _read_parts(store, part_paths):
        c = counts[part["source"]][part["split"]]
        c.listed += part["listed"]
        c.written += part["written"]
        c.quarantined += part["quarantined"]
        c.filtered += part["filtered"]
        c.samples += part["samples"]
        for reason, n in part["filtered_reasons"].items():
            c.filtered_reasons[reason] = c.filtered_reasons.get(reason, 0) + n
        for rate, n in part.get("original_rates", {}).items():
            c.original_rates[rate] = c.original_rates.get(rate, 0) + n
        shards.extend(part["shards"])
        label_files.setdefault(part["source"], part.get("label_files", {}))
    for slug, per_split in counts.items():
        for split, c in per_split.items():
            if c.listed != c.written + c.quarantined + c.filtered:
                raise RuntimeError(f"counts do not reconcile for {slug}/{split}: {c}")
    vocab = load_vocabulary()
    for per_split in counts.values():
        for c in per_split.values():
            c.original_rates = dict(sorted(c.original_rates.items(), key=lambda kv: float(kv[0])))
    summaries = {
        slug: SourceSummary(
            version=src.info.version,
            license=src.info.license.spdx or src.info.license.name,
            access=src.info.access,
            modality=src.info.modality,
            split_policy=src.info.split_policy,
            split_unit=src.info.split_unit,
            concepts=vocab.map_classes(slug, src.label_classes(), src.vocabulary_map),
            label_files=label_files.get(slug, {}),
            counts={sp: c for sp, c in counts[slug].items() if c.listed},
        )
        for slug, src in sorted(sources.items())
    }
    manifest = Manifest(
        medshard_version=__version__,
        config=cfg,
        config_hash=cfg_hash,
        vocabulary_version=cfg["vocabulary_version"],
        pseudonym_key_id=key_id(installation_secret()),
        sources=summaries,
        shards=shards,
        raw_receipts=receipts,
        duplicates=duplicates,
    )
    index_tmp = store.local_temp("index.parquet")
    try:
        write_index(index_tmp, lambda: (r for p in _read_parts(store, part_paths)
                                        for r in p["index_rows"]))
        store.publish(index_tmp, "index.parquet")
    finally:
        index_tmp.unlink(missing_ok=True)
    store.write_bytes("quarantine.jsonl", quarantine_bytes(itertools.chain(
        bad_rows or [], (q for p in _read_parts(store, part_paths) for q in p["quarantine"]))))
    store.write_bytes("manifest.json", manifest_bytes(manifest))


__all__ = ["BuildConfig", "BuildResult", "PARTS_DIR", "run_build"]
