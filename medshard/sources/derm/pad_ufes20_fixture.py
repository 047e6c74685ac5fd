"""A miniature PAD-UFES-20 in the Mendeley layout (metadata.csv + images/imgs_part_N/*.png).

Illustrative: every picture (no clinical skin photograph ships in any package:
`lesion_pictures`), patients, clinical answers and diagnoses. Real: the layout, the 26 CSV
columns in their order, "UNK" and blank cells, the PNG encoding. Patient PAT_2 has two
lesions, lesion 30 two images; one PNG is truncated (quarantined at transform) and one
row's image is missing (load).
"""

from __future__ import annotations

import csv
from pathlib import Path

from medshard.sources.derm.lesion_pictures import encode, lesion_picture

HEADER = ["patient_id", "lesion_id", "smoke", "drink", "background_father", "background_mother",
          "age", "pesticide", "gender", "skin_cancer_history", "cancer_history",
          "has_piped_water", "has_sewage_system", "fitspatrick", "region", "diameter_1",
          "diameter_2", "diagnostic", "itch", "grew", "hurt", "changed", "bleed", "elevation",
          "img_id", "biopsed"]
# patient, lesion, image number, diagnostic, age, gender, part; the other cells vary below
ROWS = [
    ("PAT_2", 30, 101, "BCC", 70, "MALE", 1),
    ("PAT_2", 30, 102, "BCC", 70, "MALE", 2),
    ("PAT_2", 31, 103, "ACK", 70, "MALE", 3),
    ("PAT_4", 40, 104, "SCC", 82, "FEMALE", 1),
    ("PAT_24", 50, 105, "NEV", 25, "", 2),
    ("PAT_7", 60, 106, "MEL", 66, "FEMALE", 3),
    ("PAT_8", 70, 107, "SEK", 59, "MALE", 1),
    ("PAT_9", 80, 108, "ACK", 61, "FEMALE", 2),
    ("PAT_10", 90, 109, "NEV", 19, "FEMALE", 3),
]
TRUNCATED = ("PAT_11", 95, 110, "BCC", 77, "MALE", 1)
MISSING = ("PAT_12", 96, 111, "SEK", 58, "FEMALE", 2)


def _img_id(row: tuple) -> str:
    return f"{row[0]}_{row[1]}_{row[2]}.png"


def _csv_row(n: int, row: tuple) -> list:
    patient, lesion, _num, diagnostic, age, gender, _part = row
    answer = ("True", "False", "UNK")[n % 3]
    known = n % 4 != 0  # a quarter of the rows came without the extended questionnaire
    return [patient, lesion, answer if known else "", "False" if known else "",
            "POMERANIA" if known else "", "GERMANY" if known else "", age,
            "False" if known else "", gender, answer if known else "", "False" if known else "",
            "True" if known else "", "True" if known else "", f"{1 + n % 6}.0" if known else "",
            ("FACE", "NECK", "BACK", "ARM", "CHEST")[n % 5], f"{5 + n}.0" if known else "",
            f"{4 + n}.0" if known else "", diagnostic, answer, "True", "False", "UNK", "False",
            "True", _img_id(row), "True" if diagnostic in ("BCC", "SCC", "MEL") else "False"]


def write_fixture(root: Path) -> Path:
    for n, row in enumerate([*ROWS, TRUNCATED]):
        folder = root / "images" / f"imgs_part_{row[6]}"
        folder.mkdir(parents=True, exist_ok=True)
        data = encode(lesion_picture(200 + n, 64 + 8 * (n % 3), 80), "PNG")
        if row is TRUNCATED:
            data = data[: len(data) // 2]
        (folder / _img_id(row)).write_bytes(data)
    with open(root / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for n, row in enumerate([*ROWS, TRUNCATED, MISSING]):
            w.writerow(_csv_row(n, row))
    return root


def _append(root: Path, rows: list[list]) -> list[int]:
    from medshard.testing.adversarial import csv_line_count

    path = root / "metadata.csv"
    first = csv_line_count(path) + 1
    with open(path, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return list(range(first, first + len(rows)))


def outside_path(root: Path, outside: Path):
    """An img_id with `..` that leads to a PNG outside the root: refused at load."""
    from medshard.testing.adversarial import Expect, plant_outside

    png = next((root / "images").rglob("*.png")).read_bytes()
    plant_outside(outside, "PAT_77_1_1.png", png)
    row = _csv_row(1, ("PAT_77", 1, 1, "NEV", 30, "MALE", 1))
    row[HEADER.index("img_id")] = f"../../{outside.name}/PAT_77_1_1.png"  # under images/
    _append(root, [row])
    return Expect({"PAT_77_1_1": "load"}, {"PAT_77_1_1": "outside the source root"})


def malformed_rows(root: Path, outside: Path):
    """A diagnostic outside the six, a yes/no cell that is neither, a non-numeric diameter."""
    from medshard.testing.adversarial import Expect

    rows = [_csv_row(1, ("PAT_78", 1, 1, "BOD", 30, "MALE", 1)),
            _csv_row(1, ("PAT_78", 2, 2, "NEV", 30, "MALE", 1)),
            _csv_row(1, ("PAT_78", 3, 3, "NEV", 30, "MALE", 1))]
    rows[1][HEADER.index("itch")] = "maybe"
    rows[2][HEADER.index("diameter_1")] = "large"
    lines = _append(root, rows)
    return Expect({f"metadata.csv:{n}": "list" for n in lines}, {f"metadata.csv:{lines[0]}": "BOD"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 5, "val": 1, "test": 3},
        quarantined={_img_id(TRUNCATED)[:-4]: "transform", _img_id(MISSING)[:-4]: "load"},
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        real="the Mendeley layout, the 26 CSV columns with UNK and blank cells, PNG encoding",
        illustrative="every picture (drawn: no clinical skin photograph ships in any package), "
        "patients, answers, diagnoses; one PNG truncated and one row's image missing "
        "(quarantined)",
    )


FIXTURE = _fixture()
