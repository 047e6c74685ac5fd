"""A miniature CoronaHack in its real layout, from real radiographs pydicom-data ships.

Real: the pixels, from pydicom-data's computed radiographs `RG1_UNCR.dcm` and
`RG3_UNCR.dcm` (8-bit, as CheXpert's fixture makes them), saved as JPEG, and one as PNG
(the COVID-19 images of the release are partly PNG). Illustrative: the file names (in the
release's naming patterns), all labels and the metadata rows; several images are crops of
the same radiograph. Broken on purpose: one listed image is truncated, one is missing.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from medshard.sources.cxr.coronahack import IMAGE_DIRS, METADATA

# X_ray_image_name, Label, Dataset_type, Label_2_Virus_category, Label_1_Virus_category
ROWS = [
    ("IM-0115-0001.jpeg", "Normal", "TRAIN", "", ""),
    ("IM-0117-0001.jpeg", "Normal", "TRAIN", "", ""),
    ("person1_bacteria_1.jpeg", "Pnemonia", "TRAIN", "", "bacteria"),
    ("person1_bacteria_2.jpeg", "Pnemonia", "TRAIN", "", "bacteria"),
    ("person78_bacteria_382.jpeg", "Pnemonia", "TRAIN", "Streptococcus", "bacteria"),
    ("person1000_virus_1681.jpeg", "Pnemonia", "TRAIN", "", "Virus"),
    ("person25_virus_55.jpeg", "Pnemonia", "TRAIN", "SARS", "Virus"),
    ("ryct.2020200028.fig1a.jpeg", "Pnemonia", "TRAIN", "COVID-19", "Virus"),
    ("covid-19-pneumonia-7-PA.png", "Pnemonia", "TRAIN", "COVID-19", "Virus"),
    ("ARDSSevere.png", "Pnemonia", "TRAIN", "ARDS", "Stress-Smoking"),
    ("IM-0001-0001.jpeg", "Normal", "TEST", "", ""),
    ("person100_bacteria_475.jpeg", "Pnemonia", "TEST", "", "bacteria"),
    ("person1600_virus_2777.jpeg", "Pnemonia", "TEST", "", "Virus"),
    ("person1700_bacteria_4000.jpeg", "Pnemonia", "TRAIN", "", "bacteria"),  # truncated
    ("person1800_virus_4100.jpeg", "Pnemonia", "TEST", "", "Virus"),  # file missing
]
TRUNCATED = "person1700_bacteria_4000.jpeg"
MISSING = "person1800_virus_4100.jpeg"
HEADER = ["", "X_ray_image_name", "Label", "Dataset_type", "Label_2_Virus_category",
          "Label_1_Virus_category"]


def image_path(root: Path, name: str, dataset_type: str) -> Path:
    return root / IMAGE_DIRS[0] / dataset_type.lower() / name


def write_fixture(root: Path) -> Path:
    from PIL import Image

    from medshard.sources.cxr.chexpert_fixture import real_radiographs

    root.mkdir(parents=True, exist_ok=True)
    sources = real_radiographs()
    for i, (name, _, dataset_type, _, _) in enumerate(ROWS):
        if name == MISSING:
            continue
        img = sources[i % len(sources)]
        h, w = img.shape
        im = Image.fromarray(img[(i * 31) % (h // 8):, (i * 47) % (w // 8):])
        im.thumbnail((320, 320))
        buf = io.BytesIO()
        im.save(buf, format="PNG" if name.endswith(".png") else "JPEG", quality=90)
        data = buf.getvalue()
        if name == TRUNCATED:
            data = data[: len(data) // 2]
        path = image_path(root, name, dataset_type)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with open(root / METADATA, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows([[i, name, label, dt, l2, l1]
                     for i, (name, label, dt, l2, l1) in enumerate(ROWS)])
    return root


def _append(root: Path, rows: list[list[str]]) -> list[int]:
    from medshard.testing.adversarial import csv_line_count

    path = root / METADATA
    first = csv_line_count(path) + 1
    with open(path, "a", newline="") as f:
        csv.writer(f).writerows([["900"] + r for r in rows])
    return list(range(first, first + len(rows)))


def outside_path(root: Path, outside: Path):
    """An image name with `..` leading to a JPEG outside the root."""
    from medshard.sources.cxr.pneumonia_images import image_record_id
    from medshard.testing.adversarial import Expect, plant_outside

    jpeg = image_path(root, ROWS[0][0], "TRAIN").read_bytes()
    plant_outside(outside, "escape.jpeg", jpeg)
    name = f"../../../../{outside.name}/escape.jpeg"
    _append(root, [[name, "Normal", "TRAIN", "", ""]])
    rid = image_record_id("train", name)
    return Expect({rid: "load"}, {rid: "outside the source root"})


def malformed_rows(root: Path, outside: Path):
    """An unknown Dataset_type, an unknown Label_1 category, a blank image name."""
    from medshard.testing.adversarial import Expect

    lines = _append(root, [
        ["IM-7001-0001.jpeg", "Normal", "VALID", "", ""],
        ["person7002_fungus_1.jpeg", "Pnemonia", "TRAIN", "", "fungus"],
        ["", "Normal", "TRAIN", "", ""],
    ])
    return Expect({f"{METADATA}:{n}": "list" for n in lines},
                  {f"{METADATA}:{lines[0]}": "VALID", f"{METADATA}:{lines[1]}": "fungus"})


def _fixture():
    from medshard.sources.cxr.pneumonia_images import image_record_id
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 8, "val": 1, "test": 3},
        quarantined={image_record_id("train", TRUNCATED): "transform",
                     image_record_id("test", MISSING): "load"},
        filtered={"Stress-Smoking (ARDS): not one of the pneumonia classes": 1},
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        real="pixels of pydicom-data's computed radiographs `RG1_UNCR.dcm`, `RG3_UNCR.dcm` "
        "(8-bit JPEG, one PNG)",
        illustrative="file names (the release's patterns), labels and metadata rows; several "
        "images are crops of the same radiograph; one image truncated, one missing",
    )


FIXTURE = _fixture()
