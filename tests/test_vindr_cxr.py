"""VinDr-CXR: layout, reader aggregation, boxes, pixels through the build, and de-identification."""

from __future__ import annotations

import csv
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut

from medshard.pipeline.transforms.image import decode_png
from medshard.schemas import Filtered, RecordError
from medshard.sources.base import MissingRawData
from medshard.sources.cxr.vindr_cxr import LABELS, SLUG, VinDrCXR, aggregate_readers
from medshard.sources.cxr.vindr_cxr_fixture import (
    DEMO_IMAGES,
    IDENTITY,
    MISSING_IMAGE,
    PATIENT_IDS,
    PRIVATE_CREATOR,
    PRIVATE_TEXT,
    REQUESTED_PROCEDURE_TEXT,
    TRUNCATED_IMAGE,
    image_id,
    write_raw,
)

RG3 = image_id("RG3_J2KR.dcm")  # train, 3 readers, MONOCHROME1, 6 boxes
OVERLAY = image_id("examples_overlay.dcm")  # train, rescale 2/100 written into the file
VLUT = image_id("vlut_04.dcm")  # train, same patient as OVERLAY
SIEMENS = image_id("MR-SIEMENS-DICOM-WithOverlays.dcm")  # test, consensus row


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vindr") / SLUG
    write_raw(root)
    return root


def _records(root: Path, **options):
    return {r.record_id: r for r in VinDrCXR(**options).list_records(root)}


def _sample(root: Path, record_id: str, **options):
    src = VinDrCXR(**options)
    (sample,) = src.load(_records(root, **options)[record_id], root)
    return sample


