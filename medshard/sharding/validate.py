"""Re-check a build against its manifest: every shard's existence, sample count and sha256.

The build may be a local folder or any fsspec URL (`medshard.sharding.storage.Store`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow.parquet as pq

from medshard.schemas import Manifest
from medshard.sharding.layout import WORK_DIR
from medshard.sharding.members import split_member_name
from medshard.sharding.storage import Store
from medshard.sharding.wds import iter_tar_members


def _count_tar_samples(store: Store, rel: str) -> int:
    keys = set()
    with store.open_read(rel) as f:
        for name, _ in iter_tar_members(f):
            keys.add(split_member_name(name)[0])
    return len(keys)


def _store(out: str | os.PathLike[str] | Store) -> Store:
    return out if isinstance(out, Store) else Store(out)


def unlisted_files(out: str | os.PathLike[str] | Store, manifest: Manifest) -> list[str]:
    """Shard files under `out` that the manifest does not list (orphans of another build),
    outside the build's working folder `.medshard/`."""
    listed = {s.path for s in manifest.shards}
    found = []
    for rel in _store(out).find():
        if (Path(rel).suffix in (".tar", ".parquet") and rel not in listed
                and rel != "index.parquet" and not rel.startswith(f"{WORK_DIR}/")):
            found.append(rel)
    return found


def validate_build(out: str | os.PathLike[str] | Store, manifest: Manifest) -> list[str]:
    """One line per shard that is missing or differs from the manifest, and per shard file
    that no manifest lists; empty when all match. `out`: a folder or an fsspec URL."""
    store = _store(out)
    problems = [f"{rel}: not listed in the manifest (another build's shard: remove it, or "
                "rebuild with --overwrite)" for rel in unlisted_files(store, manifest)]
    for shard in manifest.shards:
        if not store.is_file(shard.path):
            problems.append(f"{shard.path}: missing")
            continue
        h = hashlib.sha256()
        with store.open_read(shard.path) as f:
            while block := f.read(1 << 20):
                h.update(block)
        if h.hexdigest() != shard.sha256:
            problems.append(f"{shard.path}: sha256 {h.hexdigest()[:12]}.. != {shard.sha256[:12]}..")
            continue
        try:
            if shard.format == "webdataset":
                n = _count_tar_samples(store, shard.path)
            else:
                with store.open_read(shard.path) as f:
                    n = pq.ParquetFile(f).metadata.num_rows
        except Exception as exc:
            problems.append(f"{shard.path}: unreadable ({exc})")
            continue
        if n != shard.samples:
            problems.append(f"{shard.path}: {n} samples, manifest says {shard.samples}")
    return problems
