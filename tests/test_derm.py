"""Dermatology sources (HAM10000, ISIC 2020, PAD-UFES-20) over their miniatures: what is
particular to each (grouping of splits, duplicates, labels, clinical fields)."""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from medshard.pipeline.split import DEFAULT_FRACTIONS, assign_split
from medshard.schemas import Filtered, RecordError
from medshard.sources import get_source
from medshard.sources.derm import ham10000_fixture, isic2020_fixture, pad_ufes20_fixture


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("derm")
    ham10000_fixture.write_fixture(root / "ham10000")
    isic2020_fixture.write_fixture(root / "isic-2020")
    pad_ufes20_fixture.write_fixture(root / "pad-ufes-20")
    return root


def _records(slug: str, root: Path, **options):
    return {r.record_id: r for r in get_source(slug, **options).list_records(root)}


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory) -> dict[str, str]:
    """The HAM10000 and ISIC 2020 miniatures built by the real pipeline: key -> split."""
    import pyarrow.parquet as pq

    from medshard.pipeline.build import BuildConfig, run_build

    out = tmp_path_factory.mktemp("derm-build")
    run_build(BuildConfig(sources=["ham10000", "isic-2020"], data_root=raw, out=out,
                          formats=("webdataset",), progress=False))
    index = pq.read_table(out / "index.parquet", columns=["key", "split"]).to_pylist()
    return {row["key"]: row["split"] for row in index}


def _splits_per_unit(slug: str, records, unit_of: dict[str, str],
                     fractions: dict[str, float]) -> dict[str, set[str]]:
    """The splits the build gives each unit (lesion, patient) named by the raw CSV."""
    units: dict[str, set[str]] = defaultdict(set)
    for r in records:
        units[unit_of[r.record_id]].add(assign_split(slug, r.subject_id, r.split, fractions))
    return units


def test_ham10000_two_images_of_one_lesion_land_in_one_split(raw, built):
    recs = _records("ham10000", raw / "ham10000")
    a, b = recs["ISIC_0000101"], recs["ISIC_0000102"]
    assert a.files[0].startswith("HAM10000_images_part_1/")  # the two part folders
    assert b.files[0].startswith("HAM10000_images_part_2/")
    assert built["ham10000_ISIC_0000101"] == built["ham10000_ISIC_0000102"]
    assert len({s for k, s in built.items() if k.startswith("ham10000_")}) == 3


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


FRACTIONS = [DEFAULT_FRACTIONS, {"train": 0.5, "val": 0.2, "test": 0.3}]


@pytest.mark.parametrize("fractions", FRACTIONS)
def test_ham10000_split_is_by_lesion_not_by_image(tmp_path, fractions):
    # 300 lesions with 3 images each: an image-level split would part most lesions
    rows = [[f"HAM_{les:07d}", f"ISIC_{les * 3 + k:07d}", "nv", "histo", "40.0", "male", "back"]
            for les in range(300) for k in range(3)]
    _write_csv(tmp_path / "HAM10000_metadata.csv", ham10000_fixture.HEADER[:7], rows)
    recs = list(get_source("ham10000").list_records(tmp_path))
    assert len(recs) == 900 and all(r.split is None for r in recs)  # no official split
    lesion = {r[1]: r[0] for r in rows}
    units = _splits_per_unit("ham10000", recs, lesion, fractions)
    assert all(len(s) == 1 for s in units.values())
    test_units = sum(s == {"test"} for s in units.values())
    assert abs(test_units / 300 - fractions["test"]) < 0.07, test_units


def test_isic_two_images_of_one_patient_land_in_one_split(raw, built):
    recs = _records("isic-2020", raw / "isic-2020")
    a, b = recs["ISIC_0000201"], recs["ISIC_0000202"]
    assert a.source_labels["benign_malignant"] != b.source_labels["benign_malignant"]
    assert built["isic-2020_ISIC_0000201"] == built["isic-2020_ISIC_0000202"]
    assert "isic-2020_ISIC_0000209" not in built  # the duplicate's second copy
    assert len({s for k, s in built.items() if k.startswith("isic-2020_")}) == 3


