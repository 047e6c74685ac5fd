"""One shard task: read, transform, validate, encode and stream one shard's samples to its files.

This is the unit of work of the build. It runs on a Beam worker with nothing but a
`ShardJob` (plain, picklable) and writes, through `medshard.sharding.storage.Store` (a
local folder or any fsspec URL):
  - the shard file(s), to a local temporary file put in place (renamed, or uploaded in
    one request) only when complete;
  - a part file `<out>/.medshard/parts/<stem>.json` with the shard infos, the index rows,
    the quarantine lines and the counts, written last: its presence marks the shard done.
A record either lands whole (all its samples) or not at all: samples are spooled per
record and only appended to the shard once the record has loaded without error.
A raw root on object storage is read through `medshard.formats.remote`: each record's
files are staged to a local folder that is deleted when the record is done.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import re
import tempfile
import traceback
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from medshard import __version__
from medshard.formats.remote import (
    RemotePath,
    clear_listing_cache,
    current_staging_dir,
    open_root,
    staging_area,
)
from medshard.pipeline.duplicates import DEDUPE_REASON, payload_hashes
from medshard.pipeline.encoders import encode_payloads
from medshard.schemas import Filtered, RawRecord, RecordError, SampleMeta
from medshard.schemas.standards import DEFAULT_PNG_LEVEL, SignalSpec
from medshard.schemas.vocabulary import load_vocabulary
from medshard.sharding.layout import shard_path
from medshard.sharding.members import JSON_MEMBER, json_bytes
from medshard.sharding.parquet import ParquetShardWriter
from medshard.sharding.storage import Store, temp_name  # noqa: F401  (temp_name: re-export)
from medshard.sharding.wds import TarShardWriter
from medshard.sources.registry import get_source

log = logging.getLogger("medshard.build")

PARTS_DIR = ".medshard/parts"
SPOOL_LIMIT = 32 << 20  # bytes of one record's encoded samples held in memory before spilling


PLANS_DIR = ".medshard/plans"
HASHES_DIR = ".medshard/hashes"  # parts of the hash-only pass of --dedupe


@dataclass
class ShardJob:
    """Everything a worker needs for one shard. Subject ids are already pseudonyms.

    The records themselves live in a plan file next to the output (`plan_path()`), so
    what crosses into the pipeline graph is a few hundred bytes per shard whatever the
    shard holds; `n_records` says how many there are.
    """

    source: str
    split: str
    index: int
    n_records: int
    source_root: str
    source_options: dict[str, Any]
    source_version: str
    modality: str
    formats: tuple[str, ...]
    signal_specs: dict[str, SignalSpec]
    config_hash: str
    out: str
    row_group_bytes: int = 16 << 20
    parquet_payload_compression: str = "none"
    png_level: int = DEFAULT_PNG_LEVEL
    records_digest: str = ""
    label_files: dict[str, str] | None = None  # relative path -> sha256, hashed by the driver
    follow_symlinks_within_root: bool = False
    payload_members: tuple[str, ...] = ()  # what this source declares (Source.payload_members)
    demographic_fields: dict[str, str] | None = None  # Source.demographic_fields
    parquet_columns: tuple[str, ...] = ()  # payload columns of every Parquet shard of the build
    # --dedupe (medshard.pipeline.duplicates): the hash-only pass writes no shard, and the
    # keys of later copies this shard must leave out
    hash_only: bool = False
    dedupe_drop: tuple[str, ...] = ()

    @property
    def stem(self) -> str:
        return f"{self.source}/{self.split}/{self.source}-{self.split}-{self.index:06d}"

    def shard_path(self, fmt: str) -> str:
        """`webdataset/<stem>.tar` or `parquet/<stem>.parquet`, relative to the output."""
        return shard_path(fmt, self.stem)

    def part_rel(self) -> str:
        """The part file, relative to the output."""
        return f"{HASHES_DIR if self.hash_only else PARTS_DIR}/{self.stem}.json"

    def plan_rel(self) -> str:
        """The plan file, relative to the output."""
        return f"{PLANS_DIR}/{self.stem}.jsonl"

    def store(self) -> Store:
        return Store(self.out)


def write_plan(job: ShardJob, records: list[bytes], store: Store | None = None) -> None:
    """Write the shard's records (canonical JSON, one per line) where every worker can read them."""
    store = store or job.store()
    data = b"".join(r + b"\n" for r in records)
    if store.size(job.plan_rel()) == len(data) and store.read_bytes(job.plan_rel()) == data:
        return
    store.write_bytes(job.plan_rel(), data)


