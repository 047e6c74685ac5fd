"""A miniature COVID-US in the layout its notebook produces, from a real ultrasound cine.

`utils/video_metadata.csv` has the 21 columns the notebook shows, rows in the release's
style (ids `<n>_<publisher>_<class>`, two LITFL videos of one case, a POCUS Atlas GIF, an
`Other` video); `data/video/<id>.mp4` are pydicom-data's real ultrasound cine as small
MP4 files (`lung_us_fixture.py`). Identities are planted in a free-text `comment`, in a
`patient` cell and in one video's MP4 title.
"""

from __future__ import annotations

import csv
from pathlib import Path

from medshard.sources.ultrasound.lung_us_fixture import write_cine_mp4

COLUMNS = ["id", "filename", "filetype", "folder", "source", "url", "probe", "class",
           "class_on_website", "version", "date_added", "type", "patient", "case_no",
           "gender", "age", "comment", "paper_link", "paper_doi", "license", "link"]
PHI_COMMENT = "Hollingsworth-Vane^Eudora"
PHI_PATIENT = "MRN-88120457"
PHI_TITLE = "Castellanos^Wilhelmina"

# id, filetype, source, probe, class, patient, case_no, age
ROWS = [
    ("1_butterfly_covid", "mp4", "Butterfly", "Convex", "COVID", "", "", ""),
    ("7_butterfly_covid", "mp4", "Butterfly", "Convex", "COVID", "", "", ""),
    ("20_butterfly_normal", "mp4", "Butterfly", "Convex", "Normal", "", "", ""),
    ("23_grepmed_pneumonia", "mp4", "GrepMed", "Linear", "Pneumonia", "", "", ""),
    ("28_grepmed_normal", "mp4", "GrepMed", "Linear", "Normal", PHI_PATIENT, "", "61"),
    ("44_litfl_pneumonia", "mp4", "Litfl", "Convex", "Pneumonia", "", "12", "54"),
    ("45_litfl_pneumonia", "mp4", "Litfl", "Convex", "Pneumonia", "", "12", "54"),
    ("49_pocusatlas_covid", "gif", "PocusAtlas", "Convex", "COVID", "", "", ""),
    ("100_litfl_other", "mp4", "Litfl", "Convex", "Other", "", "", ""),
    ("24_grepmed_covid", "mp4", "GrepMed", "Convex", "COVID", "", "", ""),
    ("26_grepmed_covid", "mp4", "GrepMed", "Convex", "COVID", "", "", ""),
]
TRUNCATED = "24_grepmed_covid"
MISSING = "26_grepmed_covid"  # listed; the download failed (no file)


def write_fixture(root: Path) -> Path:
    videos = root / "data" / "video"
    videos.mkdir(parents=True, exist_ok=True)
    (root / "utils").mkdir(parents=True, exist_ok=True)
    with open(root / "utils" / "video_metadata.csv", "w", newline="", encoding="latin-1") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i, (vid, ftype, source, probe, cls, patient, case, age) in enumerate(ROWS):
            comment = (f"{PHI_COMMENT}, 54 year old male, collapse at home" if vid ==
                       "23_grepmed_pneumonia" else "")
            w.writerow([vid, f"clip {i}.{ftype}", ftype, f"data\\tmp\\{source}", source,
                        f"https://example.org/{source.lower()}/{i}.{ftype}", probe, cls, "",
                        "1.0", "Nov_2020", "lung", patient, case, "", age, comment, "", "",
                        "", ""])
            if ftype == "gif":
                (videos / f"{vid}.gif").write_bytes(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
            elif vid != MISSING:
                identity = (PHI_TITLE, "bedside scan") if vid == "1_butterfly_covid" else None
                write_cine_mp4(videos / f"{vid}.mp4", 18, 9 * i, identity)
    whole = (videos / f"{TRUNCATED}.mp4").read_bytes()
    (videos / f"{TRUNCATED}.mp4").write_bytes(whole[: len(whole) * 2 // 3])
    return root


def malformed_row(root: Path, outside: Path):
    """A metadata row whose class is none of the four the release uses."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / "utils" / "video_metadata.csv"
    line = csv_line_count(path) + 1
    with open(path, "a", newline="", encoding="latin-1") as f:
        csv.writer(f).writerow(["300_core_covid", "x.mp4", "mp4", "", "Core", "", "Convex",
                                "Covid-ish"] + [""] * 13)
    rel = f"utils/video_metadata.csv:{line}"
    return Expect({rel: "list"}, {rel: "is not COVID, Pneumonia, Normal or Other"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 3, "val": 3, "test": 1},
        quarantined={TRUNCATED: "load", MISSING: "load"},
        filtered={"class Other: not covid, pneumonia or normal (CLIMB drops it too)": 1,
                  "gif animation, not an MP4 video": 1},
        phi_markers=(PHI_COMMENT, PHI_PATIENT, PHI_TITLE),
        adversarial={"malformed_row": malformed_row},
        real="ultrasound cine frames from pydicom-data's color3d_jpeg_baseline.dcm, written as "
        "MP4 with OpenCV",
        illustrative="an ultrasound cine of unknown anatomy stands in for lung ultrasound; "
        "metadata rows and labels; a stub GIF; one video truncated, one missing (quarantined)",
    )


FIXTURE = _fixture()
