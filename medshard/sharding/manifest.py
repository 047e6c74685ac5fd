"""manifest.json, index.parquet and quarantine.jsonl: written once, from the finished parts."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medshard.schemas import Manifest
from medshard.sharding.members import json_bytes

INDEX_BASE = [
    ("key", pa.string()),
    ("full_key", pa.string()),  # the whole name where `key` was shortened; else null
    ("source", pa.string()),
    ("modality", pa.string()),
    ("split", pa.string()),
    ("subject", pa.string()),
    ("task", pa.string()),
    ("labels", pa.list_(pa.string())),
    ("shard_webdataset", pa.string()),
    ("shard_parquet", pa.string()),
    ("source_labels_json", pa.string()),
    ("meta_json", pa.string()),
    # demographics in one vocabulary across sources (Source.demographic_fields says where
    # each source keeps them): sex F/M/O, age in years (90 = 90 or older), site as a code
    ("sex", pa.string()),
    ("age_years", pa.float64()),
    ("site", pa.string()),
]


def _temp_name(path: Path) -> Path:
    """A temporary name beside `path` that no concurrent writer shares."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = _temp_name(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _meta_column_type(types: set[type]) -> pa.DataType:
    if types <= {bool}:
        return pa.bool_()
    if types <= {int}:  # integers stay integers (folds, window indices)
        return pa.int64()
    if types <= {int, float}:
        return pa.float64()
    return pa.string()


def write_index(path: Path, rows: Callable[[], Iterable[dict[str, Any]]],
                batch_rows: int = 4096) -> None:
    """One row per sample: the INDEX_BASE columns, then each scalar metadata field of any
    source as a `meta_<name>` column typed from its values (int64, float64, bool, string;
    null in the rows of sources without it), except fields null in every row.

    `rows` is called twice (column types first, then the rows), so the index of a
    build of any size streams to disk in row groups of `batch_rows`.
    """
    seen: dict[str, set[type]] = {}
    for r in rows():
        for k, v in r.items():
            if k.startswith("meta_") and k != "meta_json":
                types = seen.setdefault(k, set())
                if v is not None:
                    types.add(type(v))
    # a field null in every row says nothing: no column for it
    meta_types = {c: _meta_column_type(seen[c]) for c in sorted(seen) if seen[c]}
    schema = pa.schema([pa.field(n, t) for n, t in INDEX_BASE]
                       + [pa.field(c, t) for c, t in meta_types.items()])

    def table(batch: list[dict[str, Any]]) -> pa.Table:
        columns: dict[str, list[Any]] = {n: [r.get(n) for r in batch] for n, _ in INDEX_BASE}
        for c, t in meta_types.items():
            vals = [r.get(c) for r in batch]
            if t == pa.string():
                vals = [None if v is None else str(v) for v in vals]
            elif t == pa.float64():
                vals = [None if v is None else float(v) for v in vals]
            elif t == pa.int64():
                vals = [None if v is None else int(v) for v in vals]
            columns[c] = vals
        return pa.Table.from_pydict(columns, schema=schema)

    tmp = _temp_name(path)
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []
        for r in rows():
            batch.append(r)
            if len(batch) >= batch_rows:
                writer.write_table(table(batch))
                batch = []
        if batch:
            writer.write_table(table(batch))
    os.replace(tmp, path)


def quarantine_bytes(lines: Iterable[dict[str, Any]]) -> bytes:
    """quarantine.jsonl: one canonical JSON line per rejected record."""
    return b"".join(json_bytes(line) + b"\n" for line in lines)


def manifest_bytes(manifest: Manifest) -> bytes:
    """manifest.json: indented, keys sorted, one trailing newline."""
    return (json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()


def write_quarantine(path: Path, lines: Iterable[dict[str, Any]]) -> None:
    _atomic_write(path, quarantine_bytes(lines))


def write_manifest(path: Path, manifest: Manifest) -> None:
    _atomic_write(path, manifest_bytes(manifest))


def read_manifest(path: str | Path) -> Manifest:
    return Manifest.model_validate_json(Path(path).read_text())