def raw_fingerprint(root: Path | RemotePath, rel: str) -> list[int] | None:
    """[size, mtime_ns, inode] of a raw file (symlinks followed); None when it is absent.
    On object storage: [size, last-modified in whole seconds, a number from the ETag].

    Recorded per shard: a file changed in place (same size) changes its mtime, so a
    re-run rebuilds the shards that read it (`--verify-raw` compares content hashes).
    """
    try:
        st = (root / rel).stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def read_plan(job: ShardJob, store: Store | None = None) -> list[RawRecord]:
    data = (store or job.store()).read_bytes(job.plan_rel())
    return [RawRecord.model_validate_json(line) for line in data.splitlines() if line.strip()]


def records_digest(records: list[bytes]) -> str:
    """Identity of a shard's planned records (their canonical JSON), to detect a changed plan."""
    h = hashlib.sha256()
    for r in records:
        h.update(r)
    return h.hexdigest()


def sha256_file(path: Path | RemotePath, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class _HashingWriter(io.RawIOBase):
    """File wrapper that hashes and counts bytes as they are written."""

    def __init__(self, f) -> None:
        self._f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._f.write(b)
        self.sha.update(b)
        self.size += len(b)
        return len(b)

    def flush(self) -> None:
        self._f.flush()


class _RecordSpool:
    """Encoded samples of one record; spills to a temp file past SPOOL_LIMIT."""

    def __init__(self) -> None:
        self._mem: list[tuple[dict, bytes, dict[str, bytes]]] = []
        self._bytes = 0
        self._file: Any = None
        self.count = 0

    def add(self, meta: dict, meta_json: bytes, payloads: dict[str, bytes]) -> None:
        self.count += 1
        if self._file is None:
            self._mem.append((meta, meta_json, payloads))
            self._bytes += len(meta_json) + sum(len(v) for v in payloads.values())
            # a lone sample stays in memory: its arrays are alive in the caller anyway
            if self._bytes > SPOOL_LIMIT and self.count > 1:
                self._file = tempfile.TemporaryFile()
                for item in self._mem:
                    pickle.dump(item, self._file, protocol=pickle.HIGHEST_PROTOCOL)
                self._mem = []
        else:
            pickle.dump((meta, meta_json, payloads), self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def drain(self):
        if self._file is None:
            yield from self._mem
            self._mem = []
            return
        self._file.seek(0)
        while True:
            try:
                yield pickle.load(self._file)
            except EOFError:
                break
        self._file.close()
        self._file = None

    def discard(self) -> None:
        self._mem = []
        if self._file is not None:
            self._file.close()
            self._file = None


def _confined_sha256(source: Any, root: Path, rel: str) -> str | None:
    """sha256 of a raw file inside the source root; None when absent, unreadable or outside."""
    try:
        return sha256_file(source.path(root, rel))
    except (OSError, RecordError):
        return None


def relative_message(message: str, root: Path | RemotePath) -> str:
    """`message` with the source root's absolute path (a remote root's URL, the staging
    folder of its local copies) removed: quarantine lines are shared, and the same
    whichever machine or storage the raw files were read from."""
    if isinstance(root, RemotePath):
        bases = {str(root), root.fs_path}
        staged = current_staging_dir()
        if staged is not None:
            bases |= {str(staged), str(staged.resolve())}
        sep = "/"
    else:
        bases = {str(root), str(root.resolve()), os.path.abspath(root)}
        sep = os.sep
    for base in sorted(bases, key=len, reverse=True):
        message = message.replace(base + sep, "").replace(base, ".")
    return message


def _quarantine_line(job: ShardJob, rec: RawRecord, key: str, stage: str, exc: BaseException):
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    message = relative_message(message, open_root(job.source_root))
    if isinstance(exc, ValidationError):
        message = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
    return {
        "key": key,
        "source": job.source,
        "split": job.split,
        "record_id": rec.record_id,
        "files": list(rec.files),
        "stage": stage,
        "error_type": type(exc).__name__,
        "message": message[:500],
    }


DEMOGRAPHIC_DEFAULTS = {"sex": "sex", "age_years": "age", "site": "site"}
_SEX_CODES = {"f": "F", "female": "F", "w": "F", "m": "M", "male": "M", "o": "O", "other": "O"}


def sex_code(value: Any) -> str | None:
    """One coded vocabulary for sex across sources: F, M, O (other) or None (unknown)."""
    if value is None:
        return None
    return _SEX_CODES.get(str(value).strip().lower())


def _demographics(meta: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    age = meta.get(fields["age_years"])
    site = meta.get(fields["site"])
    return {
        "sex": sex_code(meta.get(fields["sex"])),
        "age_years": float(age) if isinstance(age, (int, float)) and not isinstance(age, bool)
        else None,
        "site": None if site is None else str(site),
    }


def _index_row(meta: dict, job: ShardJob) -> dict[str, Any]:
    fields = {**DEMOGRAPHIC_DEFAULTS, **(job.demographic_fields or {})}
    row = {
        "key": meta["key"],
        "full_key": meta["full_key"],
        "source": meta["source"],
        "modality": meta["modality"],
        "split": meta["split"],
        "subject": meta["subject"],
        "task": meta["task"],
        "labels": meta["labels"],
        "shard_webdataset": job.shard_path("webdataset") if "webdataset" in job.formats else None,
        "shard_parquet": job.shard_path("parquet") if "parquet" in job.formats else None,
        "source_labels_json": json_bytes(meta["source_labels"]).decode(),
        "meta_json": json_bytes(meta["meta"]).decode(),
        **_demographics(meta["meta"], fields),
    }
    promoted = set(fields.values())  # in the first-class columns, not repeated as meta_*
    for k, v in meta["meta"].items():
        if k not in promoted and (isinstance(v, (str, int, float, bool)) or v is None):
            row[f"meta_{k}"] = v
    return row


def _digests(hashes: dict[str, str]) -> list[dict[str, str]]:
    return [{"path": p, "sha256": h} for p, h in hashes.items()]


_KEY_PART = re.compile(r"^[A-Za-z0-9_-]+$")


# A tar member name is `<key>.<role>.<ext>` and ustar holds 100 bytes: keys are bounded so
# that every role of up to 30 characters fits (longer member names are quarantined).
MAX_KEY_CHARS = 64
TAR_NAME_BYTES = 100


def full_sample_key(source: str, record_id: str, suffix: str | None = None) -> str:
    """`<source>_<record_id>[_<suffix>]`, unbounded: what `sample_key` shortens."""
    if suffix is not None and not _KEY_PART.match(suffix):
        raise ValueError(f"key suffix {suffix!r} must be letters, digits, _ or -")
    return f"{source}_{record_id}" + (f"_{suffix}" if suffix is not None else "")


def sample_key(source: str, record_id: str, suffix: str | None = None) -> str:
    """The sample's key, the same in every format: `<source>_<record_id>[_<suffix>]` when
    that has at most MAX_KEY_CHARS characters, else its first 47 characters, `-` and 16
    hex digits of its sha256 (the full name is then kept in the sample's `full_key`)."""
    key = full_sample_key(source, record_id, suffix)
    if len(key) <= MAX_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{key[:MAX_KEY_CHARS - 17]}-{digest}"


def check_member_names(key: str, members: dict[str, Any]) -> None:
    """RecordError when a `<key>.<member>` name does not fit a ustar header."""
    for name in members:
        full = f"{key}.{name}"
        if len(full.encode()) > TAR_NAME_BYTES:
            raise RecordError(f"member name {full[:40]}... is {len(full.encode())} bytes; a tar "
                              f"member name holds {TAR_NAME_BYTES}: use a shorter payload role")


def _rate_key(hz: float) -> str:
    """`500.0` -> "500", `128.5` -> "128.5": manifest keys for sampling rates."""
    return f"{float(hz):g}"


def run_shard_job(job: ShardJob) -> dict[str, Any]:
    """Process one shard end to end; returns the part dict (also written to disk)."""
    clear_listing_cache()  # a retried or later task sees the raw files as they are now
    store = job.store()
    source = get_source(job.source, **job.source_options)
    source.follow_symlinks_within_root = job.follow_symlinks_within_root
    root = open_root(job.source_root)
    remote_root = isinstance(root, RemotePath)
    vocab = load_vocabulary()

    writers: dict[str, Any] = {}
    files: dict[str, tuple[str, Path, Any, _HashingWriter]] = {}
    for fmt in job.formats:
        final = job.shard_path(fmt)
        tmp = store.local_temp(final)
        fh = open(tmp, "wb")
        hw = _HashingWriter(fh)
        files[fmt] = (final, tmp, fh, hw)
        if fmt == "webdataset":
            writers[fmt] = TarShardWriter(hw)  # type: ignore[arg-type]
        else:
            writers[fmt] = ParquetShardWriter(
                hw,  # type: ignore[arg-type]
                row_group_bytes=job.row_group_bytes,
                payload_compression=job.parquet_payload_compression,
                payload_columns=job.parquet_columns,
            )

    try:
        quarantine: list[dict] = []
        index_rows: list[dict] = []
        filtered_reasons: Counter[str] = Counter()
        original_rates: Counter[str] = Counter()
        written = samples = deduped = 0
        hashes: list[list[str]] = []  # [key, member, sha256] of each written payload
        drop = set(job.dedupe_drop)
        provenance_base = {
            "source_version": job.source_version,
            "transform_config_hash": job.config_hash,
            "medshard_version": __version__,
        }

        records = read_plan(job, store)
        raw_files = {f: raw_fingerprint(root, f) for rec in records for f in rec.files}
        raw_sha256: dict[str, str | None] = {}
        if len(records) != job.n_records:
            raise RuntimeError(f"plan {store.url(job.plan_rel())} has {len(records)} records, expected "
                               f"{job.n_records}; run the build again")
        for rec in records:
            # a remote root's files are staged per record (one fetch for hash and load)
            with staging_area(rec.files) if remote_root else nullcontext():
                for f in rec.files:  # recorded for `--verify-raw`; one read, shared with provenance
                    if f not in raw_sha256:
                        raw_sha256[f] = _confined_sha256(source, root, f)
                spool = _RecordSpool()
                keys: list[str] = []
                key = sample_key(job.source, rec.record_id)
                stage = "load"
                file_hashes: dict[str, str] | None = None
                try:
                    for sample in source.load(rec, root):
                        stage = "transform"
                        key = sample_key(job.source, rec.record_id, sample.key_suffix)
                        full_key = full_sample_key(job.source, rec.record_id, sample.key_suffix)
                        members, descriptors = encode_payloads(sample, job.signal_specs, job.modality, key,
                                                                 job.png_level)
                        undeclared = sorted(set(members) - set(job.payload_members))
                        if undeclared:
                            raise RecordError(
                                f"payload member {undeclared[0]} is not in the source's "
                                f"payload_members {list(job.payload_members)}; declare it there"
                            )
                        stage = "labels"
                        labels = vocab.map_classes(job.source, sample.classes, source.vocabulary_map)
                        stage = "provenance"
                        if file_hashes is None:
                            file_hashes = {f: raw_sha256[f] or sha256_file(source.path(root, f))
                                           for f in rec.files}
                        stage = "validate"
                        meta_obj = SampleMeta(
                            key=key,
                            full_key=None if key == full_key else full_key,
                            source=job.source,
                            modality=job.modality,  # type: ignore[arg-type]
                            split=job.split,  # type: ignore[arg-type]
                            subject=rec.subject_id,
                            task=sample.task,
                            labels=labels,
                            source_labels=sample.source_labels,
                            meta=sample.meta,
                            provenance={"files": _digests(file_hashes),
                                        "label_files": _digests(job.label_files or {}),
                                        **provenance_base},
                            payloads=descriptors,
                            members=list(members),
                        )
                        stage = "encode"
                        check_member_names(key, {JSON_MEMBER: b"", **members})
                        # nulls kept: every sample of a kind has every descriptor field (one shape)
                        meta = meta_obj.model_dump(mode="json")
                        meta_json = json_bytes(meta)
                        spool.add(meta, meta_json, members)
                        keys.append(key)
                        del sample, members, descriptors, meta, meta_json  # spilled copies only
                except Filtered as exc:
                    spool.discard()
                    filtered_reasons[str(exc)] += 1
                    continue
                except Exception as exc:  # any failure of one record is quarantined, never fatal
                    spool.discard()
                    quarantine.append(_quarantine_line(job, rec, key, stage, exc))
                    log.debug("quarantined %s at %s: %s", key, stage, traceback.format_exc())
                    continue
                if spool.count == 0:
                    filtered_reasons["no samples"] += 1
                    continue
                if drop and all(k in drop for k in keys):
                    spool.discard()
                    filtered_reasons[DEDUPE_REASON] += 1
                    deduped += len(keys)
                    continue
                for meta, meta_json, members in spool.drain():
                    if meta["key"] in drop:  # one later copy among the record's samples
                        deduped += 1
                        continue
                    hashes += payload_hashes(meta["key"], members, meta["payloads"])
                    if "webdataset" in writers:
                        writers["webdataset"].write(
                            meta["key"], [(JSON_MEMBER, meta_json), *members.items()]
                        )
                    if "parquet" in writers:
                        writers["parquet"].write(meta, meta_json, members)
                    index_rows.append(_index_row(meta, job))
                    for desc in meta["payloads"].values():
                        if desc["kind"] == "signal":
                            original_rates[_rate_key(desc["original_sampling_rate_hz"])] += 1
                    samples += 1
                written += 1

        shard_infos = []
        for fmt, (final, tmp, fh, hw) in files.items():
            writers[fmt].close()
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            store.publish(tmp, final)  # complete: renamed, or uploaded in one request
            shard_infos.append(
                {
                    "path": final,
                    "format": fmt,
                    "source": job.source,
                    "split": job.split,
                    "samples": samples,
                    "bytes": hw.size,
                    "sha256": hw.sha.hexdigest(),
                }
            )

    except BaseException:
        # a failed shard (full disk, a bug) leaves no temporary file and no open stream
        _abort(files, writers)
        raise

    part = {
        "stem": job.stem,
        "source": job.source,
        "split": job.split,
        "index": job.index,
        "config_hash": job.config_hash,
        "records_digest": job.records_digest,
        "listed": len(records),
        "written": written,
        "quarantined": len(quarantine),
        "filtered": sum(filtered_reasons.values()),
        "filtered_reasons": dict(sorted(filtered_reasons.items())),
        "original_rates": dict(sorted(original_rates.items())),
        "label_files": job.label_files or {},
        "raw_files": raw_files,
        "raw_sha256": raw_sha256,
        "samples": samples,
        "deduped_samples": deduped,
        "payload_hashes": hashes,
        "shards": shard_infos,
        "quarantine": quarantine,
        "index_rows": index_rows,
    }
    store.write_bytes(job.part_rel(), json_bytes(part))  # written last: marks the shard done
    return part


def _abort(files: dict[str, tuple[str, Path, Any, Any]], writers: dict[str, Any]) -> None:
    """Close and delete a shard's temporary files without finishing them."""
    for fmt, (_final, tmp, fh, _hw) in files.items():
        abort = getattr(writers.get(fmt), "abort", None)
        if abort is not None:
            abort()
        if not fh.closed:
            fh.close()
        tmp.unlink(missing_ok=True)


def read_part(job: ShardJob, store: Store | None = None) -> dict[str, Any] | None:
    """The part file an earlier run left for this shard with the same config; None if absent,
    unreadable or from another config."""
    store = store or job.store()
    try:
        part = json.loads(store.read_bytes(job.part_rel()))
    except (OSError, ValueError):
        return None
    return part if part.get("config_hash") == job.config_hash else None


def load_done_part(job: ShardJob, store: Store | None = None) -> dict[str, Any] | None:
    """The part of a shard finished by an earlier run with the same config and records, if intact."""
    store = store or job.store()
    part = read_part(job, store)
    if part is None or part.get("records_digest") != job.records_digest:
        return None
    if sorted(s["format"] for s in part["shards"]) != sorted(job.formats):
        return None
    for s in part["shards"]:
        if store.size(s["path"]) != s["bytes"]:
            return None
    return part
