"""A miniature MIMIC-CXR-JPG in its real layout, from real radiographs pydicom-data ships.

Real: the pixels, from pydicom-data's computed radiographs `RG1_UNCR.dcm` and
`RG3_UNCR.dcm` made into 8-bit JPEGs as CheXpert's fixture makes them
(`chexpert_fixture.real_radiographs`); the four tables are gzip-compressed CSVs with the
release's names and columns. Illustrative: subject, study and dicom ids, view positions,
sizes and all labels (the label rows are CheXpert fixture rows, so the two sources can be
compared row for row); several images are crops of the same radiograph. One image is a
truncated JPEG (quarantined), one is lateral and one study has no labeller row (both
filtered).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from pathlib import Path

from medshard.sources.cxr.chexpert_labels import OBSERVATIONS

# subject, study, view position, split, labels (CheXpert fixture row index or None)
IMAGES = [
    ("10000032", "50414267", "PA", "train", 0),
    ("10000032", "50414267", "LATERAL", "train", 0),
    ("10000764", "57375967", "AP", "train", 1),
    ("10000898", "50771383", "PA", "train", 3),
    ("10001122", "51234567", "AP", "train", 4),
    ("10001217", "52000001", "PA", "validate", 5),
    ("10001401", "53000001", "AP", "validate", 6),
    ("10002013", "54000001", "PA", "test", 8),
    ("10002428", "55000001", "AP", "test", 9),
    ("10002930", "56000001", "PA", "train", None),  # study without a labeller row
    ("10003400", "57000001", "PA", "train", 7),     # its JPEG is truncated
]
METADATA_COLUMNS = [
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition",
    "Rows", "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning",
]
# the labeller tables list the observations alphabetically after the two ids
LABEL_COLUMNS = ["subject_id", "study_id", *sorted(OBSERVATIONS)]
VIEW_MEANING = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral"}
BROKEN = 10


def dicom_id(i: int) -> str:
    """A MIMIC-style image id: five dash-separated groups of 8 hex digits."""
    h = hashlib.sha256(f"medshard-mimic-fixture-{i}".encode()).hexdigest()[:40]
    return "-".join(h[k:k + 8] for k in range(0, 40, 8))


def image_rel(i: int) -> str:
    subject, study = IMAGES[i][0], IMAGES[i][1]
    return f"files/p{subject[:2]}/p{subject}/s{study}/{dicom_id(i)}.jpg"


def write_table(path: Path, header: list[str], rows: list[list]) -> None:
    """A CSV, gzip-compressed without a timestamp (same bytes on every run)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                filename="") as gz:
        gz.write(buf.getvalue().encode())


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def label_row(labels: dict[str, float]) -> dict[str, str]:
    """One labeller row's cells, written as the release writes them (1.0, -1.0, blank)."""
    return {o: "" if labels.get(o) is None else f"{labels[o]:.1f}" for o in OBSERVATIONS}


