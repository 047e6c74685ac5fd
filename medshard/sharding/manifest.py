"""manifest.json, index.parquet and quarantine.jsonl: written once, from the finished parts."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medshard.schemas import Manifest
from medshard.sharding.members import json_bytes

INDEX_BASE = [
    ("key", pa.string()),
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
]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _meta_column_type(values: list[Any]) -> pa.DataType:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.float64()
    return pa.string()


def write_index(path: Path, rows: list[dict[str, Any]]) -> None:
    """One row per sample; scalar metadata becomes typed `meta_<name>` columns."""
    meta_cols = sorted({k for r in rows for k in r if k.startswith("meta_") and k != "meta_json"})
    fields = [pa.field(n, t) for n, t in INDEX_BASE]
    columns: dict[str, list[Any]] = {n: [r.get(n) for r in rows] for n, _ in INDEX_BASE}
    for c in meta_cols:
        vals = [r.get(c) for r in rows]
        t = _meta_column_type(vals)
        if t == pa.string():
            vals = [None if v is None else str(v) for v in vals]
        elif t == pa.float64():
            vals = [None if v is None else float(v) for v in vals]
        fields.append(pa.field(c, t))
        columns[c] = vals
    table = pa.Table.from_pydict(columns, schema=pa.schema(fields))
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def write_quarantine(path: Path, lines: Iterable[dict[str, Any]]) -> None:
    _atomic_write(path, b"".join(json_bytes(line) + b"\n" for line in lines))


def write_manifest(path: Path, manifest: Manifest) -> None:
    data = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    _atomic_write(path, data.encode())


def read_manifest(path: str | Path) -> Manifest:
    return Manifest.model_validate_json(Path(path).read_text())
