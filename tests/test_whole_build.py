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
    from medshard.sources import registry

    if set(kit.fixtures) != set(registry.BUILTIN_SOURCES):
        pytest.skip("--sources builds only some sources; this reads the whole build")
    index = pq.read_table(kit.out / "index.parquet").to_pylist()
    members: dict[str, list[str]] = {}
    for shard in kit.manifest["shards"]:
        if shard["format"] == "parquet":
            for row in pq.read_table(kit.out / shard["path"], columns=["key", "json"]).to_pylist():
                members[row["key"]] = json.loads(row["json"])["members"]
    assert len(members) == len(index)
    assert set(kit.manifest["sources"]) == set(registry.BUILTIN_SOURCES)
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


def test_index_is_typed_with_first_class_demographics(whole):
    import pyarrow as pa

    out, members = whole
    index = pq.read_table(out / "index.parquet")
    schema = index.schema
    assert schema.field("sex").type == pa.string()
    assert schema.field("age_years").type == pa.float64()
    assert schema.field("site").type == pa.string()
    assert schema.field("meta_strat_fold").type == pa.int64()  # integers stay integers
    assert schema.field("meta_window_index").type == pa.int64()
    for promoted in ("meta_sex", "meta_gender", "meta_age", "meta_age_at_nephrectomy"):
        assert promoted not in schema.names
    rows = index.to_pylist()
    by_source: dict[str, set] = {}
    for r in rows:
        by_source.setdefault(r["source"], set()).add(r["sex"])
        assert r["age_years"] is None or 0 <= r["age_years"] <= 120
    # CheXpert's Female/Male, PTB-XL's 0/1, kits23's gender and DICOM's F/M: one code
    for source in ("chexpert", "ptb-xl", "kits23", "vindr-cxr"):
        assert by_source[source] - {None} <= {"F", "M", "O"} and by_source[source] - {None}
    for col in schema.names:
        if col.startswith("meta_") and col != "meta_json":
            assert index.column(col).null_count < index.num_rows, col  # no empty column


def test_the_readme_16_bit_decode_round_trips_exactly(whole):
    import re
    from pathlib import Path

    import numpy as np
    import webdataset as wds

    from medshard.loaders import ShardDataset

    out, _ = whole
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"<!-- png16:begin -->\n```python\n(.*?)```\n<!-- png16:end -->", readme,
                      re.S).group(1)
    urls = sorted(str(p) for p in (out / "webdataset" / "vindr-cxr").rglob("*.tar"))
    scope: dict = {"urls": urls}
    exec(block, scope)  # the README's own code
    images = scope["images"]
    loaded = {s["key"]: s for s in ShardDataset(str(out), split=None, sources="vindr-cxr",
                                                 shuffle=False)}
    deep = 0
    for key, arr in images.items():
        stored = loaded[key]["image"].numpy()[0]  # the loader's values (checked vs pydicom)
        np.testing.assert_array_equal(arr.astype(np.int64), stored.astype(np.int64))
        if loaded[key]["meta"]["payloads"]["image"]["bit_depth"] > 8:
            deep += 1
            assert arr.dtype == np.uint16 and arr.max() > 255
    assert deep
    clipped = {s["__key__"]: s["image.png"] for s in
               wds.WebDataset(urls, shardshuffle=False).decode("l") if "image.png" in s}
    assert any(not np.array_equal(np.asarray(clipped[k]), images[k]) for k in images)
