"""Fundus sources (APTOS 2019, Messidor-2, Jichi) over their miniatures: grades and their
scales, splits that keep a patient's images together, real fixture pixels."""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from medshard.pipeline.split import DEFAULT_FRACTIONS, assign_split
from medshard.schemas import Filtered
from medshard.sources import get_source
from medshard.sources.fundus import aptos2019_fixture, jichi_fixture, messidor2_fixture


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fundus")
    aptos2019_fixture.write_fixture(root / "aptos-2019")
    messidor2_fixture.write_fixture(root / "messidor-2")
    jichi_fixture.write_fixture(root / "jichi")
    return root


def _records(slug: str, root: Path, **options):
    return {r.record_id: r for r in get_source(slug, **options).list_records(root)}


def _write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)


# The competition's Data page: "0 - No DR, 1 - Mild, 2 - Moderate, 3 - Severe,
# 4 - Proliferative DR"; Kaggle messidor_readme: 0 None ... 4 PDR (typed here, not imported)
APTOS_NAMES = {0: "No DR", 1: "Mild", 2: "Moderate", 3: "Severe", 4: "Proliferative DR"}
MESSIDOR_NAMES = {0: "None", 1: "Mild DR", 2: "Moderate DR", 3: "Severe DR", 4: "PDR"}


def test_aptos_grade_is_the_icdr_class_and_an_ordered_integer(raw):
    root = raw / "aptos-2019"
    src = get_source("aptos-2019")
    with open(root / "train.csv", newline="") as f:
        written = {r["id_code"]: int(r["diagnosis"]) for r in csv.DictReader(f)}
    recs = _records("aptos-2019", root)
    assert set(recs) == set(written)  # train.csv only: the unlabelled test images are not built
    for rid, rec in recs.items():
        assert rec.source_labels == {"diagnosis": str(written[rid]), "grade": written[rid],
                                     "grading_scale": "ICDR 0-4"}
        assert rec.subject_id == rid  # no patient identity: the image is the unit
        if rid not in (aptos2019_fixture.TRUNCATED[0], aptos2019_fixture.MISSING[0]):
            assert next(src.load(rec, root)).classes == [APTOS_NAMES[written[rid]]]


def test_aptos_png_is_kept_and_decodes_like_the_file(raw):
    root = raw / "aptos-2019"
    rec = _records("aptos-2019", root)["0000000001"]
    payload = next(get_source("aptos-2019").load(rec, root)).payloads["image"]
    shipped = (root / "train_images" / "0000000001.png").read_bytes()
    assert payload.data == shipped
    decoded = cv2.imdecode(np.frombuffer(payload.data, np.uint8), cv2.IMREAD_COLOR)
    from PIL import Image

    with Image.open(root / "train_images" / "0000000001.png") as im:
        assert np.array_equal(decoded[..., ::-1], np.asarray(im.convert("RGB")))


def _splits_per_unit(slug: str, records, unit_of: dict) -> dict[object, set[str]]:
    """The splits the build (default fractions) gives each unit the raw files name."""
    units: dict[object, set[str]] = defaultdict(set)
    for r in records:
        units[unit_of[r.record_id]].add(
            assign_split(slug, r.subject_id, r.split, DEFAULT_FRACTIONS))
    return units


def test_messidor_two_eyes_of_one_examination_share_a_split(raw):
    recs = _records("messidor-2", raw / "messidor-2")
    for left, right in messidor2_fixture.EXAMS:
        a, b = recs[Path(left).stem], recs[Path(right).stem]
        assert a.subject_id == b.subject_id == f"exam:{left.lower()}"
        assert a.meta["paired"] and b.meta["paired"]


def test_messidor_split_is_by_examination(tmp_path):
    exams = [(f"IM{2 * i:06d}.JPG", f"IM{2 * i + 1:06d}.JPG") for i in range(300)]
    with open(tmp_path / "messidor-2.csv", "w") as f:
        f.write("Exam;Left;Right\n")
        f.writelines(f"e{i};{a};{b}\n" for i, (a, b) in enumerate(exams))
    _write_csv(tmp_path / "messidor_data.csv",
               ["image_id", "adjudicated_dr_grade", "adjudicated_dme", "adjudicated_gradable"],
               [[n.lower(), "1.0", "0.0", "1.0"] for pair in exams for n in pair])
    recs = list(get_source("messidor-2").list_records(tmp_path))
    exam_of = {Path(n.lower()).stem: i for i, pair in enumerate(exams) for n in pair}
    units = _splits_per_unit("messidor-2", recs, exam_of)
    assert len(units) == 300 and all(len(s) == 1 for s in units.values())
    assert set().union(*units.values()) == {"train", "val", "test"}
    assert all(r.source_labels["grade"] == 1 for r in recs)  # "1.0" as pandas writes it


def test_messidor_lower_case_names_find_upper_case_files_and_grades_map(raw):
    root = raw / "messidor-2"
    src = get_source("messidor-2")
    recs = _records("messidor-2", root)
    assert recs["IM000001"].files == ["IMAGES/IM000001.JPG"]  # the CSV says IM000001.jpg
    for image, grade, dme, _gradable in messidor2_fixture.GRADES:
        rec = recs[Path(image).stem]
        if not grade:
            with pytest.raises(Filtered, match="ungradable"):
                next(src.load(rec, root))
            continue
        assert rec.source_labels["grade"] == int(grade)
        assert rec.source_labels["adjudicated_dme"] == dme
        if Path(image).stem not in ("IM000005", "IM000008"):
            assert next(src.load(rec, root)).classes == [MESSIDOR_NAMES[int(grade)]]


