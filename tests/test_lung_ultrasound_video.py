"""COVID-BLUES and COVID-US: labels and subjects against the CSVs read by pandas, the video
payload against the file's own bytes and OpenCV's decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medshard.schemas import RawRecord
from medshard.schemas.sample import Filtered
from medshard.sources.ultrasound import covid_blues_fixture, covid_us_fixture
from medshard.sources.ultrasound.covid_blues import CovidBlues
from medshard.sources.ultrasound.covid_us import CovidUS
from tests.helpers import opencv_frames

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def blues(tmp_path_factory) -> Path:
    return covid_blues_fixture.write_fixture(tmp_path_factory.mktemp("covid-blues"))


@pytest.fixture(scope="module")
def us(tmp_path_factory) -> Path:
    return covid_us_fixture.write_fixture(tmp_path_factory.mktemp("covid-us"))


def _records(source, root: Path) -> list[RawRecord]:
    return [r for r in source.list_records(root) if isinstance(r, RawRecord)]


def _decode(data: bytes) -> list[np.ndarray]:
    return opencv_frames(data)[0]


def test_blues_label_is_the_patients_pcr_result(blues: Path) -> None:
    table = pd.read_csv(blues / "clinical_variables.csv").set_index("patient_id")
    source = CovidBlues()
    seen = 0
    for rec in _records(source, blues):
        patient = int(rec.record_id.split("_")[1])
        if patient not in table.index or rec.record_id == covid_blues_fixture.TRUNCATED:
            continue
        (sample,) = source.load(rec, blues)
        want = "Has COVID" if table.loc[patient, "cov_test"] == 1 else "No COVID"
        assert sample.classes == [want]
        assert rec.subject_id == str(patient)
        age = table.loc[patient, "pat_age"]
        assert sample.meta["age"] == (None if age == -99 else age)
        assert sample.meta["blue_point"] == rec.record_id.split("_")[2]
        assert sample.meta["probe"] == "convex"
        seen += 1
    assert seen == 10


def test_blues_climb_split_is_the_first_three_quarters_of_patient_ids(blues: Path) -> None:
    records = _records(CovidBlues(split="climb"), blues)
    patients = sorted({int(r.subject_id) for r in records})
    train = set(patients[: int(len(patients) * 0.75)])
    for r in records:
        assert r.split == ("train" if int(r.subject_id) in train else "test")
    assert all(r.split is None for r in _records(CovidBlues(), blues))


def test_video_payload_is_the_original_bytes_with_metadata_blanked(blues: Path) -> None:
    source = CovidBlues()
    (rec,) = [r for r in _records(source, blues) if r.record_id == "patient_2_L2"]
    raw = (blues / rec.files[0]).read_bytes()
    (sample,) = source.load(rec, blues)
    data = sample.payloads["video"].data
    assert covid_blues_fixture.PHI_TITLE.encode() in raw
    assert covid_blues_fixture.PHI_TITLE.encode() not in data
    assert len(data) == len(raw)
    # the coded frames (mdat) are the original bytes; the differences lie in user data
    mdat = raw.index(b"mdat") - 4
    end = mdat + int.from_bytes(raw[mdat : mdat + 4], "big")
    assert data[mdat:end] == raw[mdat:end]
    diff = np.flatnonzero(np.frombuffer(data, np.uint8) != np.frombuffer(raw, np.uint8))
    assert diff.min() >= raw.index(b"udta") - 4
    original = _decode(raw)
    kept = _decode(data)
    assert len(kept) == len(original) == sample.payloads["video"].descriptor["n_frames"]
    assert all(np.array_equal(a, b) for a, b in zip(kept, original, strict=True))
    cap = cv2.VideoCapture(str(blues / rec.files[0]))
    assert sample.meta["fps"] == pytest.approx(cap.get(cv2.CAP_PROP_FPS))
    cap.release()


def test_us_class_probe_and_filters_follow_the_metadata(us: Path) -> None:
    table = pd.read_csv(us / "utils/video_metadata.csv", encoding="latin-1",
                        dtype=str).set_index("id")
    source = CovidUS()
    written = 0
    for rec in _records(source, us):
        row = table.loc[rec.record_id]
        if rec.record_id in (covid_us_fixture.TRUNCATED, covid_us_fixture.MISSING):
            continue
        if row["class"] == "Other" or row["filetype"] == "gif":
            with pytest.raises(Filtered):
                list(source.load(rec, us))
            continue
        (sample,) = source.load(rec, us)
        assert sample.classes == [row["class"].lower()]
        assert sample.meta["probe"] == row["probe"].lower()
        assert sample.meta["publisher"] == row["source"]
        assert "comment" not in sample.meta
        written += 1
    assert written == 7


def test_us_subject_is_the_case_where_the_metadata_names_one(us: Path) -> None:
    records = {r.record_id: r for r in _records(CovidUS(), us)}
    assert records["44_litfl_pneumonia"].subject_id == records["45_litfl_pneumonia"].subject_id
    assert records["1_butterfly_covid"].subject_id == "1_butterfly_covid"
    assert records["1_butterfly_covid"].subject_id != records["7_butterfly_covid"].subject_id