@pytest.mark.parametrize("fractions", FRACTIONS)
def test_isic_split_is_by_patient(tmp_path, fractions):
    rows = [[f"ISIC_{p * 4 + k:07d}", f"IP_{p:07d}", f"IL_{p * 4 + k:07d}", "female", "50.0",
             "torso", "nevus", "benign", "0"] for p in range(250) for k in range(4)]
    _write_csv(tmp_path / "ISIC_2020_Training_GroundTruth_v2.csv", isic2020_fixture.HEADER, rows)
    recs = list(get_source("isic-2020").list_records(tmp_path))
    patient = {r[0]: r[1] for r in rows}
    units = _splits_per_unit("isic-2020", recs, patient, fractions)
    assert len(units) == 250 and all(len(s) == 1 for s in units.values())
    assert set().union(*units.values()) == {"train", "val", "test"}


def test_isic_second_copy_of_a_duplicate_pair_is_filtered_first_kept(raw):
    root = raw / "isic-2020"
    src = get_source("isic-2020")
    recs = _records("isic-2020", root)
    with pytest.raises(Filtered, match="image_name_2"):
        next(src.load(recs["ISIC_0000209"], root))
    kept = next(src.load(recs["ISIC_0000208"], root))
    assert kept.payloads["image"].data == (root / "train" / "ISIC_0000208.jpg").read_bytes()
    assert "duplicate_of" not in kept.meta


def test_isic_without_duplicates_list_keeps_every_image(raw, tmp_path):
    import shutil

    root = tmp_path / "isic"
    shutil.copytree(raw / "isic-2020", root)
    (root / "ISIC_2020_Training_Duplicates.csv").unlink()
    src = get_source("isic-2020")
    rec = _records("isic-2020", root)["ISIC_0000209"]
    assert next(src.load(rec, root)).classes == ["benign"]
    assert src.label_files(root) == ["ISIC_2020_Training_GroundTruth_v2.csv"]


def test_isic_reads_ground_truth_v1_without_lesion_id(raw, tmp_path):
    import shutil

    root = tmp_path / "isic"
    shutil.copytree(raw / "isic-2020", root)
    gt = root / "ISIC_2020_Training_GroundTruth_v2.csv"
    with open(gt, newline="") as f:
        rows = list(csv.reader(f))
    gt.unlink()
    drop = rows[0].index("lesion_id")
    _write_csv(root / "ISIC_2020_Training_GroundTruth.csv", rows[0][:drop] + rows[0][drop + 1:],
               [r[:drop] + r[drop + 1:] for r in rows[1:]])
    recs = _records("isic-2020", root)
    assert len(recs) == 12 and recs["ISIC_0000201"].meta["has_lesion_id"] is False


