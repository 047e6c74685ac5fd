"""A miniature CMMD as the NBIA Data Retriever writes it, with its clinical table (.xlsx).

Pixels: real radiograph windows re-tagged as MG (`medshard.sources.mammo.fixture_images`);
patients, rows and labels are illustrative. The files carry their breast and view only in
the header, as CMMD's do: ImageLaterality and ViewPosition, or (patient D1-0014) only a
ViewCodeSequence code. Cases:
  - D1-0001 right breast (CC, MLO), D1-0014 left (views as codes), D1-0003 both breasts in
    one series of four files, D2-0007 with a molecular subtype;
  - D1-0002: its left breast has a CC image only (filtered);
  - D1-0004: listed in the table, no images downloaded (quarantined at load);
  - D1-0005: its MLO file is cut short (quarantined at load).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from medshard.sources.mammo.cmmd import COLUMNS, TABLE
from medshard.sources.mammo.fixture_images import PHI_MARKERS, mg_view
from medshard.sources.mammo.views import INCOMPLETE_BREAST

DICOM_PATIENT = "CMMDPID60114XR"
# ID1, LeftRight, Age, number, abnormality, classification, subtype
ROWS: list[tuple] = [
    ("D1-0001", "R", 44, 1, "calcification", "Benign", None),
    ("D1-0002", "L", 51, 1, "mass", "Benign", None),
    ("D1-0003", "L", 39, 1, "mass", "Benign", None),
    ("D1-0003", "R", 39, 1, "both", "Malignant", None),
    ("D1-0004", "L", 62, 1, "mass", "Malignant", None),
    ("D1-0005", "R", 47, 1, "calcification", "Benign", None),
    ("D1-0014", "L", 93, 2, "mass", "Malignant", None),
    ("D2-0007", "R", 58, 1, "both", "Malignant", "Luminal B"),
]
# patient -> [(side, view)] in file order within the patient's one series
IMAGES: dict[str, list[tuple[str, str]]] = {
    "D1-0001": [("R", "CC"), ("R", "MLO")],
    "D1-0002": [("L", "CC")],
    "D1-0003": [("L", "CC"), ("L", "MLO"), ("R", "MLO"), ("R", "CC")],
    "D1-0005": [("R", "CC"), ("R", "MLO")],
    "D1-0014": [("L", "MLO"), ("L", "CC")],
    "D2-0007": [("R", "CC"), ("R", "MLO")],
}
VIEWS_AS_CODES = "D1-0014"
TRUNCATED = ("D1-0005", 2)  # its 1-2.dcm


def _digits(text: str, n: int) -> str:
    return str(int(hashlib.sha256(f"medshard-demo-cmmd:{text}".encode()).hexdigest(), 16))[:n]


def series_folder(patient: str) -> str:
    return (f"CMMD/{patient}/07-18-2010-NA-NA-{_digits(patient + 'st', 5)}/"
            f"1.000000-NA-{_digits(patient + 'se', 5)}")


def write_raw(root: Path) -> None:
    import openpyxl

    root = Path(root)
    for n, (patient, images) in enumerate(sorted(IMAGES.items())):
        folder = root / series_folder(patient)
        folder.mkdir(parents=True, exist_ok=True)
        for k, (side, view) in enumerate(images, 1):
            name = ("RG1_UNCR.dcm", "RG3_UNCR.dcm")[(n + k) % 2]
            ds = mg_view(name, (250 + 90 * n, 300 + 70 * k, 96 + 2 * k, 78 + 2 * n),
                         view=view, laterality=side, patient_id=DICOM_PATIENT,
                         view_as_code=patient == VIEWS_AS_CODES)
            ds.save_as(folder / f"1-{k}.dcm", enforce_file_format=True)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    sheet.append(list(COLUMNS))
    for row in ROWS:
        sheet.append(list(row))
    book.save(root / TABLE)


def write_fixture(root: Path) -> None:
    write_raw(root)
    patient, k = TRUNCATED
    cut = Path(root) / series_folder(patient) / f"1-{k}.dcm"
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])


def malformed_row(root: Path, outside: Path):
    """A table row whose LeftRight is neither L nor R: a bad row; the listing goes on."""
    import openpyxl

    from medshard.testing.adversarial import Expect

    path = root / TABLE
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    sheet.append(["D1-0099", "X", 50, 1, "mass", "Benign", None])
    line = sheet.max_row
    book.save(path)
    rel = f"{TABLE}:{line}"
    return Expect({rel: "list"}, {rel: "LeftRight"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 2, "val": 1, "test": 2},
        quarantined={"D1-0004_L": "load", "D1-0005_R": "load"},
        filtered={INCOMPLETE_BREAST: 1},
        adversarial={"malformed_row": malformed_row},
        phi_markers=(*PHI_MARKERS, DICOM_PATIENT),
        real="real computed-radiograph pixels from pydicom-data (RG1_UNCR, RG3_UNCR), cropped",
        illustrative="their use as mammograms (re-tagged MG, laterality and view in the header "
        "only), patients, clinical rows and labels; identifying tags planted to prove they "
        "never leak; one patient without images, one file cut short",
    )


FIXTURE = _fixture()