def write_fixture(root: Path) -> Path:
    from PIL import Image

    from medshard.sources.cxr.chexpert_fixture import ROWS, real_radiographs

    root.mkdir(parents=True, exist_ok=True)
    sources = real_radiographs()
    meta_rows, split_rows, studies = [], [], {}
    for i, (subject, study, view, split, label_idx) in enumerate(IMAGES):
        img = sources[i % len(sources)]
        h, w = img.shape
        crop = img[(i * 41) % (h // 8):, (i * 29) % (w // 8):]
        im = Image.fromarray(crop)
        im.thumbnail((384, 384))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
        data = buf.getvalue()
        if i == BROKEN:
            data = data[: len(data) // 2]  # cut off mid-scan: a truncated download
        path = root / image_rel(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        meta_rows.append([
            dicom_id(i), subject, study, "CHEST (PA AND LAT)", view, im.height, im.width,
            "21800506", "213014.531", "CHEST (PA AND LAT)", VIEW_MEANING[view],
            "Erect",
        ])
        split_rows.append([dicom_id(i), study, subject, split])
        if label_idx is not None:
            studies[(subject, study)] = label_row(ROWS[label_idx][7])
    write_table(root / "mimic-cxr-2.0.0-metadata.csv.gz", METADATA_COLUMNS, meta_rows)
    write_table(root / "mimic-cxr-2.0.0-split.csv.gz",
                ["dicom_id", "study_id", "subject_id", "split"], split_rows)
    label_rows = [[s, t, *(cells[o] for o in LABEL_COLUMNS[2:])]
                  for (s, t), cells in sorted(studies.items())]
    write_table(root / "mimic-cxr-2.0.0-chexpert.csv.gz", LABEL_COLUMNS, label_rows)
    # NegBio's table: the same studies; NegBio leaves "Fracture" and "Support Devices"
    # blank here, so the two labellers differ (illustrative)
    negbio = [r[:] for r in label_rows]
    for r in negbio:
        for col in ("Fracture", "Support Devices"):
            r[LABEL_COLUMNS.index(col)] = ""
    write_table(root / "mimic-cxr-2.0.0-negbio.csv.gz", LABEL_COLUMNS, negbio)
    return root


def _append_metadata(root: Path, rows: list[list[str]]) -> list[int]:
    """Append rows to the metadata table (re-compressed); returns their line numbers."""
    path = root / "mimic-cxr-2.0.0-metadata.csv.gz"
    header, body = read_table(path)
    first = len(body) + 2
    write_table(path, header, body + [r + [""] * (len(header) - len(r)) for r in rows])
    return list(range(first, first + len(rows)))


def outside_path(root: Path, outside: Path):
    """A dicom_id with `..` that would lead to a JPEG outside the root: a bad row."""
    from medshard.testing.adversarial import Expect, plant_outside

    plant_outside(outside, "escape.jpg", (root / image_rel(0)).read_bytes())
    evil = f"../../../../{outside.name}/escape"
    split = root / "mimic-cxr-2.0.0-split.csv.gz"
    header, body = read_table(split)
    write_table(split, header, body + [[evil, IMAGES[0][1], IMAGES[0][0], "train"]])
    (line,) = _append_metadata(root, [[evil, IMAGES[0][0], IMAGES[0][1], "", "PA"]])
    rel = f"mimic-cxr-2.0.0-metadata.csv.gz:{line}"
    return Expect({rel: "list"}, {rel: "record_id"})


def malformed_rows(root: Path, outside: Path):
    """A non-numeric subject id, a non-numeric Rows cell, an image without a split row."""
    from medshard.testing.adversarial import Expect

    lines = _append_metadata(root, [
        ["aaaaaaa1-bbbbbbbb-cccccccc-dddddddd-eeeeeeee", "p10000032", "50414267", "", "PA"],
        ["aaaaaaa2-bbbbbbbb-cccccccc-dddddddd-eeeeeeee", "10000032", "50414267", "", "PA",
         "tall", "2000"],
        ["aaaaaaa3-bbbbbbbb-cccccccc-dddddddd-eeeeeeee", "10000032", "50414267", "", "PA"],
    ])
    rel = "mimic-cxr-2.0.0-metadata.csv.gz"
    return Expect({f"{rel}:{n}": "list" for n in lines},
                  {f"{rel}:{lines[0]}": "not numeric ids", f"{rel}:{lines[1]}": "tall",
                   f"{rel}:{lines[2]}": "no row in"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 4, "val": 2, "test": 2},
        quarantined={dicom_id(BROKEN): "transform"},
        filtered={"not a frontal (PA/AP) view": 1, "study has no row in the labeller table": 1},
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        real="pixels of pydicom-data's computed radiographs `RG1_UNCR.dcm`, `RG3_UNCR.dcm` "
        "(inverted, 8-bit JPEG as CheXpert's fixture); gzip-compressed tables in the "
        "release's names and columns",
        illustrative="subject/study/dicom ids, view positions and all labels (CheXpert "
        "fixture rows); several images are crops of the same radiograph; one JPEG is "
        "truncated (quarantined)",
    )


FIXTURE = _fixture()
