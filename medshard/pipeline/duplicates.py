"""Exact duplicates across a build: the report every build writes, and `--dedupe`.

What is hashed: sha256 of each payload member's *stored* bytes (what the shard holds),
not of the raw files. For images kept as the source's JPEG/PNG the two are the same
bytes; where a payload is standardized (a DICOM re-encoded as PNG, a signal resampled)
the stored bytes are what a model sees, and two raw files that differ only in headers
(DICOM UIDs, EXIF) are the same image to it. Payloads that annotate another payload
(masks, label arrays with `annotates`) are not hashed: an empty mask repeats in every
normal image and says nothing about the image. Two samples are duplicates when any
hashed payload of one is byte-identical to one of the other (near-duplicates, re-encoded
or resized copies, are not found: this is exact matching).

Order: a build's samples in a fixed order, sources by name, then splits (train, val,
test), then sample key (shards are planned in key order). The first copy in that order
is kept; `--dedupe` drops every later one, counted as a filtered record with the reason
DEDUPE_REASON (a record whose samples all go) and listed in the report.

How, on any Beam runner: without `--dedupe` each shard task hashes the samples it writes
and lists `(key, member, sha256)` in its part file; the driver reads them part by part.
With `--dedupe` the shard tasks first run in hash-only mode (the same load, transform
and validation, no shard written; `ShardJob.hash_only`), the driver picks the later
copies, and each shard task gets the keys it must drop (`ShardJob.dedupe_drop`, entering
the shard's records digest so a changed choice rebuilds the shard). The driver holds
hashes and keys only, never a payload: about 100 bytes per distinct payload (measured:
a peak of 104 MiB for the report over 1,000,000 payloads).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from medshard.schemas.models import (
    DuplicateCopy,
    DuplicateGroup,
    DuplicateLink,
    DuplicateReport,
)
from medshard.sharding.members import NpyMember, json_bytes

if TYPE_CHECKING:  # shard_task imports this module: its names are imported where used
    from medshard.pipeline.shard_task import ShardJob

DEDUPE_REASON = "exact duplicate of an earlier sample's payload (--dedupe)"
CONTENT_HASH = ("sha256 of each payload member's stored bytes (the shard member); payloads "
                "that annotate another (masks) are not hashed")
ORDER = "source name, then split (train, val, test), then sample key; the first is kept"


def member_sha256(data: bytes | NpyMember) -> str:
    """sha256 of a member's bytes as the shard stores them (an .npy streamed, never copied)."""
    h = hashlib.sha256()
    if isinstance(data, NpyMember):
        for chunk in data.chunks():
            h.update(chunk)
    else:
        h.update(data)
    return h.hexdigest()


def payload_hashes(key: str, members: dict[str, Any],
                   descriptors: dict[str, dict[str, Any]]) -> list[list[str]]:
    """`[key, member, sha256]` for each payload of a sample that is not an annotation."""
    rows = []
    for desc in descriptors.values():
        if desc.get("annotates"):
            continue
        rows.append([key, desc["member"], member_sha256(members[desc["member"]])])
    return sorted(rows)


def hash_job(job: ShardJob) -> ShardJob:
    """The hash-only twin of a shard job: same records, no shard files, its own part file."""
    return dataclasses.replace(job, formats=(), hash_only=True, dedupe_drop=())


@dataclass
class Dedupe:
    """What `--dedupe` decided: keys dropped per shard stem, and the hash parts it read."""

    drop: dict[str, list[str]] = field(default_factory=dict)
    hash_jobs: list[ShardJob] = field(default_factory=list)


def _samples(rows: Iterable[list[str]]) -> Iterator[tuple[str, list[list[str]]]]:
    """Consecutive hash rows grouped per sample key."""
    key, group = None, []
    for row in rows:
        if row[0] != key and group:
            yield key, group  # type: ignore[misc]
            group = []
        key = row[0]
        group.append(row)
    if group:
        yield key, group  # type: ignore[misc]


