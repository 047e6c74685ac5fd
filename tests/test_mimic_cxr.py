"""MIMIC-CXR-JPG adapter over its miniature (real CR pixels, gzip tables as shipped)."""

from __future__ import annotations

import gzip
import io
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medshard.schemas import BadRow, Filtered, RawRecord
from medshard.sources import get_source
from medshard.sources.base import MissingRawData
from medshard.sources.cxr import chexpert_fixture, mimic_cxr_fixture
from medshard.sources.cxr.chexpert_labels import OBSERVATIONS


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    chexpert_fixture.write_raw(root / "chexpert")
    mimic_cxr_fixture.write_fixture(root / "mimic-cxr")
    return root


def records(root, **options) -> dict[str, RawRecord]:
    items = list(get_source("mimic-cxr", **options).list_records(root))
    assert not [r for r in items if isinstance(r, BadRow)]
    return {r.record_id: r for r in items}


@pytest.mark.parametrize("policy", ["negative", "positive"])
def test_same_csv_row_gives_same_unified_labels_as_chexpert(raw, tmp_path, policy):
    """Both sources built by the pipeline: a MIMIC image whose labeller row holds the same
    14 cells as a CheXpert train.csv row gets the same unified concepts."""
    from medshard.pipeline.build import BuildConfig, run_build

    out = tmp_path / "out"
    run_build(BuildConfig(
        sources=["chexpert", "mimic-cxr"], data_root=raw, out=out, formats=("webdataset",),
        progress=False, source_options={"chexpert": {"uncertain": policy},
                                        "mimic-cxr": {"uncertain": policy}}))
    index = pq.read_table(out / "index.parquet").to_pylist()
    by_key = {r["key"]: r for r in index}
    pairs = 0
    for i, (*_, label_idx) in enumerate(mimic_cxr_fixture.IMAGES):
        key = f"mimic-cxr_{mimic_cxr_fixture.dicom_id(i)}"
        if key not in by_key:
            continue  # filtered or quarantined
        patient, study, view_file = chexpert_fixture.ROWS[label_idx][:3]
        other = by_key[f"chexpert_{patient}_{study}_{view_file}"]
        assert by_key[key]["labels"] == other["labels"]
        assert by_key[key]["source_labels_json"] == other["source_labels_json"]
        pairs += 1
    assert pairs == 8
    # the comparison is not vacuous: uncertain cells exist and the policy changes labels
    edema = by_key[f"mimic-cxr_{mimic_cxr_fixture.dicom_id(2)}"]["labels"]
    assert ("cxr.edema" in edema) == (policy == "positive")
    assert "cxr.cardiomegaly" in edema


def test_labels_verbatim_from_the_gzip_table(raw):
    root = raw / "mimic-cxr"
    recs = records(root)
    r = recs[mimic_cxr_fixture.dicom_id(2)]
    assert set(r.source_labels) == set(OBSERVATIONS)
    # independently: the gzip-compressed labeller table read by pandas
    table = pd.read_csv(root / "mimic-cxr-2.0.0-chexpert.csv.gz", compression="gzip",
                        dtype=str, keep_default_na=False)
    row = table[(table.subject_id == r.subject_id) & (table.study_id == r.meta["study_id"])]
    assert len(row) == 1
    assert {o: row.iloc[0][o] for o in OBSERVATIONS} == r.source_labels
    assert r.source_labels["Edema"] == "-1.0" and r.source_labels["Fracture"] == ""


def test_negbio_labeller_reads_the_other_table(raw):
    root = raw / "mimic-cxr"
    chexpert = records(root)[mimic_cxr_fixture.dicom_id(4)]
    negbio = records(root, labeler="negbio")[mimic_cxr_fixture.dicom_id(4)]
    assert chexpert.source_labels["Fracture"] == "1.0"
    assert negbio.source_labels["Fracture"] == ""
    assert negbio.meta["labeler"] == "negbio"


