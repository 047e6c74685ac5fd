"""A whole multi-source build, read by tools that are not medshard (issue #20).

pyarrow.dataset, DuckDB's plain glob and Hugging Face `datasets` (parquet and webdataset
builders) each read every Parquet shard / tar of the seven-source fixture build at once and
get every sample with its payload. The build is the conformance kit's (`kit` in conftest).
"""

from __future__ import annotations

import json

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from medshard.testing.kit import hf_webdataset_features


@pytest.fixture(scope="module")
def whole(kit):
    index = pq.read_table(kit.out / "index.parquet").to_pylist()
    members: dict[str, list[str]] = {}
    for shard in kit.manifest["shards"]:
        if shard["format"] == "parquet":
            for row in pq.read_table(kit.out / shard["path"], columns=["key", "json"]).to_pylist():
                members[row["key"]] = json.loads(row["json"])["members"]
    assert len(members) == len(index) and len(kit.manifest["sources"]) == 7
    return kit.out, members


def _assert_rows(rows: list[dict], members: dict[str, list[str]], key: str = "key") -> None:
    """Every sample once, and each of its members' bytes present under `<role>_<ext>`."""
    assert sorted(r[key] for r in rows) == sorted(members)
    for r in rows:
        for m in members[r[key]]:
            assert r[m.replace(".", "_")], (r[key], m)


def test_parquet_shards_share_one_schema(whole):
    out, _ = whole
    schemas = {pq.read_schema(p) for p in (out / "parquet").rglob("*.parquet")}
    assert len(schemas) == 1
    (schema,) = schemas
    for col in ("signal_npy", "image_png", "image_jpg", "image_npy", "volume_npy",
                "segmentation_npy", "video_avi"):
        assert col in schema.names


def test_pyarrow_dataset_reads_the_whole_build(whole):
    out, members = whole
    table = pads.dataset(out / "parquet", format="parquet").to_table()
    _assert_rows(table.to_pylist(), members)


def test_duckdb_plain_glob_reads_the_whole_build(whole):
    import duckdb

    rel = duckdb.sql(f"select * from '{out_glob(whole[0])}'")
    cols = rel.columns
    rows = [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]
    _assert_rows(rows, whole[1])


def out_glob(out) -> str:
    return f"{out}/parquet/*/*/*.parquet"


def test_a_source_folder_reads_as_one_table(whole):
    out, members = whole
    table = pq.read_table(out / "parquet" / "vindr-cxr")  # no .tar beside the .parquet
    assert table.num_rows == sum(1 for k in members if k.startswith("vindr-cxr_"))


def test_hf_parquet_builder_reads_the_whole_build(whole, tmp_path):
    import datasets

    out, members = whole
    ds = datasets.load_dataset("parquet", data_files=out_glob(out), split="train",
                               cache_dir=str(tmp_path))
    _assert_rows(ds.to_list(), members)


def test_hf_webdataset_builder_reads_every_tar_of_the_build(whole, tmp_path):
    """One load per source (the release card's configs): the JSON of two sources differs
    in shape (CheXpert's source_labels are cells, VinDr-CXR's vote lists), so one
    datasets table holds one source's tars; the Parquet `json` column is a string instead."""
    import datasets

    out, members = whole
    rows = []
    for source in sorted(p.name for p in (out / "webdataset").iterdir()):
        tars = sorted(str(p) for p in (out / "webdataset" / source).rglob("*.tar"))
        ds = datasets.load_dataset("webdataset", data_files=tars, split="train",
                                   cache_dir=str(tmp_path),
                                   features=hf_webdataset_features(tars))
        rows += ds.to_list()
    assert sorted(r["__key__"] for r in rows) == sorted(members)
    for r in rows:
        assert r["json"]["key"] == r["__key__"]
        for m in members[r["__key__"]]:
            assert r[m] is not None, (r["__key__"], m)
