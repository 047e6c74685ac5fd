"""NIH malaria cells over their miniature: smear and patient from file names, split by them."""

from __future__ import annotations

import pytest

from medshard.sources import get_source
from medshard.sources.microscopy import malaria_fixture as fx
from medshard.sources.microscopy.malaria import cell_record_id, parse_cell_name


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return fx.write_fixture(tmp_path_factory.mktemp("malaria") / "lhncbc-malaria")


@pytest.mark.parametrize(("name", "smear", "patient", "field", "cell"), [
    ("C33P1thinF_IMG_20150619_114756a_cell_179.png", "C33P1thinF", "P1",
     "C33P1thinF_IMG_20150619_114756a", 179),
    ("C100P61ThinF_IMG_20150918_144104_cell_162.png", "C100P61ThinF", "P61",
     "C100P61ThinF_IMG_20150918_144104", 162),
    ("C1_thinF_IMG_20150604_104722_cell_9.png", "C1_thinF", None,
     "C1_thinF_IMG_20150604_104722", 9),
    ("C68P29N_ThinF_IMG_20150819_134504_cell_167.png", "C68P29N_ThinF", "P29",
     "C68P29N_ThinF_IMG_20150819_134504", 167),
    ("C12NThinF_IMG_20150614_124212_cell_138.png", "C12NThinF", None,
     "C12NThinF_IMG_20150614_124212", 138),
])
def test_cell_names_of_the_release(name, smear, patient, field, cell):
    got = parse_cell_name(name)
    assert got == {"smear": smear, "patient": patient, "field_image": field, "cell": cell}


def test_names_that_are_not_cells_are_refused():
    for bad in ("Thumbs.db", "cell 12 copy.png", "C1_thinF_IMG_20150604_104722_cell_.png"):
        with pytest.raises(ValueError):
            parse_cell_name(bad)


def test_record_ids_are_short_and_unique(root):
    recs = [r for r in get_source("lhncbc-malaria").list_records(root)]
    ids = [r.record_id for r in recs]
    assert len(ids) == len(set(ids)) == 13
    assert max(len(f"lhncbc-malaria_{i}") for i in ids) <= 64
    assert cell_record_id("Parasitized", parse_cell_name(
        "C100P61ThinF_IMG_20150918_144104_cell_162.png")) == "P_C100P61ThinF_20150918144104_162"


def test_patient_number_keeps_both_classes_of_a_patient_together(root):
    recs = list(get_source("lhncbc-malaria").list_records(root))
    p1 = [r for r in recs if r.meta["patient_number"] == "P1"]
    assert {r.source_labels["class"] for r in p1} == {"Parasitized", "Uninfected"}
    assert {r.subject_id for r in p1} == {"P1"}
    no_p = [r for r in recs if r.meta["patient_number"] is None]
    assert {r.subject_id for r in no_p} == {r.meta["smear"] for r in no_p}


def test_smear_option_splits_by_smear(root):
    recs = list(get_source("lhncbc-malaria", subject="smear").list_records(root))
    assert {r.subject_id for r in recs if r.meta["patient_number"] == "P1"} == {"C33P1thinF"}


def test_nested_kaggle_layout(root, tmp_path):
    import shutil

    shutil.copytree(root / "cell_images", tmp_path / "cell_images" / "cell_images")
    recs = list(get_source("lhncbc-malaria").list_records(tmp_path))
    assert recs[0].files[0].startswith("cell_images/cell_images/")


def test_png_bytes_are_kept(root):
    src = get_source("lhncbc-malaria")
    r = next(iter(src.list_records(root)))
    sample = next(src.load(r, root))
    assert sample.payloads["image"].data == (root / r.files[0]).read_bytes()