def _reference(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return apply_modality_lut(ds.pixel_array, ds)


def test_demo_csvs_have_the_real_columns(raw):
    with open(raw / "annotations" / "image_labels_train.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:2] == ["image_id", "rad_id"] and header[2:] == list(LABELS)
    with open(raw / "annotations" / "annotations_train.csv", newline="") as f:
        assert next(csv.reader(f)) == [
            "image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max",
        ]


def test_list_records_reads_no_pixels(raw, monkeypatch):
    def refuse(self):
        raise AssertionError("list_records decoded pixels")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(refuse))
    records = _records(raw)
    assert sorted(records) == sorted(image_id(i.name) for i in DEMO_IMAGES)


def test_subjects_and_splits(raw):
    records = _records(raw)
    # the DICOM PatientID is the subject (the pipeline hashes it before writing anything)
    assert records[RG3].subject_id == PATIENT_IDS[0]
    assert records[OVERLAY].subject_id == records[VLUT].subject_id == PATIENT_IDS[1]
    assert records[SIEMENS].split == "test"
    assert {records[r].split for r in (RG3, OVERLAY, VLUT)} <= {"train", "val"}
    assert records[OVERLAY].split == records[VLUT].split  # one subject, one split
    assert records[RG3].files == [f"train/{RG3}.dicom"]
    # val_fraction 0: train stays train
    assert {r.split for r in _records(raw, val_fraction=0.0).values()} == {"train", "test"}
    # the carve depends on the subject only: every subject lands in val at fraction ~1
    assert {r.split for r in _records(raw, val_fraction=0.999999).values()} == {"val", "test"}


def test_source_labels_keep_every_reader_vote(raw):
    rec = _records(raw)[RG3]
    assert rec.meta["readers"] == ["R8", "R9", "R10"]
    assert set(rec.source_labels) == set(LABELS)
    assert rec.source_labels["Cardiomegaly"] == [1, 1, 1]
    assert rec.source_labels["Pleural effusion"] == [1, 0, 1]
    assert rec.source_labels["Infiltration"] == [0, 1, 0]
    assert rec.source_labels["No finding"] == [0, 0, 0]


@pytest.mark.parametrize(
    ("rule", "rg3", "overlay"),
    [
        ("majority", ["Cardiomegaly", "Pleural effusion"], ["No finding"]),
        (
            "any",
            ["Cardiomegaly", "Infiltration", "Pleural effusion", "Other diseases"],
            ["Nodule/Mass", "Lung tumor", "No finding"],
        ),
        ("all", ["Cardiomegaly"], []),
    ],
)
def test_reader_aggregation(raw, rule, rg3, overlay):
    assert _sample(raw, RG3, reader_aggregation=rule).classes == rg3
    sample = _sample(raw, OVERLAY, reader_aggregation=rule)
    assert sample.classes == overlay
    assert sample.meta["reader_aggregation"] == rule


def test_aggregation_counts_blank_cells_as_unmarked():
    votes = {"Cardiomegaly": [1, None, 1], "Edema": [1, None, None], "No finding": [None, 0, 0]}
    assert aggregate_readers(votes, "majority") == ["Cardiomegaly"]
    assert aggregate_readers(votes, "any") == ["Cardiomegaly", "Edema"]
    assert aggregate_readers(votes, "all") == []


def test_test_split_is_the_consensus_row(raw):
    sample = _sample(raw, SIEMENS)
    # the test file spells the column "Other disease"; the class is the train spelling
    assert sample.classes == ["Consolidation", "Pneumonia", "Other diseases"]
    assert sample.meta["n_readers"] == 1
    assert sample.source_labels["Other diseases"] == [1]


def test_boxes_travel_in_meta(raw):
    boxes = _sample(raw, RG3).meta["annotations"]
    assert len(boxes) == 6
    assert boxes[0] == {
        "rad_id": "R10", "class_name": "Cardiomegaly", "box_xyxy": [615.0, 975.0, 1288.0, 1361.0],
    }
    assert {b["rad_id"] for b in boxes} == {"R8", "R9", "R10"}
    assert {"rad_id": "R9", "class_name": "Infiltration", "box_xyxy": [220.0, 400.0, 520.0, 760.0]} in boxes
    # "No finding" rows carry no box
    assert _sample(raw, VLUT).meta["annotations"] == [
        {"rad_id": "R11", "class_name": "Aortic enlargement", "box_xyxy": [240.0, 130.0, 300.0, 190.0]}
    ]
    test_boxes = _sample(raw, SIEMENS).meta["annotations"]
    assert test_boxes == [
        {"rad_id": "", "class_name": "Consolidation", "box_xyxy": [100.0, 200.0, 180.0, 260.0]}
    ]


@pytest.mark.parametrize("name", [i.name for i in DEMO_IMAGES])
def test_pixels_equal_pydicom(raw, name):
    rid = image_id(name)
    rec = _records(raw)[rid]
    sample = _sample(raw, rid)
    image = sample.payloads["image"]
    assert image.kind == "image"
    expected = _reference(raw / rec.files[0])
    if image.descriptor.get("inverted_from") is not None:  # MONOCHROME1, inverted by default
        expected = image.descriptor["inverted_from"] - expected.astype(np.int64)
    assert np.array_equal(image.data, expected)
    assert image.data.dtype in (np.uint8, np.uint16)


def test_modality_lut_written_into_a_file_is_applied(raw):
    sample = _sample(raw, OVERLAY)
    ds = pydicom.dcmread(raw / "train" / f"{OVERLAY}.dicom")
    assert sample.payloads["image"].descriptor["rescale_applied"] is True
    assert np.array_equal(sample.payloads["image"].data, ds.pixel_array.astype(np.int64) * 2 + 100)


def test_monochrome1_policy(raw):
    kept = _sample(raw, RG3, monochrome1="keep")
    assert kept.payloads["image"].descriptor["photometric"] == "MONOCHROME1"
    inverted = _sample(raw, RG3)  # the default: one polarity per build
    assert inverted.payloads["image"].descriptor["photometric"] == "MONOCHROME2"
    assert inverted.payloads["image"].descriptor["inverted_from"] == 1023
    assert np.array_equal(
        inverted.payloads["image"].data.astype(np.int64), 1023 - kept.payloads["image"].data
    )


def test_sample_meta_is_allow_listed(raw):
    sample = _sample(raw, OVERLAY)
    assert sample.meta["sex"] == "F"
    assert sample.meta["age"] == 90.0  # PatientAge 097Y: 90 or older
    assert sample.meta["dicom"]["RescaleSlope"] == 2.0
    assert sample.key_suffix is None


def test_missing_dicom_and_unlabelled_dicom(raw, tmp_path):
    root = tmp_path / SLUG
    write_raw(root)
    ghost = "0" * 32
    with open(root / "annotations" / "image_labels_train.csv", "a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow([ghost, "R1", *([0] * 27), 1])
    stray = "f" * 32
    (root / "train" / f"{stray}.dicom").write_bytes((root / "train" / f"{VLUT}.dicom").read_bytes())
    records = _records(root)
    src = VinDrCXR()
    with pytest.raises(RecordError, match="missing file"):
        list(src.load(records[ghost], root))
    assert records[ghost].subject_id == ghost  # no file, no PatientID: the image is the subject
    with pytest.raises(Filtered, match="no rows"):
        list(src.load(records[stray], root))


def test_bad_layout_and_options(tmp_path):
    with pytest.raises(MissingRawData, match="image_labels_train.csv"):
        list(VinDrCXR().list_records(tmp_path))
    with pytest.raises(ValueError, match="reader_aggregation"):
        VinDrCXR(reader_aggregation="mean")
    with pytest.raises(ValueError, match="val_fraction"):
        VinDrCXR(val_fraction=1.5)
    with pytest.raises(ValueError, match="monochrome1"):
        VinDrCXR(monochrome1="flip")
    root = tmp_path / SLUG
    write_raw(root)
    path = root / "annotations" / "image_labels_train.csv"
    path.write_text(path.read_text().replace("Cardiomegaly", "Heart big", 1))
    with pytest.raises(MissingRawData, match="Heart big"):
        list(VinDrCXR().list_records(root))
    path.write_text(path.read_text().replace("Heart big", "Cardiomegaly", 1))
    (root / "test" / "copy of scan.dicom").write_bytes(b"")
    with pytest.raises(MissingRawData, match="not a VinDr-CXR id"):
        list(VinDrCXR().list_records(root))


# ----------------------------------------------------------------- end to end, through the build


@pytest.fixture(scope="module")
def built(kit):
    """The conformance kit's build (every fixture, webdataset + parquet; VinDr-CXR's is
    `write_raw`'s miniature plus a missing and a truncated image) with every log line,
    warning and print the build made."""
    if SLUG not in kit.fixtures:
        pytest.skip(f"--sources leaves out {SLUG}")
    return {"manifest": kit.manifest, "out": kit.out, "raw": kit.data_root / SLUG,
            "logs": kit.log_text, "quarantine": kit.quarantine}


BUILT_IMAGES = [i for i in DEMO_IMAGES if i.name != TRUNCATED_IMAGE]  # the fixture breaks one


def _tar_samples(out: Path) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    for shard in sorted(out.glob(f"webdataset/{SLUG}/*/*.tar")):
        with tarfile.open(shard) as tar:
            for info in tar:
                key, _, ext = info.name.partition(".")
                f = tar.extractfile(info)
                assert f is not None
                samples.setdefault(key, {})[ext] = f.read()
    return samples


@pytest.mark.slow
def test_build_pixels_survive_png_round_trip(built):
    samples = _tar_samples(built["out"])
    assert len(samples) == len(BUILT_IMAGES)
    for image in BUILT_IMAGES:
        rid = image_id(image.name)
        members = samples[f"{SLUG}_{rid}"]
        meta = json.loads(members["json"])
        assert meta["members"] == ["image.png"]
        desc = meta["payloads"]["image"]
        assert desc["encoding"] == "png"
        pixels = decode_png(members["image.png"])
        expected = _reference(built["raw"] / f"{image.split}/{rid}.dicom")
        if desc.get("inverted_from") is not None:  # MONOCHROME1 -> MONOCHROME2
            expected = desc["inverted_from"] - expected.astype(np.int64)
        assert pixels.shape == expected.shape
        assert np.array_equal(pixels, expected), image.name
    rg3 = json.loads(samples[f"{SLUG}_{RG3}"]["json"])
    assert rg3["payloads"]["image"]["photometric"] == "MONOCHROME2"
    assert rg3["payloads"]["image"]["inverted_from"] == 1023
    assert rg3["payloads"]["image"]["window_center"] == [1023 - 550.0]  # mirrored with the pixels
    assert len(rg3["meta"]["annotations"]) == 6
    assert rg3["source_labels"]["Pleural effusion"] == [1, 0, 1]


@pytest.mark.slow
def test_webdataset_reads_the_shards_without_medshard(built):
    import webdataset as wds

    urls = [str(p) for p in sorted(built["out"].glob(f"webdataset/{SLUG}/*/*.tar"))]
    samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False))
    assert sorted(s["__key__"] for s in samples) == sorted(f"{SLUG}_{image_id(i.name)}" for i in BUILT_IMAGES)
    for s in samples:
        assert set(s) >= {"json", "image.png"}
        assert json.loads(s["json"])["source"] == SLUG


