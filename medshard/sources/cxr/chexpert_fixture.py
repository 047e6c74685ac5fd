"""A miniature CheXpert-v1.0-small in its real layout, from real radiographs pydicom-data ships.

Real: the pixels, from pydicom-data's computed radiographs `RG1_UNCR.dcm` (1955 x 1841,
15-bit) and `RG3_UNCR.dcm` (1760 x 1760, 10-bit), both MONOCHROME1: inverted, windowed
to 8 bits and downsampled to the small variant's ~320-pixel side, saved as JPEG like
CheXpert-small. Illustrative: patients, studies, views, demographics and all labels;
several images are crops of the same radiograph.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from medshard.sources.cxr.chexpert import OBSERVATIONS

# patient, study, view file, sex, age, frontal/lateral, ap/pa, labels, split csv
ROWS = [
    ("patient00001", "study1", "view1_frontal", "Female", 68, "Frontal", "AP",
     {"No Finding": 1.0}, "train"),
    ("patient00002", "study1", "view1_frontal", "Male", 87, "Frontal", "PA",
     {"Cardiomegaly": 1.0, "Edema": -1.0, "Pleural Effusion": 0.0}, "train"),
    ("patient00002", "study1", "view2_lateral", "Male", 87, "Lateral", "",
     {"Cardiomegaly": 1.0, "Edema": -1.0}, "train"),
    ("patient00003", "study1", "view1_frontal", "Male", 41, "Frontal", "AP",
     {"Lung Opacity": 1.0, "Pneumonia": -1.0, "Support Devices": 1.0}, "train"),
    ("patient00004", "study2", "view1_frontal", "Female", 55, "Frontal", "AP",
     {"Pneumothorax": 1.0, "Fracture": 1.0}, "train"),
    ("patient00005", "study1", "view1_frontal", "Female", 73, "Frontal", "PA",
     {"Atelectasis": -1.0, "Consolidation": 1.0}, "train"),
    ("patient00006", "study1", "view1_frontal", "Male", 62, "Frontal", "AP",
     {"Enlarged Cardiomediastinum": 1.0, "Lung Lesion": 1.0}, "train"),
    ("patient00007", "study3", "view1_frontal", "Female", 30, "Frontal", "PA",
     {"No Finding": 1.0}, "train"),
    ("patient64541", "study1", "view1_frontal", "Male", 73, "Frontal", "AP",
     {"Cardiomegaly": 1.0, "Lung Opacity": 1.0, "Pleural Effusion": 1.0}, "valid"),
    ("patient64542", "study1", "view1_frontal", "Female", 70, "Frontal", "PA",
     {"No Finding": 1.0, "Support Devices": 0.0}, "valid"),
]


def real_radiographs() -> list[np.ndarray]:
    """The two real CR images as 8-bit MONOCHROME2 arrays."""
    import pydicom
    from pydicom.data import get_testdata_file

    images = []
    for name in ("RG1_UNCR.dcm", "RG3_UNCR.dcm"):
        ds = pydicom.dcmread(get_testdata_file(name))
        px = ds.pixel_array.astype(np.float64)
        lo, hi = np.percentile(px, [1, 99])
        px = np.clip((px - lo) / (hi - lo), 0, 1)
        if ds.PhotometricInterpretation == "MONOCHROME1":
            px = 1.0 - px
        images.append((px * 255).round().astype(np.uint8))
    return images


def write_raw(root: Path, corrupt: bool = False) -> Path:
    """Write `root/CheXpert-v1.0-small/{train,valid}.csv` and the JPEGs they name."""
    from PIL import Image

    release = root / "CheXpert-v1.0-small"
    release.mkdir(parents=True, exist_ok=True)
    sources = real_radiographs()
    header = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *OBSERVATIONS]
    rows: dict[str, list[list]] = {"train": [], "valid": []}
    for i, (patient, study, view, sex, age, fl, appa, labels, split) in enumerate(ROWS):
        rel = f"{split}/{patient}/{study}/{view}.jpg"
        img = sources[i % len(sources)]
        h, w = img.shape
        crop = img[(i * 37) % (h // 8):, (i * 53) % (w // 8):]  # different field of view per row
        im = Image.fromarray(crop)
        im.thumbnail((320, 390))
        (release / rel).parent.mkdir(parents=True, exist_ok=True)
        im.save(release / rel, format="JPEG", quality=90)
        cells = ["" if labels.get(o) is None else f"{labels[o]:.1f}" for o in OBSERVATIONS]
        rows[split].append([f"CheXpert-v1.0-small/{rel}", sex, age, fl, appa, *cells])
    for split, name in (("train", "train.csv"), ("valid", "valid.csv")):
        with open(release / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows[split])
    return root


BROKEN_IMAGE = "CheXpert-v1.0-small/train/patient00099/study1/view1_frontal.jpg"


def write_fixture(root: Path) -> Path:
    """The miniature plus one broken record: a train.csv row whose JPEG is not a JPEG."""
    write_raw(root)
    release = root / "CheXpert-v1.0-small"
    (root / BROKEN_IMAGE).parent.mkdir(parents=True, exist_ok=True)
    (root / BROKEN_IMAGE).write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG stream")
    with open(release / "train.csv", newline="") as f:
        header = next(csv.reader(f))
    row = [BROKEN_IMAGE, "Female", "40", "Frontal", "PA", *([""] * (len(header) - 5))]
    with open(release / "train.csv", "a", newline="") as f:
        csv.writer(f).writerow(row)
    return root


def _append_rows(root: Path, rows: list[list[str]]) -> list[int]:
    """Append rows to train.csv (blank label cells); returns their line numbers."""
    from medshard.testing.adversarial import csv_line_count

    path = root / "CheXpert-v1.0-small" / "train.csv"
    with open(path, newline="") as f:
        width = len(next(csv.reader(f)))
    first = csv_line_count(path) + 1
    with open(path, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([r + [""] * (width - len(r)) for r in rows])
    return list(range(first, first + len(rows)))


def outside_path(root: Path, outside: Path):
    """A train.csv Path with `..` that leads to a JPEG outside the root."""
    from medshard.testing.adversarial import Expect, plant_outside

    jpeg = next((root / "CheXpert-v1.0-small" / "train").rglob("*.jpg")).read_bytes()
    plant_outside(outside / "patient77777" / "study1", "view1_frontal.jpg", jpeg)
    _append_rows(root, [[f"CheXpert-v1.0-small/../../{outside.name}/patient77777/study1/"
                         "view1_frontal.jpg", "Male", "50", "Frontal", "PA"]])
    rid = "patient77777_study1_view1_frontal"
    return Expect({rid: "load"}, {rid: "outside the source root"})


def malformed_rows(root: Path, outside: Path):
    """A non-numeric Age, a non-ASCII patient folder, a Path too short to name a view."""
    from medshard.testing.adversarial import Expect

    lines = _append_rows(root, [
        ["CheXpert-v1.0-small/train/patient77001/study1/view1_frontal.jpg", "Male", "sixty"],
        ["CheXpert-v1.0-small/train/patiënt77002/study1/view1_frontal.jpg", "Male", "60"],
        ["CheXpert-v1.0-small/view1_frontal.jpg", "Female", "60"],
    ])
    csv_rel = "CheXpert-v1.0-small/train.csv"
    return Expect({f"{csv_rel}:{n}": "list" for n in lines},
                  {f"{csv_rel}:{lines[0]}": "sixty"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 8, "test": 2},
        quarantined={"patient00099_study1_view1_frontal": "transform"},
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        real="pixels of pydicom-data's computed radiographs `RG1_UNCR.dcm`, `RG3_UNCR.dcm` "
        "(inverted, 8-bit, ~320 px JPEG like CheXpert-small)",
        illustrative="patients, views, all labels; several images are crops of the same "
        "radiograph; one row names a file that is not a JPEG (quarantined)",
    )


FIXTURE = _fixture()
