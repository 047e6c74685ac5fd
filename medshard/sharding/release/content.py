"""Per-sample content hashes, streamed from the shards a build wrote.

A sample's content hash is the sha256 of its canonical form:
  - its `<key>.json` re-encoded as canonical JSON, without the fields that say where or
    by what the sample was written rather than what it is: `split` (a move between
    splits is reported as a move, not a change), `provenance.transform_config_hash`,
    `provenance.medshard_version` and `provenance.label_files` (the hash of a label file
    every sample shares, e.g. ptbxl_database.csv: editing one row must not make every
    sample "changed"; each sample's own labels are in its JSON);
  - then each payload member, in the order its `members` field lists them, framed as
    `<extension> NUL <length as 8 bytes big-endian> <bytes>`.
The same sample written to a tar or a Parquet shard, with any shard size, hashes the
same, so re-serializing a release changes no content hash (a PATCH release).

Shards are read one at a time and one sample at a time: memory holds one sample's
members plus the `key -> hash` map of the split being hashed (~100 bytes a sample).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from medshard.schemas import Manifest
from medshard.sharding.members import json_bytes
from medshard.sharding.parquet import iter_parquet_samples
from medshard.sharding.wds import iter_tar_samples

CONTENT_HASH_METHOD = (
    "sha256 over the canonical JSON of <key>.json without split, "
    "provenance.transform_config_hash, provenance.medshard_version and "
    "provenance.label_files, then each payload "
    "member in `members` order as <ext> NUL <len:8 bytes big-endian> <bytes>"
)


def sample_content_hash(sample: dict[str, bytes]) -> tuple[str, dict]:
    """(content hash, parsed metadata) of one sample as the shard readers yield it."""
    meta = json.loads(sample["json"])
    canonical = dict(meta)
    canonical.pop("split", None)
    prov = dict(canonical.get("provenance") or {})
    prov.pop("transform_config_hash", None)
    prov.pop("medshard_version", None)
    prov.pop("label_files", None)
    canonical["provenance"] = prov
    h = hashlib.sha256(json_bytes(canonical))
    for ext in meta["members"]:
        data = sample[ext]
        h.update(ext.encode() + b"\0" + len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest(), meta


def _iter_shard(path: Path, fmt: str) -> Iterator[dict[str, bytes]]:
    if fmt == "webdataset":
        with open(path, "rb") as f:
            yield from iter_tar_samples(f)
    else:
        yield from iter_parquet_samples(str(path))


@dataclass
class SplitContent:
    hashes: dict[str, str] = field(default_factory=dict)
    labels: Counter = field(default_factory=Counter)


def split_digest(hashes: dict[str, str]) -> str:
    """sha256 over the sorted `key<TAB>hash<LF>` lines: one value that changes with any sample."""
    h = hashlib.sha256()
    for key in sorted(hashes):
        h.update(f"{key}\t{hashes[key]}\n".encode())
    return h.hexdigest()


def hash_build(out: Path, manifest: Manifest, progress: bool = True
               ) -> dict[str, dict[str, SplitContent]]:
    """source -> split -> content hashes and label histogram, from one format's shards.

    WebDataset shards are read when the build has them (sequential reads), else Parquet.
    """
    formats = {sh.format for sh in manifest.shards}
    fmt = "webdataset" if "webdataset" in formats else "parquet"
    shards = [sh for sh in manifest.shards if sh.format == fmt]
    result: dict[str, dict[str, SplitContent]] = defaultdict(dict)
    total = sum(sh.bytes for sh in shards)
    with tqdm(total=total, unit="B", unit_scale=True, desc="content hashes",
              disable=not progress, dynamic_ncols=True) as bar:
        for sh in shards:
            content = result[sh.source].setdefault(sh.split, SplitContent())
            n = 0
            for sample in _iter_shard(out / sh.path, fmt):
                digest, meta = sample_content_hash(sample)
                key = meta["key"]
                if key in content.hashes:
                    raise ValueError(f"sample key {key} appears twice in {sh.source}/{sh.split}")
                content.hashes[key] = digest
                content.labels.update(meta["labels"])
                n += 1
            if n != sh.samples:
                raise ValueError(f"{sh.path} holds {n} samples, its manifest says {sh.samples}")
            bar.update(sh.bytes)
    return dict(result)