def test_official_split_as_is_and_patient_level(raw):
    root = raw / "mimic-cxr"
    recs = records(root)
    split = pd.read_csv(root / "mimic-cxr-2.0.0-split.csv.gz", dtype=str)
    expected = dict(zip(split.dicom_id, split.split.map(
        {"train": "train", "validate": "val", "test": "test"}), strict=True))
    assert {k: r.split for k, r in recs.items()} == expected
    assert {r.split for r in recs.values()} == {"train", "val", "test"}
    subjects: dict[str, set] = {}
    for r in recs.values():
        subjects.setdefault(r.subject_id, set()).add(r.split)
    assert all(len(s) == 1 for s in subjects.values())


def test_frontal_only_by_default_every_view_on_request(raw):
    root = raw / "mimic-cxr"
    lateral = records(root)[mimic_cxr_fixture.dicom_id(1)]
    assert lateral.meta["view_position"] == "LATERAL"
    with pytest.raises(Filtered, match="frontal"):
        next(get_source("mimic-cxr").load(lateral, root))
    sample = next(get_source("mimic-cxr", views="all").load(lateral, root))
    assert sample.payloads["image"].descriptor["view"] == "LATERAL"


def test_jpeg_bytes_kept_and_decode_to_the_metadata_size(raw):
    root = raw / "mimic-cxr"
    src = get_source("mimic-cxr")
    r = records(root)[mimic_cxr_fixture.dicom_id(0)]
    data = next(src.load(r, root)).payloads["image"].data
    assert data == (root / r.files[0]).read_bytes()
    assert r.files[0].startswith(f"files/p{r.subject_id[:2]}/p{r.subject_id}/s")
    im = Image.open(io.BytesIO(data))
    assert (im.format, im.height, im.width) == ("JPEG", r.meta["rows"], r.meta["columns"])


def test_decompressed_tables_read_the_same(raw, tmp_path):
    root = tmp_path / "mimic"
    shutil.copytree(raw / "mimic-cxr", root)
    for gz in root.glob("*.csv.gz"):
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert {k: (r.split, r.source_labels) for k, r in records(root).items()} == {
        k: (r.split, r.source_labels) for k, r in records(raw / "mimic-cxr").items()}


def test_a_missing_table_is_one_actionable_line(raw, tmp_path):
    root = tmp_path / "mimic"
    shutil.copytree(raw / "mimic-cxr", root)
    (root / "mimic-cxr-2.0.0-split.csv.gz").unlink()
    with pytest.raises(MissingRawData, match="split.csv.gz not found") as err:
        list(get_source("mimic-cxr").list_records(root))
    assert "\n" not in str(err.value)


def test_a_truncated_label_table_is_a_bad_row_not_a_crash(raw, tmp_path):
    root = tmp_path / "mimic"
    shutil.copytree(raw / "mimic-cxr", root)
    path = root / "mimic-cxr-2.0.0-chexpert.csv.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 12])  # cut the gzip trailer and the last bytes
    items = list(get_source("mimic-cxr").list_records(root))
    bad = [b for b in items if isinstance(b, BadRow)]
    assert len(bad) == 1 and bad[0].file == "mimic-cxr-2.0.0-chexpert.csv.gz"
    assert sum(isinstance(r, RawRecord) for r in items) == len(mimic_cxr_fixture.IMAGES)


def test_a_malformed_label_row_makes_its_images_bad_rows_too(raw, tmp_path):
    root = tmp_path / "mimic"
    shutil.copytree(raw / "mimic-cxr", root)
    path = root / "mimic-cxr-2.0.0-chexpert.csv.gz"
    header, body = mimic_cxr_fixture.read_table(path)
    body[0][header.index("Edema")] = "maybe"
    mimic_cxr_fixture.write_table(path, header, body)
    items = list(get_source("mimic-cxr").list_records(root))
    bad = [b for b in items if isinstance(b, BadRow)]
    subject, study = body[0][0], body[0][1]
    n_images = sum(1 for s, t, *_ in mimic_cxr_fixture.IMAGES if (s, t) == (subject, study))
    assert [b.file for b in bad] == ["mimic-cxr-2.0.0-chexpert.csv.gz"] + [
        "mimic-cxr-2.0.0-metadata.csv.gz"] * n_images
    assert "maybe" in bad[0].reason and f"study {study}" in bad[1].reason