@pytest.mark.slow
def test_build_counts_and_subjects(built):
    counts = built["manifest"]["sources"][SLUG]["counts"]
    assert sum(c["listed"] for c in counts.values()) == len(DEMO_IMAGES) + 1  # + MISSING_IMAGE
    assert sum(c["written"] for c in counts.values()) == len(BUILT_IMAGES)
    assert sum(c["quarantined"] for c in counts.values()) == 2
    index = pq.read_table(built["out"] / "index.parquet").to_pylist()
    by_key = {r["key"]: r for r in index}
    overlay = by_key[f"{SLUG}_{OVERLAY}"]
    # the fixture truncates VLUT (OVERLAY's patient, listed in one split with it: see above)
    quarantined = {q["record_id"] for q in built["quarantine"] if q["source"] == SLUG}
    assert quarantined == {VLUT, MISSING_IMAGE}
    assert overlay["subject"] != by_key[f"{SLUG}_{RG3}"]["subject"]
    assert overlay["sex"] == "F" and overlay["age_years"] == 90.0  # first-class columns
    # classes map through the vocabulary: majority of R8/R9/R10 on the radiograph
    assert by_key[f"{SLUG}_{RG3}"]["labels"] == ["cxr.cardiomegaly", "cxr.pleural-effusion"]
    assert overlay["labels"] == ["cxr.no-finding"]