def test_jichi_patient_from_the_file_name_and_both_grades_kept(raw):
    root = raw / "jichi"
    recs = _records("jichi", root)
    patient1 = [recs[k] for k in ("1_1_R", "1_2_L", "1_3_R")]
    assert {r.subject_id for r in patient1} == {"patient:1"}
    assert [r.meta["laterality"] for r in patient1] == ["R", "L", "R"]
    assert recs["15_1_L"].source_labels == {
        "Davis_grading_of_one_figure": "sdr", "Davis_grading_of_concatenated_figures": "ppdr",
        "grade": 1, "grading_scale": "modified Davis"}
    sample = next(get_source("jichi").load(recs["15_1_L"], root))
    assert sample.classes == ["sdr"]  # the one-figure grade, as CLIMB


def test_jichi_split_is_by_patient(tmp_path):
    rows = [[f"{p}_{k}_{'LR'[k % 2]}.jpg", "ndr", "ndr"] for p in range(1, 301) for k in (1, 2, 3)]
    _write_csv(tmp_path / "list.csv", ["Image", "Davis_grading_of_concatenated_figures",
                                       "Davis_grading_of_one_figure"], rows)
    recs = list(get_source("jichi").list_records(tmp_path))
    patient_of = {Path(r[0]).stem: int(r[0].split("_")[0]) for r in rows}
    units = _splits_per_unit("jichi", recs, patient_of)
    assert len(units) == 300 and all(len(s) == 1 for s in units.values())
    assert set().union(*units.values()) == {"train", "val", "test"}


def test_fixture_pixels_are_scikit_images_real_fundus_photographs():
    from medshard.sources.fundus.retina_pictures import fundus_view, microaneurysms, retina
    from medshard.testing import realdata

    for name in ("skimage-retina", "skimage-microaneurysms"):
        path = realdata.get(name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == realdata.REGISTRY[name].sha256
    full = retina()
    decoded = cv2.imread(str(realdata.get("skimage-retina")), cv2.IMREAD_COLOR)[..., ::-1]
    assert full.shape == (1411, 1411, 3)
    assert np.abs(full.astype(int) - decoded.astype(int)).max() <= 2  # two JPEG decoders
    assert microaneurysms().shape == (102, 102, 3)
    view = fundus_view(0, 96)
    ref = cv2.resize(decoded, view.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(view.astype(int) - ref.astype(int)).mean() < 6  # a downsized real photograph


def test_registered_fundus_files_are_the_ones_scikit_image_vouches_for():
    pytest.importorskip("skimage")
    from skimage.data._registry import registry

    from medshard.testing import realdata

    for name, member in (("skimage-retina", "data/retina.jpg"),
                         ("skimage-microaneurysms", "data/microaneurysms.png")):
        assert realdata.REGISTRY[name].sha256 == registry[member]


@pytest.mark.parametrize(("slug", "scale"), [
    ("aptos-2019", "ICDR 0-4"), ("messidor-2", "ICDR 0-4"), ("jichi", "modified Davis"),
])
def test_each_source_grade_is_its_concepts_rank_on_the_vocabulary_scale(raw, slug, scale):
    from medshard.schemas.vocabulary import load_vocabulary

    vocab = load_vocabulary()
    order = vocab.scale(scale)
    src = get_source(slug)
    seen = set()
    for rec in src.list_records(raw / slug):
        grade = rec.source_labels["grade"]
        if grade is None:  # Messidor-2's ungradable image
            continue
        assert rec.source_labels["grading_scale"] == scale
        cls = src.info.label_space[grade]  # each label space lists its grades in order
        assert vocab.map_classes(slug, [cls]) == [order[grade]]
        seen.add(grade)
    assert len(seen) >= 3


def test_scales_are_ordered_and_kept_apart():
    from medshard.schemas.vocabulary import load_vocabulary

    vocab = load_vocabulary()
    assert vocab.scale("ICDR 0-4") == ["fundus.no-dr", "fundus.dr-mild", "fundus.dr-moderate",
                                       "fundus.dr-severe", "fundus.dr-proliferative"]
    assert vocab.scale("modified Davis") == ["fundus.no-dr", "fundus.davis-simple-dr",
                                             "fundus.davis-preproliferative-dr",
                                             "fundus.dr-proliferative"]
    with pytest.raises(KeyError, match="no grading scale"):
        vocab.scale("Davis 0-4")


def test_a_rank_taken_twice_is_refused():
    import json
    from importlib import resources

    from medshard.schemas.vocabulary import Vocabulary

    data = json.loads(resources.files("medshard.schemas").joinpath("vocabulary.json").read_text())
    mild = next(c for c in data["concepts"] if c["id"] == "fundus.dr-mild")
    mild["grades"] = [{"scale": "ICDR 0-4", "rank": 2}]
    with pytest.raises(ValueError, match="share rank 2"):
        Vocabulary.from_dict(data)


def test_a_tiff_is_decoded_and_kept_losslessly(raw, tmp_path):
    import shutil

    from PIL import Image

    root = tmp_path / "messidor-2"
    shutil.copytree(raw / "messidor-2", root)
    jpeg = root / "IMAGES" / "IM000002.JPG"
    with Image.open(jpeg) as im:
        pixels = np.asarray(im.convert("RGB"))
    jpeg.unlink()
    Image.fromarray(pixels).save(root / "IMAGES" / "IM000002.tif", format="TIFF")
    rec = _records("messidor-2", root)["IM000002"]  # the CSV still says IM000002.jpg
    assert rec.files == ["IMAGES/IM000002.tif"]
    payload = next(get_source("messidor-2").load(rec, root)).payloads["image"]
    assert payload.descriptor["source_encoding"] == "tiff"
    reread = cv2.imread(str(root / "IMAGES" / "IM000002.tif"), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.array_equal(payload.data, reread)