@pytest.mark.parametrize(("slug", "rid", "folder"), [
    ("ham10000", "ISIC_0000103", "HAM10000_images_part_1"),
    ("isic-2020", "ISIC_0000201", "train"),
    ("pad-ufes-20", "PAT_2_30_101", "images/imgs_part_1"),
])
def test_image_bytes_are_kept_as_shipped(raw, slug, rid, folder):
    root = raw / slug
    src = get_source(slug)
    rec = _records(slug, root)[rid]
    assert rec.files[0].startswith(folder)
    payload = next(src.load(rec, root)).payloads["image"]
    shipped = (root / rec.files[0]).read_bytes()
    assert hashlib.sha256(payload.data).digest() == hashlib.sha256(shipped).digest()
    decoded = cv2.imdecode(np.frombuffer(payload.data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.ndim == 3 and decoded.shape[2] == 3  # RGB photographs, as shipped


def test_missing_image_is_a_record_error(raw):
    src = get_source("ham10000")
    rec = _records("ham10000", raw / "ham10000")["ISIC_0000114"]
    with pytest.raises(RecordError, match="missing image file"):
        next(src.load(rec, raw / "ham10000"))


def test_ham10000_labels_are_the_dx_codes(raw):
    recs = _records("ham10000", raw / "ham10000")
    rec = recs["ISIC_0000106"]
    assert rec.source_labels == {"dx": "akiec", "dx_type": "histo"}
    assert next(get_source("ham10000").load(rec, raw / "ham10000")).classes == ["akiec"]
    assert recs["ISIC_0000104"].meta["age"] is None  # blank age


def test_pad_ufes20_groups_by_patient_and_types_clinical_fields(raw):
    recs = _records("pad-ufes-20", raw / "pad-ufes-20")
    patient2 = [r for r in recs.values() if r.record_id.startswith("PAT_2_")]
    assert len(patient2) == 3 and {r.subject_id for r in patient2} == {"PAT_2"}  # two lesions
    # the cells as metadata.csv writes them: True / False / UNK / blank
    with open(raw / "pad-ufes-20" / "metadata.csv", newline="") as f:
        rows = {Path(r["img_id"]).stem: r for r in csv.DictReader(f)}
    expect = {"True": True, "False": False, "UNK": None, "": None}
    for rid, rec in recs.items():
        for field in ("itch", "smoke", "bleed"):
            assert rec.meta[field] is expect[rows[rid][field]], (rid, field)
        assert rec.meta["age"] == float(rows[rid]["age"])
    assert recs["PAT_2_30_102"].meta["diameter_1"] == 6.0
    assert recs["PAT_2_30_102"].meta["fitspatrick"] == 2.0
    assert recs["PAT_2_30_101"].meta["fitspatrick"] is None  # a row without the questionnaire
    assert recs["PAT_2_30_101"].meta["diameter_1"] is None
    assert "background_father" not in recs["PAT_2_30_101"].meta


def test_pad_ufes20_refuses_a_yes_no_cell_it_cannot_read(tmp_path):
    row = pad_ufes20_fixture._csv_row(1, ("PAT_1", 1, 1, "NEV", 30, "MALE", 1))
    row[pad_ufes20_fixture.HEADER.index("bleed")] = "sometimes"
    _write_csv(tmp_path / "metadata.csv", pad_ufes20_fixture.HEADER, [row])
    [bad] = list(get_source("pad-ufes-20").list_records(tmp_path))
    assert bad.line == 2 and "sometimes" in bad.reason


def test_isic_duplicate_pairs_keep_one_copy_of_every_picture(tmp_path):
    _write_csv(tmp_path / "ISIC_2020_Training_GroundTruth_v2.csv", isic2020_fixture.HEADER, [])
    pairs = [("A", "B"), ("B", "C"), ("D", "E"), ("E", "D"), ("F", "F"), ("G", "")]
    _write_csv(tmp_path / "ISIC_2020_Training_Duplicates.csv", ["image_name_1", "image_name_2"],
               [list(p) for p in pairs])
    dropped = get_source("isic-2020").duplicates(tmp_path)
    # A-B-C are one picture: A kept; D-E listed both ways: D kept; F with itself: kept
    assert dropped == {"B": "A", "C": "B", "E": "D"}


def test_isic_dicom_release_decodes_to_pydicoms_pixels_and_keeps_no_header(raw):
    import pydicom

    root = raw / "isic-2020"
    rec = _records("isic-2020", root)[isic2020_fixture.DICOM_IMAGE]
    assert rec.files == [f"train/{isic2020_fixture.DICOM_IMAGE}.dcm"]
    sample = next(get_source("isic-2020").load(rec, root))
    payload = sample.payloads["image"]
    expected = pydicom.dcmread(root / rec.files[0]).pixel_array
    assert np.array_equal(payload.data, expected)
    assert payload.descriptor["photometric"] == "RGB"
    text = repr(sample.meta) + repr(sample.source_labels) + repr(payload.descriptor)
    assert not any(marker in text for marker in isic2020_fixture.IDENTITY.values())
    assert set(sample.meta) == set(_records("isic-2020", root)["ISIC_0000201"].meta) - {
        "duplicate_of"}
