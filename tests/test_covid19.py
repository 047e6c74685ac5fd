"""COVID-19 (darshan1504) adapter over its miniature (real CR pixels, class folders)."""

from __future__ import annotations

import io
import shutil

import pandas as pd
import pytest
from PIL import Image

from medshard.schemas import BadRow, Filtered, RawRecord, RecordError
from medshard.sources import get_source
from medshard.sources.cxr import covid19_fixture as fx
from medshard.sources.cxr.covid19 import CLASSES, record_id_for


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return fx.write_fixture(tmp_path_factory.mktemp("covid-19"))


def records(root, **options) -> dict[str, RawRecord]:
    items = list(get_source("covid-19", **options).list_records(root))
    assert not [b for b in items if isinstance(b, BadRow)]
    return {r.record_id: r for r in items}


def test_every_image_under_a_class_folder_is_a_record_labelled_by_its_folder(root):
    on_disk = {(p.parts[-3], p.parts[-2], p.name)
               for p in root.glob("*/*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    recs = records(root)
    assert {record_id_for(*t) for t in on_disk} == set(recs)
    src = get_source("covid-19")
    for folder, cls, name in on_disk:
        r = recs[record_id_for(folder, cls, name)]
        assert r.source_labels == {"class_folder": cls} and cls in CLASSES
        if name in (fx.TRUNCATED, fx.EMPTY) or name.startswith("ct-"):
            continue
        assert next(src.load(r, root)).classes == [cls]


def test_patient_split_keeps_an_upstream_patient_together(root):
    recs = records(root)
    pa = recs[record_id_for("TrainData", "COVID-19", "covid-19-pneumonia-15-PA.jpg")]
    lateral = recs[record_id_for("ValData", "COVID-19", "covid-19-pneumonia-15-L.jpg")]
    upstream = pd.read_csv(root / "metadata.csv", dtype=str)
    patient = upstream.loc[upstream.filename == "covid-19-pneumonia-15-PA.jpg", "patientid"].item()
    assert pa.subject_id == lateral.subject_id == f"ieee8023-{patient}"
    assert pa.split == lateral.split
    assert pa.meta["subject_from"] == "metadata.csv"
    kermany = [r for r in recs.values() if r.subject_id == "person1"]
    assert len(kermany) == 2 and len({r.split for r in kermany}) == 1
    assert {r.split for r in recs.values()} == {"train", "val", "test"}
    subjects: dict[str, set] = {}
    for r in recs.values():
        subjects.setdefault(r.subject_id, set()).add(r.split)
    assert all(len(s) == 1 for s in subjects.values())


def test_official_split_is_climbs_folders(root):
    recs = records(root, split="official")
    for r in recs.values():
        if r.meta["folder"] == "ValData":
            assert r.split == "test"
        else:
            assert r.split in ("train", "val")
    pa = recs[record_id_for("TrainData", "COVID-19", "covid-19-pneumonia-15-PA.jpg")]
    lateral = recs[record_id_for("ValData", "COVID-19", "covid-19-pneumonia-15-L.jpg")]
    assert lateral.split == "test" and pa.split != "test"  # the straddle the default avoids


def test_upstream_metadata_gives_finding_and_view_but_no_free_text(root):
    recs = records(root)
    pa = recs[record_id_for("TrainData", "COVID-19", "covid-19-pneumonia-15-PA.jpg")]
    assert pa.meta["upstream_finding"] == "Pneumonia/Viral/COVID-19"
    assert pa.meta["upstream_view"] == "PA"
    assert fx.PHI_MARKER not in repr(recs)
    ct = recs[record_id_for("ValData", "COVID-19", "ct-scan-slice-01.png")]
    with pytest.raises(Filtered, match="not an X-ray"):
        next(get_source("covid-19").load(ct, root))


def test_without_upstream_metadata_covid_images_are_image_level(root, tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(root, copy)
    (copy / "metadata.csv").unlink()
    recs = records(copy)
    pa = recs[record_id_for("TrainData", "COVID-19", "covid-19-pneumonia-15-PA.jpg")]
    assert pa.subject_id == pa.record_id and pa.meta["subject_from"] == "image"
    assert pa.meta["upstream_view"] is None


def test_png_and_jpeg_bytes_kept(root):
    recs = records(root)
    src = get_source("covid-19")
    for (folder, cls, name), fmt in (
            (("TrainData", "COVID-19", "nejmoa2001191_f1-PA.png"), "PNG"),
            (("TrainData", "Normal", "IM-0115-0001.jpeg"), "JPEG")):
        data = next(src.load(recs[record_id_for(folder, cls, name)], root)).payloads["image"].data
        assert data == (root / folder / cls / name).read_bytes()
        assert Image.open(io.BytesIO(data)).format == fmt


def test_long_file_names_keep_whole_sample_keys(root):
    rid = record_id_for("TrainData", "COVID-19",
                        "auntminnie-a-2020_01_28_23_51_6665_2020_01_28_Vietnam.jpeg")
    assert len(f"covid-19_{rid}") <= 64
    assert rid != record_id_for("TrainData", "COVID-19",
                                "auntminnie-a-2020_01_28_23_51_6665_2020_01_28_Vietnam.png")


def test_unidentifiable_image_message_is_stable():
    from medshard.pipeline.transforms.image import check_encoded_image

    with pytest.raises(RecordError) as first:
        check_encoded_image(b"")
    with pytest.raises(RecordError) as second:
        check_encoded_image(b"")
    assert str(first.value) == str(second.value) and "0x" not in str(first.value)


def test_same_name_other_extension_is_a_bad_entry_not_a_duplicate_sample(root, tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(root, copy)
    shutil.copy(copy / "TrainData/Normal/IM-0115-0001.jpeg", copy / "TrainData/Normal/IM-0115-0001.png")
    items = list(get_source("covid-19").list_records(copy))
    bad = [b for b in items if isinstance(b, BadRow)]
    assert [b.file for b in bad] == ["TrainData/Normal/IM-0115-0001.png"]
    ids = [r.record_id for r in items if isinstance(r, RawRecord)]
    assert len(ids) == len(set(ids))