def plan_dedupe(jobs: list[ShardJob], run: Callable[[list[ShardJob]], None]) -> Dedupe:
    """Hash every planned sample (running the hash-only shard tasks not done yet), choose
    the later copies, and set each job's `dedupe_drop` and records digest. Jobs are in
    build order (sources by name, splits, shard index), records in key order."""
    from medshard.pipeline.shard_task import load_done_part, read_part, records_digest

    hashed = [hash_job(j) for j in jobs]
    todo = [h for h in hashed if load_done_part(h) is None]
    if todo:
        run(todo)
    seen: set[bytes] = set()  # digests of the kept samples: 32 bytes each, no key
    result = Dedupe(hash_jobs=hashed)
    for job, h in zip(jobs, hashed, strict=True):
        part = read_part(h)
        if part is None:
            raise RuntimeError(f"hash pass of shard {job.stem} produced no result; run the "
                               "build again")
        drop: list[str] = []
        for key, rows in _samples(part.get("payload_hashes", [])):
            digests = [bytes.fromhex(r[2]) for r in rows]
            if any(d in seen for d in digests):
                drop.append(key)  # a later copy: its hashes do not become "first"
                continue
            seen.update(digests)
        if drop:
            result.drop[job.stem] = drop
            job.dedupe_drop = tuple(drop)
            job.records_digest = records_digest([job.records_digest.encode(),
                                                 json_bytes(drop)])
    return result


def duplicate_report(entries: Callable[[], Iterable[tuple[str, str, list[list[str]]]]],
                     dropped: set[str] | None = None) -> DuplicateReport:
    """The report from `(source, split, hash rows)` per shard, in build order.

    `entries()` is read twice: first counting each digest (the driver then holds 32 bytes
    and a count per distinct payload), then keeping the copies of the digests seen more
    than once. `dropped`: the `source/key` of the samples --dedupe removed (None: none).
    """
    counts: dict[bytes, int] = {}
    hashed = 0
    for _source, _split, rows in entries():
        for _key, _member, sha in rows:
            hashed += 1
            digest = bytes.fromhex(sha)
            counts[digest] = counts.get(digest, 0) + 1
    repeated = {d for d, n in counts.items() if n > 1}
    del counts
    groups: dict[bytes, list[tuple[str, str, str, str]]] = {}
    for source, split, rows in entries():
        for key, member, sha in rows:
            digest = bytes.fromhex(sha)
            if digest not in repeated:
                continue
            copies = groups.setdefault(digest, [])
            # the same bytes twice in one sample is not a duplicate sample
            if not any(c[0] == source and c[2] == key for c in copies):
                copies.append((source, split, key, member))
    groups = {d: c for d, c in groups.items() if len(c) > 1}
    out: list[DuplicateGroup] = []
    links: dict[tuple[str, str], int] = {}
    across_sources = across_splits = one_split = extra = 0
    for digest, copies in groups.items():
        places = sorted({f"{s}/{sp}" for s, sp, _, _ in copies})
        across_sources += len({s for s, _, _, _ in copies}) > 1
        across_splits += len({sp for _, sp, _, _ in copies}) > 1
        one_split += len(places) == 1
        extra += len(copies) - 1
        for i, a in enumerate(places):
            for b in places[i:] if len(places) == 1 else places[i + 1:]:
                links[(a, b)] = links.get((a, b), 0) + 1
        out.append(DuplicateGroup(
            sha256=digest.hex(),
            copies=[DuplicateCopy(source=s, split=sp, key=k, member=m)  # type: ignore[arg-type]
                    for s, sp, k, m in copies],
            dropped=[k for s, _, k, _ in copies if dropped and f"{s}/{k}" in dropped],
        ))
    return DuplicateReport(
        content_hash=CONTENT_HASH,
        order=ORDER,
        payloads_hashed=hashed,
        groups=len(out),
        extra_copies=extra,
        across_sources=across_sources,
        across_splits=across_splits,
        within_one_split=one_split,
        dedupe=dropped is not None,
        dropped=len(dropped or ()),
        links=[DuplicateLink(a=a, b=b, groups=n) for (a, b), n in sorted(links.items())],
        duplicate_groups=out,
    )


def build_report(jobs: list[ShardJob], dedupe: Dedupe | None) -> DuplicateReport:
    """The build's report: from the shard parts, or from the hash parts under --dedupe
    (which hold the dropped copies too). Parts are read one at a time."""
    from medshard.pipeline.shard_task import read_part

    sources = dedupe.hash_jobs if dedupe is not None else jobs

    def entries():
        for job in sources:
            part = read_part(job) or {}
            yield job.source, job.split, part.get("payload_hashes", [])

    dropped = None
    if dedupe is not None:
        by_stem = {j.stem: j.source for j in jobs}
        dropped = {f"{by_stem[stem]}/{k}" for stem, keys in dedupe.drop.items() for k in keys}
    return duplicate_report(entries, dropped)
