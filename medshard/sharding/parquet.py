"""Parquet shards: one row per sample, metadata columns plus binary payload columns.

Columns: key, source, modality, split, subject, labels (list<string>), json
(the sample metadata, as in the tar shards), then one binary column per payload
member named with dots replaced by underscores (`signal.npy` -> `signal_npy`).
The build passes the payload columns of every source it builds (each source's
`payload_members`), so every Parquet shard of a build has the same schema, null where a
sample lacks a member: pyarrow.dataset, DuckDB's glob and `datasets` read them together.
Row groups are bounded in bytes; metadata columns are zstd-compressed; payload columns
are uncompressed by default (they barely compress, and decompressing them slowed every
reader 2.6x on ECG shards) or zstd with `payload_compression="zstd"`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from medshard.sharding.members import NpyMember, column_name, member_bytes

BASE_FIELDS = [
    pa.field("key", pa.string()),
    pa.field("source", pa.string()),
    pa.field("modality", pa.string()),
    pa.field("split", pa.string()),
    pa.field("subject", pa.string()),
    pa.field("labels", pa.list_(pa.string())),
    pa.field("json", pa.string()),
]


class ParquetShardWriter:
    """Buffers rows up to `row_group_bytes`, then writes them as one row group."""

    def __init__(
        self,
        fileobj: BinaryIO,
        row_group_bytes: int = 16 << 20,
        payload_compression: str = "none",
        payload_columns: tuple[str, ...] | list[str] = (),
    ) -> None:
        self._fileobj = fileobj
        self._payload_columns = sorted(payload_columns)
        self._row_group_bytes = row_group_bytes
        self._payload_compression = payload_compression
        self._rows: list[dict[str, Any]] = []
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self.samples = 0

    def write(
        self, meta: dict[str, Any], meta_json: bytes, payloads: dict[str, bytes | NpyMember]
    ) -> None:
        row: dict[str, Any] = {
            "key": meta["key"],
            "source": meta["source"],
            "modality": meta["modality"],
            "split": meta["split"],
            "subject": meta["subject"],
            "labels": list(meta["labels"]),
            "json": meta_json.decode(),
        }
        for member, data in payloads.items():
            row[column_name(member)] = member_bytes(data)
        extra = set(row) - {f.name for f in BASE_FIELDS} - set(self._payload_columns)
        if extra:
            raise ValueError(f"sample {meta['key']} has payload columns {sorted(extra)} that "
                             f"the build's schema lacks ({self._payload_columns})")
        self._rows.append(row)
        self._buffered += sum(len(v) for v in payloads.values()) + len(meta_json)
        self.samples += 1
        if self._buffered >= self._row_group_bytes:
            self._flush()

    def _open(self) -> None:
        cols = self._payload_columns
        self._schema = pa.schema(BASE_FIELDS + [pa.field(c, pa.binary()) for c in cols])
        # payloads (float signals, JPEG/PNG, npy) barely compress and every reader pays
        # to decompress them: by default only the metadata columns are zstd-compressed
        compression = {f.name: "zstd" for f in BASE_FIELDS}
        compression.update({c: self._payload_compression for c in cols})
        self._writer = pq.ParquetWriter(
            self._fileobj, self._schema, compression=compression,
            write_statistics=["key", "split"],
        )

    def _flush(self) -> None:
        if not self._rows:
            return
        if self._schema is None:
            self._open()
        table = pa.Table.from_pylist(self._rows, schema=self._schema)
        assert self._writer is not None
        self._writer.write_table(table, row_group_size=len(self._rows))
        self._rows, self._buffered = [], 0

    def close(self) -> None:
        self._flush()
        if self._writer is None:  # an empty shard still gets a valid file, same schema
            self._open()
        assert self._writer is not None
        self._writer.close()


def iter_parquet_samples(
    source: str | BinaryIO, columns: list[str] | None = None
) -> Iterator[dict[str, bytes]]:
    """Yield samples in the same shape as the tar reader: {"__key__", "json", "<member>": bytes}.

    One row group is decoded at a time.
    """
    pf = pq.ParquetFile(source)
    for rg in range(pf.num_row_groups):
        table = pf.read_row_group(rg, columns=columns)
        cols = {n: table.column(n).to_pylist() for n in table.column_names}
        for i in range(table.num_rows):
            meta_json = cols["json"][i]
            members = json.loads(meta_json)["members"]
            sample: dict[str, bytes] = {
                "__key__": cols["key"][i].encode(),
                "json": meta_json.encode(),
            }
            for m in members:
                c = column_name(m)
                if c in cols and cols[c][i] is not None:
                    sample[m] = cols[c][i]
            yield sample
