"""A miniature Messidor-2 in its two owners' layout: ADCIS's IMAGES/ and messidor-2.csv,
Kaggle's messidor_data.csv.

Real: the pixels, views of scikit-image's bundled fundus photographs (`retina_pictures`),
saved as PNG and as upper-case `.JPG` (the CSV names them `.jpg`, as in the release). Real
layout and columns. Illustrative: names, pairings and grades. Each examination pairs two
eyes (they must share a split); one image is ungradable (filtered), one JPEG truncated
(transform), one graded image missing (load).
"""

from __future__ import annotations

import csv
from pathlib import Path

from medshard.sources.fundus.retina_pictures import encode, fundus_view

# examination: (left image, right image); file names as ADCIS writes them
EXAMS = [
    ("20051020_43808_0100_PP.png", "20051020_43832_0100_PP.png"),
    ("20051020_44261_0100_PP.png", "20051020_44284_0100_PP.png"),
    ("IM000001.JPG", "IM000002.JPG"),
    ("IM000003.JPG", "IM000004.JPG"),
    ("IM000005.JPG", "IM000006.JPG"),
    ("IM000007.JPG", "IM000008.JPG"),
]
# image (as messidor_data.csv names it), grade ("" ungradable), dme, gradable
GRADES = [
    ("20051020_43808_0100_PP.png", "0", "0", "1"),
    ("20051020_43832_0100_PP.png", "1", "0", "1"),
    ("20051020_44261_0100_PP.png", "2", "1", "1"),
    ("20051020_44284_0100_PP.png", "3", "1", "1"),
    ("IM000001.jpg", "4", "1", "1"),
    ("IM000002.jpg", "0", "0", "1"),
    ("IM000003.jpg", "", "", "0"),
    ("IM000004.jpg", "1", "0", "1"),
    ("IM000005.jpg", "2", "0", "1"),
    ("IM000006.jpg", "0", "0", "1"),
    ("IM000007.jpg", "2", "0", "1"),
    ("IM000008.jpg", "1", "0", "1"),
]
TRUNCATED = "IM000005.JPG"
MISSING = "IM000008.JPG"


def write_fixture(root: Path) -> Path:
    (root / "IMAGES").mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(name for pair in EXAMS for name in pair):
        if name == MISSING:
            continue
        data = encode(fundus_view(n, 88), "PNG" if name.endswith(".png") else "JPEG")
        if name == TRUNCATED:
            data = data[: len(data) // 3]
        (root / "IMAGES" / name).write_bytes(data)
    with open(root / "messidor-2.csv", "w", newline="") as f:
        f.write("left;right\n")
        f.writelines(f"{left};{right}\n" for left, right in EXAMS)
    with open(root / "messidor_data.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_id", "adjudicated_dr_grade", "adjudicated_dme", "adjudicated_gradable"])
        w.writerows(GRADES)
    return root


def _append(root: Path, rows: list[list[str]]) -> list[int]:
    from medshard.testing.adversarial import csv_line_count

    path = root / "messidor_data.csv"
    first = csv_line_count(path) + 1
    with open(path, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return list(range(first, first + len(rows)))


def outside_path(root: Path, outside: Path):
    """An image_id with a path in it: refused at listing (image ids are file names)."""
    from medshard.testing.adversarial import Expect, plant_outside

    plant_outside(outside, "IM007777.JPG", (root / "IMAGES" / "IM000001.JPG").read_bytes())
    lines = _append(root, [[f"../../{outside.name}/IM007777.JPG", "1", "0", "1"]])
    return Expect({f"messidor_data.csv:{lines[0]}": "list"})


def malformed_rows(root: Path, outside: Path):
    """A grade outside 0-4, a non-numeric grade, an image_id that is not an image file."""
    from medshard.testing.adversarial import Expect

    lines = _append(root, [["IM009001.jpg", "7", "0", "1"], ["IM009002.jpg", "mild", "0", "1"],
                           ["IM009003", "1", "0", "1"]])
    return Expect({f"messidor_data.csv:{n}": "list" for n in lines},
                  {f"messidor_data.csv:{lines[0]}": "ICDR"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 4, "val": 2, "test": 3},
        quarantined={"IM000005": "transform", "IM000008": "load"},
        filtered={"ungradable: no adjudicated DR grade": 1},
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        real="pixels of scikit-image's bundled fundus photographs (retina.jpg, "
        "microaneurysms.png) as PNG and JPEG; the ADCIS + Kaggle layout",
        illustrative="image names, eye pairings and grades; one image ungradable (filtered), "
        "one JPEG truncated and one image missing (quarantined)",
    )


FIXTURE = _fixture()
