"""A miniature COVID-BLUES in its real layout, from a real ultrasound cine.

Videos: pydicom-data's real ultrasound cine as small MP4 files (`lung_us_fixture.py`),
named like the release (`lus_videos/patient_<ID>_<POINT>[_2].mp4`). The clinical table
has the release's first columns and a few later ones (`discharge_to`, `Transfer_1_to`),
with illustrative values (-99 for missing, as the release writes). Identities are
planted where they could hide: one video's MP4 title and comment, and a free-text cell.
"""

from __future__ import annotations

import csv
from pathlib import Path

from medshard.sources.ultrasound.lung_us_fixture import write_cine_mp4

COLUMNS = ["patient_id", "cov_test", "number_video_files", "pat_weight", "pat_sex",
           "pat_height", "pat_bmi", "pat_age", "respiratory_rate", "pulse", "discharge_to",
           "Transfer_1_to"]
PHI_NAME = "Thistlewood^Marguerite"
PHI_TITLE = "Okonkwo-Branagh^Perpetua"

# patient_id, cov_test, sex, age, videos (BLUE point names, "_2" for a repeat)
PATIENTS = [
    (1, 1, 1, 74.0, ["L1", "R1", "R1_2"]),
    (2, 0, 0, 62.0, ["L2", "R3"]),
    (3, 1, 0, -99.0, ["L3", "R1"]),
    (12, 0, 1, 55.0, ["R2", "L1"]),
    (10, 1, 1, 81.0, ["L1"]),
    (8, 0, 0, 47.0, ["R1"]),
]
TRUNCATED = "patient_3_R1"  # the MP4 stops half way
NO_CLINICAL = "patient_9_L2"  # patient 9 has no row in clinical_variables.csv


def write_fixture(root: Path) -> Path:
    videos = root / "lus_videos"
    start = 0
    for patient, _test, _sex, _age, points in PATIENTS:
        for point in points:
            identity = (PHI_TITLE, f"{PHI_TITLE} bed 4") if (patient, point) == (2, "L2") else None
            write_cine_mp4(videos / f"patient_{patient}_{point}.mp4", 24, start, identity)
            start += 7
    whole = (videos / f"{TRUNCATED}.mp4").read_bytes()
    (videos / f"{TRUNCATED}.mp4").write_bytes(whole[: len(whole) // 2])
    write_cine_mp4(videos / f"{NO_CLINICAL}.mp4", 20, 3)
    with open(root / "clinical_variables.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for patient, test, sex, age, points in PATIENTS:
            w.writerow([patient, test, float(len(points)), 80.0, float(sex), 172.0, 27.0, age,
                        18.0, 90.0, 1.0, PHI_NAME if patient == 12 else ""])
    return root


def malformed_row(root: Path, outside: Path):
    """A clinical row whose cov_test is a word, not 0/1: a bad row at listing, and its
    patient's video has no label (quarantined at load)."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / "clinical_variables.csv"
    line = csv_line_count(path) + 1
    with open(path, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow([7, "positive", 1.0, 70.0, 1.0, 180.0, 21.6, 66.0, 20.0, 80.0,
                                1.0, ""])
    write_cine_mp4(root / "lus_videos" / "patient_7_R2.mp4", 20, 5)
    rel = f"clinical_variables.csv:{line}"
    return Expect({rel: "list", "patient_7_R2": "load"},
                  {rel: "could not convert string to float", "patient_7_R2": "no valid row"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 7, "val": 2, "test": 1},
        quarantined={TRUNCATED: "load", NO_CLINICAL: "load"},
        phi_markers=(PHI_NAME, PHI_TITLE),
        adversarial={"malformed_row": malformed_row},
        real="ultrasound cine frames from pydicom-data's color3d_jpeg_baseline.dcm, written as "
        "MP4 with OpenCV",
        illustrative="an ultrasound cine of unknown anatomy stands in for lung ultrasound; "
        "clinical values and labels; one video truncated, one without a clinical row "
        "(quarantined)",
    )


FIXTURE = _fixture()