def _identifying_strings(raw: Path) -> list[str]:
    """Every identifying value the raw files carry: demo markers, patient ids, real UIDs."""
    found = [*IDENTITY.values(), *PATIENT_IDS, REQUESTED_PROCEDURE_TEXT, PRIVATE_CREATOR, PRIVATE_TEXT]
    for path in sorted(raw.glob("*/*.dicom")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found += [str(ds[k].value) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
    # people's names also appear without the DICOM ^ separators
    found += [part for v in IDENTITY.values() if "^" in v for part in v.split("^") if len(part) > 5]
    return sorted(set(found))


def _output_texts(out: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every output file of VinDr-CXR's and of the build's own files (manifest,
    index, quarantine), plus the decompressed contents of every parquet file among them."""
    texts = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()
                       if p.parent == out or SLUG in p.relative_to(out).parts):
        data = path.read_bytes()
        texts.append((str(path.relative_to(out)), data))
        if path.suffix == ".parquet":  # zstd hides strings from a byte scan: decode the values
            rows = pq.read_table(path).to_pylist()
            texts.append((f"{path.name} (decoded)", repr(rows).encode()))
    return texts


@pytest.mark.slow
def test_no_identifying_value_reaches_any_output_or_log(built):
    markers = _identifying_strings(built["raw"])
    assert len(markers) > 25
    # the scan can find them: every marker is in the raw input
    raw_bytes = b"".join(p.read_bytes() for p in built["raw"].glob("*/*.dicom"))
    assert all(m.encode() in raw_bytes for m in markers)
    outputs = _output_texts(built["out"])  # the kit's VinDr fixture breaks an identified file
    assert any(name.endswith(".tar") for name, _ in outputs)
    assert any(name == "quarantine.jsonl" for name, _ in outputs)
    outputs.append(("logs", built["logs"].encode()))
    leaks = [
        (name, marker)
        for name, data in outputs
        for marker in markers
        if marker.encode() in data or marker.lower().encode() in data.lower()
    ]
    assert leaks == []
    for name, data in outputs:
        assert b"BurnedInAnnotation" not in data, name
