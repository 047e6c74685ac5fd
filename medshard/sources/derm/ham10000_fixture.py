"""A miniature HAM10000 in the owner's layout (metadata CSV + two image part folders).

Illustrative: every picture (no dermoscopy ships in any package: `lesion_pictures`), the
ids, ages and diagnoses. Real: the layout, the CSV columns, the JPEG encoding. Lesion
HAM_0000001 has two images, one in each part folder (they must share a split); one image
is truncated (quarantined at transform) and one CSV row names an image that is missing
(quarantined at load).
"""

from __future__ import annotations

import csv
from pathlib import Path

from medshard.sources.derm.lesion_pictures import encode, lesion_picture

HEADER = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset"]
# lesion, image, dx, dx_type, age, sex, localization, part folder
ROWS = [
    ("HAM_0000001", "ISIC_0000101", "bkl", "histo", "80.0", "male", "scalp", 1),
    ("HAM_0000001", "ISIC_0000102", "bkl", "histo", "80.0", "male", "scalp", 2),
    ("HAM_0000002", "ISIC_0000103", "nv", "follow_up", "45.0", "female", "back", 1),
    ("HAM_0000003", "ISIC_0000104", "mel", "histo", "", "unknown", "face", 2),
    ("HAM_0000004", "ISIC_0000105", "bcc", "histo", "70.0", "male", "trunk", 1),
    ("HAM_0000005", "ISIC_0000106", "akiec", "histo", "65.0", "female", "upper extremity", 2),
    ("HAM_0000006", "ISIC_0000107", "df", "consensus", "50.0", "female", "lower extremity", 1),
    ("HAM_0000007", "ISIC_0000108", "vasc", "consensus", "30.0", "male", "abdomen", 2),
    ("HAM_0000008", "ISIC_0000109", "nv", "confocal", "35.0", "female", "back", 1),
    ("HAM_0000009", "ISIC_0000110", "nv", "follow_up", "40.0", "male", "chest", 2),
    ("HAM_0000010", "ISIC_0000111", "mel", "histo", "60.0", "female", "back", 1),
    ("HAM_0000011", "ISIC_0000112", "nv", "histo", "55.0", "male", "neck", 2),
]
TRUNCATED = ("HAM_0000012", "ISIC_0000113", "nv", "histo", "25.0", "male", "back", 1)
MISSING = ("HAM_0000013", "ISIC_0000114", "mel", "histo", "75.0", "female", "foot", 2)


def _folder(part: int) -> str:
    return f"HAM10000_images_part_{part}"


def write_fixture(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for n, (_lesion, image, *_rest, part) in enumerate([*ROWS, TRUNCATED]):
        (root / _folder(part)).mkdir(exist_ok=True)
        data = encode(lesion_picture(n), "JPEG")
        if image == TRUNCATED[1]:
            data = data[: len(data) // 3]
        (root / _folder(part) / f"{image}.jpg").write_bytes(data)
    with open(root / "HAM10000_metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for row in [*ROWS, TRUNCATED, MISSING]:
            w.writerow([*row[:7], "vidir_modern"])
    return root


def _append(root: Path, rows: list[list[str]]) -> list[int]:
    from medshard.testing.adversarial import csv_line_count

    path = root / "HAM10000_metadata.csv"
    first = csv_line_count(path) + 1
    with open(path, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return list(range(first, first + len(rows)))


def outside_path(root: Path, outside: Path):
    """An image_id with `..` in it that leads to a JPEG outside the root."""
    from medshard.testing.adversarial import Expect, plant_outside

    jpeg = (root / _folder(1) / "ISIC_0000101.jpg").read_bytes()
    plant_outside(outside, "ISIC_0077777.jpg", jpeg)
    lines = _append(root, [["HAM_0077777", f"../{outside.name}/ISIC_0077777", "nv", "histo", "50.0",
                            "male", "back", "vidir_modern"]])
    return Expect({f"HAM10000_metadata.csv:{lines[0]}": "list"})


def malformed_rows(root: Path, outside: Path):
    """A dx outside the seven codes, a blank lesion_id, a non-numeric age."""
    from medshard.testing.adversarial import Expect

    lines = _append(root, [
        ["HAM_0077001", "ISIC_0077001", "melanoma", "histo", "50.0", "male", "back", ""],
        ["", "ISIC_0077002", "nv", "histo", "50.0", "male", "back", ""],
        ["HAM_0077003", "ISIC_0077003", "nv", "histo", "fifty", "male", "back", ""],
    ])
    return Expect({f"HAM10000_metadata.csv:{n}": "list" for n in lines},
                  {f"HAM10000_metadata.csv:{lines[0]}": "melanoma"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 9, "val": 2, "test": 1},
        quarantined={TRUNCATED[1]: "transform", MISSING[1]: "load"},
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        real="the Dataverse layout, CSV columns and JPEG encoding",
        illustrative="every picture (drawn: no dermoscopy ships in any package), ids, ages and "
        "diagnoses; one JPEG truncated, one row's image missing (quarantined)",
    )


FIXTURE = _fixture()
