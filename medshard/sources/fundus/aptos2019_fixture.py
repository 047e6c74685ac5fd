"""A miniature APTOS 2019 training set in the competition's layout (train.csv, train_images/).

Real: the pixels, views of scikit-image's bundled fundus photographs (`retina_pictures`),
saved as PNG like the competition's files; the layout and CSV columns. Illustrative: the
ids and grades. One PNG is truncated (quarantined at transform), one row's image is missing
(load); test.csv / test_images/ hold an unlabelled image that must not be built.
"""

from __future__ import annotations

import csv
from pathlib import Path

from medshard.sources.fundus.retina_pictures import encode, fundus_view

ROWS = [("0000000006", 0), ("0000000001", 1), ("0000000002", 2), ("0000000003", 3),
        ("0000000004", 4), ("0000000005", 0), ("000000001f", 2), ("0000000027", 1),
        ("000000001e", 0)]
TRUNCATED = ("0000000007", 2)
MISSING = ("0000000008", 4)


def write_fixture(root: Path) -> Path:
    (root / "train_images").mkdir(parents=True, exist_ok=True)
    (root / "test_images").mkdir(exist_ok=True)
    for n, (id_code, _grade) in enumerate([*ROWS, TRUNCATED]):
        data = encode(fundus_view(n, 64 + 8 * (n % 3)), "PNG")
        if id_code == TRUNCATED[0]:
            data = data[: len(data) // 2]
        (root / "train_images" / f"{id_code}.png").write_bytes(data)
    (root / "test_images" / "00000000ff.png").write_bytes(encode(fundus_view(9, 64), "PNG"))
    with open(root / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id_code", "diagnosis"])
        w.writerows([*ROWS, TRUNCATED, MISSING])
    with open(root / "test.csv", "w", newline="") as f:
        csv.writer(f).writerows([["id_code"], ["00000000ff"]])
    return root


def _append(root: Path, rows: list[list[str]]) -> list[int]:
    from medshard.testing.adversarial import csv_line_count

    first = csv_line_count(root / "train.csv") + 1
    with open(root / "train.csv", "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return list(range(first, first + len(rows)))


def outside_path(root: Path, outside: Path):
    """An id_code with `..` in it: refused at listing (ids are hexadecimal)."""
    from medshard.testing.adversarial import Expect, plant_outside

    png = (root / "train_images" / "0000000001.png").read_bytes()
    plant_outside(outside, "0000000777.png", png)
    lines = _append(root, [[f"../../{outside.name}/0000000777", "1"]])
    return Expect({f"train.csv:{lines[0]}": "list"})


def malformed_rows(root: Path, outside: Path):
    """A grade outside 0-4, a blank grade, a fractional grade."""
    from medshard.testing.adversarial import Expect

    lines = _append(root, [["0000000901", "5"], ["0000000902", ""], ["0000000903", "2.5"]])
    return Expect({f"train.csv:{n}": "list" for n in lines}, {"train.csv:" + str(lines[0]): "0-4"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 5, "val": 2, "test": 2},
        quarantined={TRUNCATED[0]: "transform", MISSING[0]: "load"},
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        real="pixels of scikit-image's bundled fundus photographs (retina.jpg, "
        "microaneurysms.png) as PNG; the competition layout",
        illustrative="ids and ICDR grades; one PNG truncated, one row's image missing "
        "(quarantined)",
    )


FIXTURE = _fixture()
