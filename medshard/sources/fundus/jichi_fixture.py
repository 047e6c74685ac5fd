"""A miniature Jichi release (list.csv + JPEGs named <patient>_<n>_<L|R>.jpg).

Real: the pixels, views of scikit-image's bundled fundus photographs (`retina_pictures`)
as JPEG; the layout and columns. Illustrative: patients and grades. Patient 1 has three
images of both eyes (they must share a split); one row's grades differ between the two
columns; one JPEG is truncated (transform), one image missing (load).
"""

from __future__ import annotations

import csv
from pathlib import Path

from medshard.sources.fundus.retina_pictures import encode, fundus_view

# image, concatenated-figure grade, one-figure grade
ROWS = [
    ("1_1_R.jpg", "ndr", "ndr"), ("1_2_L.jpg", "sdr", "ndr"), ("1_3_R.jpg", "sdr", "sdr"),
    ("2_1_L.jpg", "ppdr", "ppdr"), ("3_1_R.jpg", "pdr", "pdr"), ("4_1_L.jpg", "ndr", "ndr"),
    ("5_1_R.jpg", "sdr", "sdr"), ("15_1_L.jpg", "ppdr", "sdr"), ("6_1_R.jpg", "ndr", "ndr"),
]
TRUNCATED = ("7_1_L.jpg", "pdr", "pdr")
MISSING = ("8_1_R.jpg", "ndr", "ndr")


def write_fixture(root: Path) -> Path:
    (root / "dmr").mkdir(parents=True, exist_ok=True)
    for n, (image, *_grades) in enumerate([*ROWS, TRUNCATED]):
        data = encode(fundus_view(n + 3, 56 + 4 * (n % 2)), "JPEG")
        if image == TRUNCATED[0]:
            data = data[: len(data) // 3]
        (root / "dmr" / image).write_bytes(data)
    with open(root / "list.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Image", "Davis_grading_of_concatenated_figures",
                    "Davis_grading_of_one_figure"])
        w.writerows([*ROWS, TRUNCATED, MISSING])
    return root


def _append(root: Path, rows: list[list[str]]) -> list[int]:
    from medshard.testing.adversarial import csv_line_count

    first = csv_line_count(root / "list.csv") + 1
    with open(root / "list.csv", "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return list(range(first, first + len(rows)))


def outside_path(root: Path, outside: Path):
    """An Image with a path in it: refused at listing (Image is a file name)."""
    from medshard.testing.adversarial import Expect, plant_outside

    plant_outside(outside, "77_1_R.jpg", (root / "dmr" / "1_1_R.jpg").read_bytes())
    lines = _append(root, [[f"../{outside.name}/77_1_R.jpg", "ndr", "ndr"]])
    return Expect({f"list.csv:{lines[0]}": "list"})


def malformed_rows(root: Path, outside: Path):
    """An ICDR word where a Davis grade belongs, a blank grade, a blank Image."""
    from medshard.testing.adversarial import Expect

    lines = _append(root, [["90_1_R.jpg", "ndr", "moderate"], ["91_1_R.jpg", "", "ndr"],
                           ["", "ndr", "ndr"]])
    return Expect({f"list.csv:{n}": "list" for n in lines}, {f"list.csv:{lines[0]}": "moderate"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 5, "val": 3, "test": 1},
        quarantined={"7_1_L": "transform", "8_1_R": "load"},
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        real="pixels of scikit-image's bundled fundus photographs (retina.jpg, "
        "microaneurysms.png) as JPEG; the figshare layout",
        illustrative="patients and Davis grades; one JPEG truncated, one image missing "
        "(quarantined)",
    )


FIXTURE = _fixture()
