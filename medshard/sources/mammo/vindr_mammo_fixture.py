"""A miniature VinDr-Mammo in its real layout (images/<study>/<image>.dicom + the two CSVs).

Pixels: real radiograph windows re-tagged as MG (`medshard.sources.mammo.fixture_images`,
illustrative as mammograms). Four exams:
  - S1 (training): left breast BI-RADS 4 with a mass boxed on both views, right BI-RADS 1
    ("No Finding" rows);
  - S2 (training): left BI-RADS 2; the right breast has a CC row only (filtered: a breast
    needs both views);
  - S3 (test): left BI-RADS 3 with a boxed calcification; the right MLO file is cut short
    (quarantined at load);
  - S4 (test): the left MLO file is missing (quarantined at load).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from medshard.sources.mammo.fixture_images import PHI_MARKERS, mg_view
from medshard.sources.mammo.views import INCOMPLETE_BREAST

PATIENT_IDS = ("VMPID40917AZ", "VMPID88213QL", "VMPID50120XK", "VMPID71544TM")
BREAST_HEADER = ["study_id", "series_id", "image_id", "laterality", "view_position", "height",
                 "width", "breast_birads", "breast_density", "split"]
FINDING_HEADER = ["study_id", "series_id", "image_id", "laterality", "view_position", "height",
                  "width", "breast_birads", "breast_density", "finding_categories",
                  "finding_birads", "xmin", "ymin", "xmax", "ymax", "split"]


def uid(text: str) -> str:
    """A VinDr-style 32-hex id, stable per fixture item."""
    return hashlib.md5(f"medshard-demo-vindr-mammo:{text}".encode()).hexdigest()


STUDY = {s: uid(s) for s in ("S1", "S2", "S3", "S4")}
# (study, side, view) -> (radiograph, crop (row, col, h, w), birads, density, split)
IMAGES: dict[tuple[str, str, str], tuple[str, tuple[int, int, int, int], str, str, str]] = {
    ("S1", "L", "CC"): ("RG1_UNCR.dcm", (700, 600, 120, 96), "BI-RADS 4", "DENSITY C", "training"),
    ("S1", "L", "MLO"): ("RG1_UNCR.dcm", (820, 640, 128, 100), "BI-RADS 4", "DENSITY C", "training"),
    ("S1", "R", "CC"): ("RG3_UNCR.dcm", (600, 500, 112, 90), "BI-RADS 1", "DENSITY C", "training"),
    ("S1", "R", "MLO"): ("RG3_UNCR.dcm", (700, 560, 120, 92), "BI-RADS 1", "DENSITY C", "training"),
    ("S2", "L", "CC"): ("RG3_UNCR.dcm", (900, 400, 104, 88), "BI-RADS 2", "DENSITY B", "training"),
    ("S2", "L", "MLO"): ("RG3_UNCR.dcm", (950, 420, 110, 90), "BI-RADS 2", "DENSITY B", "training"),
    ("S2", "R", "CC"): ("RG1_UNCR.dcm", (300, 900, 100, 80), "BI-RADS 1", "DENSITY B", "training"),
    ("S3", "L", "CC"): ("RG1_UNCR.dcm", (1000, 300, 116, 96), "BI-RADS 3", "DENSITY D", "test"),
    ("S3", "L", "MLO"): ("RG1_UNCR.dcm", (1100, 320, 124, 98), "BI-RADS 3", "DENSITY D", "test"),
    ("S3", "R", "CC"): ("RG3_UNCR.dcm", (500, 800, 100, 84), "BI-RADS 1", "DENSITY D", "test"),
    ("S3", "R", "MLO"): ("RG3_UNCR.dcm", (560, 820, 106, 86), "BI-RADS 1", "DENSITY D", "test"),
    ("S4", "L", "CC"): ("RG1_UNCR.dcm", (400, 400, 100, 80), "BI-RADS 2", "DENSITY A", "test"),
    ("S4", "L", "MLO"): ("RG1_UNCR.dcm", (450, 420, 100, 80), "BI-RADS 2", "DENSITY A", "test"),
}
# (study, side, view) -> [(categories, finding_birads, (xmin, ymin, xmax, ymax))]
FINDINGS = {
    ("S1", "L", "CC"): [("['Mass']", "BI-RADS 4", (30.5, 40.0, 61.25, 77.0))],
    ("S1", "L", "MLO"): [("['Mass']", "BI-RADS 4", (35.0, 52.0, 70.0, 90.5))],
    ("S3", "L", "CC"): [("['Suspicious Calcification']", "BI-RADS 3", (10.0, 12.0, 30.0, 41.0))],
}
TRUNCATED = ("S3", "R", "MLO")
MISSING = ("S4", "L", "MLO")


def image_id(study: str, side: str, view: str) -> str:
    return uid(f"{study}-{side}-{view}")


def record_id(study: str, side: str) -> str:
    return f"{STUDY[study]}_{side}"


def write_raw(root: Path) -> list[Path]:
    """The miniature VinDr-Mammo tree under `root`; returns the DICOM paths written."""
    root = Path(root)
    written, breast_rows, finding_rows = [], [], []
    for (study, side, view), (name, crop, birads, density, split) in IMAGES.items():
        patient = PATIENT_IDS[int(study[1]) - 1]
        ds = mg_view(name, crop, view=view, laterality=side, patient_id=patient)
        image = image_id(study, side, view)
        out = root / "images" / STUDY[study] / f"{image}.dicom"
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out, enforce_file_format=True)
        written.append(out)
        common = [STUDY[study], uid(f"{study}-{side}-series"), image, side, view,
                  crop[2], crop[3], birads, density]
        breast_rows.append([*common, split])
        found = FINDINGS.get((study, side, view))
        if found:
            for categories, fb, box in found:
                finding_rows.append([*common, categories, fb, *box, split])
        else:
            finding_rows.append([*common, "['No Finding']", "", "", "", "", "", split])
    # S2's right MLO is not in the index (a breast with one view)
    breast_rows = [r for r in breast_rows if r[2] != image_id("S2", "R", "MLO")]
    for name, header, rows in (("breast-level_annotations.csv", BREAST_HEADER, breast_rows),
                               ("finding_annotations.csv", FINDING_HEADER, finding_rows)):
        with open(root / name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
    return written


def write_fixture(root: Path) -> list[Path]:
    """The miniature plus its broken files: one view cut short, one missing."""
    written = write_raw(root)
    cut = root / "images" / STUDY[TRUNCATED[0]] / f"{image_id(*TRUNCATED)}.dicom"
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    (root / "images" / STUDY[MISSING[0]] / f"{image_id(*MISSING)}.dicom").unlink()
    return written


def malformed_row(root: Path, outside: Path):
    """A breast-level row whose breast_birads is not a BI-RADS category, for S1's left
    breast: the row is a bad row and the breast is left out (its views would be unsure)."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / "breast-level_annotations.csv"
    line = csv_line_count(path) + 1
    with open(path, "a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow(
            [STUDY["S1"], "x", image_id("S1", "L", "CC"), "L", "CC", 120, 96, "BI-RADS 7",
             "DENSITY C", "training"])
    rel = f"breast-level_annotations.csv:{line}"
    return Expect({rel: "list"}, {rel: "breast_birads"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 2, "val": 1, "test": 1},
        quarantined={record_id(*TRUNCATED[:2]): "load", record_id(*MISSING[:2]): "load"},
        filtered={INCOMPLETE_BREAST: 1},
        adversarial={"malformed_row": malformed_row},
        phi_markers=(*PHI_MARKERS, *PATIENT_IDS),
        real="real computed-radiograph pixels from pydicom-data (RG1_UNCR, RG3_UNCR; "
        "MONOCHROME1, 15- and 10-bit), cropped",
        illustrative="their use as mammograms (re-tagged MG with view and laterality; no "
        "mammogram ships in any package), exams, BI-RADS, density, findings and boxes; "
        "identifying tags planted to prove they never leak; one view cut short, one missing",
    )


FIXTURE = _fixture()
