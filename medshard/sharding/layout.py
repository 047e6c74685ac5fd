"""Where a build's files live: each format in its own folder.

    OUT/webdataset/<source>/<split>/<source>-<split>-NNNNNN.tar
    OUT/parquet/<source>/<split>/<source>-<split>-NNNNNN.parquet

so that a directory read (`pq.read_table(OUT/parquet/ptb-xl)`, `pyarrow.dataset`, a glob)
sees one format. `.medshard/` holds the build's working files (plans, parts): never listed
in the manifest or index, never copied into a release.
"""

from __future__ import annotations

FORMAT_EXT = {"webdataset": "tar", "parquet": "parquet"}
WORK_DIR = ".medshard"


def shard_path(fmt: str, stem: str) -> str:
    """`webdataset/<stem>.tar` or `parquet/<stem>.parquet`, relative to the output."""
    return f"{fmt}/{stem}.{FORMAT_EXT[fmt]}"
