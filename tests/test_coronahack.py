"""CoronaHack adapter over its miniature (real CR pixels; the release's metadata CSV)."""

from __future__ import annotations

import io
import shutil

import pandas as pd
import pytest
from PIL import Image

from medshard.schemas import BadRow, Filtered, RawRecord
from medshard.schemas.vocabulary import load_vocabulary
from medshard.sources import get_source
from medshard.sources.cxr import coronahack_fixture as fx
from medshard.sources.cxr.coronahack import METADATA
from medshard.sources.cxr.pneumonia_images import image_record_id


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return fx.write_fixture(tmp_path_factory.mktemp("coronahack"))


def records(root) -> dict[str, RawRecord]:
    items = list(get_source("coronahack").list_records(root))
    assert not [b for b in items if isinstance(b, BadRow)]
    return {r.record_id: r for r in items}


def expected_class(row) -> str | None:
    """The class table of the module docstring, applied to a pandas row."""
    if row.Label == "Normal":
        return "Normal"
    return {"bacteria": "Bacterial Pneumonia",
            "Virus": "COVID-19" if row.Label_2_Virus_category == "COVID-19"
            else "Viral Pneumonia"}.get(row.Label_1_Virus_category)


def test_classes_and_official_split_from_the_metadata_csv(root):
    recs = records(root)
    table = pd.read_csv(root / METADATA, dtype=str, keep_default_na=False, index_col=0)
    assert len(table) == len(recs)
    src = get_source("coronahack")
    for row in table.itertuples():
        r = recs[image_record_id(row.Dataset_type.lower(), row.X_ray_image_name)]
        assert r.source_labels == {"Label": row.Label,
                                   "Label_1_Virus_category": row.Label_1_Virus_category,
                                   "Label_2_Virus_category": row.Label_2_Virus_category}
        assert (r.split == "test") == (row.Dataset_type == "TEST")
        cls = expected_class(row)
        if row.X_ray_image_name in (fx.TRUNCATED, fx.MISSING):
            continue
        if cls is None:
            with pytest.raises(Filtered, match="Stress-Smoking"):
                next(src.load(r, root))
        else:
            assert next(src.load(r, root)).classes == [cls]


def test_covid_19_is_its_own_class_and_still_viral_pneumonia():
    vocab = load_vocabulary()
    covid = vocab.map_classes("coronahack", ["COVID-19"])
    assert set(covid) == {"cxr.pneumonia", "cxr.viral-pneumonia", "cxr.covid-19"}
    viral = vocab.map_classes("coronahack", ["Viral Pneumonia"])
    assert "cxr.covid-19" not in viral and "cxr.viral-pneumonia" in viral
    bacterial = vocab.map_classes("coronahack", ["Bacterial Pneumonia"])
    assert "cxr.viral-pneumonia" not in bacterial and "cxr.bacterial-pneumonia" in bacterial
    assert "cxr.covid-19" in vocab.source_concepts("coronahack")  # decidable for every sample


def test_kermany_patient_is_the_subject_and_stays_in_one_split(root):
    recs = records(root)
    p1 = [r for r in recs.values() if r.subject_id == "person1"]
    assert len(p1) == 2 and len({r.split for r in p1}) == 1
    assert recs["train_IM-0115-0001"].subject_id == "train_IM-0115-0001"
    assert recs["train_IM-0115-0001"].meta["patient_from_file_name"] is False
    assert {r.split for r in recs.values()} == {"train", "val", "test"}


def test_png_and_jpeg_bytes_kept_as_shipped(root):
    recs = records(root)
    src = get_source("coronahack")
    for rid, fmt in (("train_covid-19-pneumonia-7-PA", "PNG"), ("train_IM-0115-0001", "JPEG")):
        r = recs[rid]
        data = next(src.load(r, root)).payloads["image"].data
        assert data == (root / r.files[0]).read_bytes()
        assert Image.open(io.BytesIO(data)).format == fmt


def test_image_folder_unpacked_once_is_read_too(root, tmp_path):
    flat = tmp_path / "flat"
    shutil.copytree(root, flat)
    inner = flat / "Coronahack-Chest-XRay-Dataset"
    shutil.move(inner / "Coronahack-Chest-XRay-Dataset", tmp_path / "moved")
    inner.rmdir()
    shutil.move(tmp_path / "moved", inner)
    r = records(flat)["test_IM-0001-0001"]
    assert r.files[0] == "Coronahack-Chest-XRay-Dataset/test/IM-0001-0001.jpeg"
    assert next(get_source("coronahack").load(r, flat)).classes == ["Normal"]


def test_an_image_listed_twice_is_a_bad_row(root, tmp_path):
    copy = tmp_path / "dup"
    shutil.copytree(root, copy)
    with open(copy / METADATA, "a") as f:
        f.write("99,IM-0115-0001.jpeg,Normal,TRAIN,,\n")
    items = list(get_source("coronahack").list_records(copy))
    bad = [b for b in items if isinstance(b, BadRow)]
    assert len(bad) == 1 and "listed twice" in bad[0].reason
