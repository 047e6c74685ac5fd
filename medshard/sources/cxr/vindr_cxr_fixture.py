"""A miniature VinDr-CXR in its real layout, from real DICOM files shipped in pydicom's test data.

Layout written under the source root:
    train/<image_id>.dicom, test/<image_id>.dicom
    annotations/image_labels_train.csv   image_id, rad_id, 28 label columns (3 readers)
    annotations/image_labels_test.csv    image_id, 28 label columns (consensus; the test
                                         file spells "Other disease" as the real one does)
    annotations/annotations_{train,test}.csv   image_id, rad_id, class_name, x_min ... y_max

Pixels are real and untouched: a computed radiograph (CR, MONOCHROME1, 10-bit, JPEG 2000
lossless, 1760 x 1760), two MR slices with overlays (12-bit) and an 8-bit image; the
CXR-sized radiographs pydicom ships are the only chest-like ones, the others stand in.
One MR slice gets RescaleSlope 2 / RescaleIntercept 100 so the modality LUT matters.
Every file gets the identifying attributes in `IDENTITY` (names, ids, dates,
institution, device serial, free text, a sequence with free text, a private tag,
burned-in-annotation flag) so tests can prove none of them reaches any output.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medshard.sources.cxr.vindr_cxr import LABELS

# Identifying values written into every fixture file; none may reach any output.
IDENTITY: dict[str, str] = {
    "PatientName": "Quillfeather^Rosamund^Ysolde",
    "OtherPatientIDs": "ALTMRN7719035",
    "PatientBirthDate": "19470214",
    "PatientAddress": "17 Marigold Lane, Thornbury",
    "InstitutionName": "Saint Zebulon Thoracic Hospital",
    "InstitutionAddress": "88 Quarry Road, Vellmoor",
    "StudyDate": "20190723",
    "SeriesDate": "20190724",
    "AcquisitionDate": "20190725",
    "ContentDate": "20190726",
    "StudyTime": "134211.5",
    "AccessionNumber": "ACC99384721",
    "StudyID": "STUDY5530917",
    "DeviceSerialNumber": "DSN4F7Q22871",
    "StationName": "XRAYROOMQZ7",
    "ReferringPhysicianName": "Okonkwo^Barnabas",
    "PerformingPhysicianName": "Vantongeren^Ilse",
    "OperatorsName": "Tech^Wilhelmina",
    "ImageComments": "Seen by Dr Okonkwo in bay fourteen, follow-up Tuesday",
    "PatientComments": "Allergic to penicillin per Zebulon intake notes",
    "StudyDescription": "CHEST PA QUILLFEATHER FOLLOWUP",
    "AdditionalPatientHistory": "Former miner at Vellmoor colliery",
}
# Free text inside a sequence item and in a private tag.
REQUESTED_PROCEDURE_TEXT = "Requested by ward Cassiopeia for Rosamund"
PRIVATE_CREATOR = "MEDSHARD DEMO PRIVATE"
PRIVATE_TEXT = "PrivateVendorNote Zebulon 5512"

# One patient id per subject; two train images share a subject.
PATIENT_IDS: tuple[str, ...] = ("VNPID58213QX", "VNPID77140RB", "VNPID30961KT")


@dataclass(frozen=True)
class DemoImage:
    name: str  # pydicom test file
    split: str  # train | test
    patient: int  # index into PATIENT_IDS
    age: str  # PatientAge as DICOM writes it
    rescale: tuple[int, int] | None = None  # (slope, intercept) written into the file


DEMO_IMAGES: tuple[DemoImage, ...] = (
    DemoImage("RG3_J2KR.dcm", "train", 0, "045Y"),
    DemoImage("examples_overlay.dcm", "train", 1, "097Y", rescale=(2, 100)),
    DemoImage("vlut_04.dcm", "train", 1, "061Y"),
    DemoImage("MR-SIEMENS-DICOM-WithOverlays.dcm", "test", 2, "033Y"),
)

# Reader votes per train image (R8, R9, R10) and the consensus row per test image:
# positive labels of each reader.
TRAIN_READS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "RG3_J2KR.dcm": [
        ("R8", ("Cardiomegaly", "Pleural effusion", "Other diseases")),
        ("R9", ("Cardiomegaly", "Infiltration")),
        ("R10", ("Cardiomegaly", "Pleural effusion")),
    ],
    "examples_overlay.dcm": [
        ("R8", ("No finding",)),
        ("R9", ("No finding",)),
        ("R10", ("Nodule/Mass", "Lung tumor")),
    ],
    "vlut_04.dcm": [
        ("R11", ("Aortic enlargement",)),
        ("R12", ("No finding",)),
        ("R13", ("No finding",)),
    ],
}
TEST_READS: dict[str, tuple[str, ...]] = {
    "MR-SIEMENS-DICOM-WithOverlays.dcm": ("Pneumonia", "Consolidation", "Other diseases"),
}
# Boxes (x_min, y_min, x_max, y_max) per image and reader.
BOXES: dict[str, list[tuple[str | None, str, tuple[float, float, float, float]]]] = {
    "RG3_J2KR.dcm": [
        ("R8", "Cardiomegaly", (610.0, 980.0, 1290.0, 1350.0)),
        ("R9", "Cardiomegaly", (600.5, 990.0, 1301.0, 1342.0)),
        ("R9", "Infiltration", (220.0, 400.0, 520.0, 760.0)),
        ("R10", "Cardiomegaly", (615.0, 975.0, 1288.0, 1361.0)),
        ("R8", "Pleural effusion", (1300.0, 1400.0, 1700.0, 1650.0)),
        ("R10", "Pleural effusion", (1310.0, 1390.0, 1695.0, 1660.0)),
    ],
    "examples_overlay.dcm": [("R10", "Nodule/Mass", (120.0, 80.0, 160.0, 121.0))],
    "vlut_04.dcm": [("R11", "Aortic enlargement", (240.0, 130.0, 300.0, 190.0))],
    "MR-SIEMENS-DICOM-WithOverlays.dcm": [(None, "Consolidation", (100.0, 200.0, 180.0, 260.0))],
}


def image_id(name: str) -> str:
    """A VinDr-style 32-hex image id, stable per fixture file."""
    return hashlib.md5(f"medshard-demo-vindr:{name}".encode()).hexdigest()


def _identify(ds: Dataset, image: DemoImage) -> None:
    """Overwrite the file's identity with the demo markers (real pixels stay untouched)."""
    for keyword, value in IDENTITY.items():
        setattr(ds, keyword, value)
    ds.PatientID = PATIENT_IDS[image.patient]
    ds.PatientSex = "F"
    ds.PatientAge = image.age
    ds.BurnedInAnnotation = "NO"  # read (YES is quarantined by default), never copied
    item = Dataset()
    item.RequestedProcedureDescription = REQUESTED_PROCEDURE_TEXT
    item.RequestedProcedureID = "RPID99124"
    ds.RequestAttributesSequence = Sequence([item])
    block = ds.private_block(0x0099, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", PRIVATE_TEXT)
    if image.rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = image.rescale


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _vote_row(positive: tuple[str, ...]) -> list[object]:
    return [1 if label in positive else 0 for label in LABELS]


def write_raw(root: Path) -> list[Path]:
    """Write the miniature VinDr-CXR tree under `root` (the source root); returns the DICOM paths."""
    root = Path(root)
    written = []
    for image in DEMO_IMAGES:
        src = get_testdata_file(image.name)
        if src is None:
            raise FileNotFoundError(
                f"pydicom test file {image.name} is missing: install pydicom-data "
                "(pip install pydicom-data) for the VinDr-CXR demo"
            )
        ds = dcmread(src)
        _identify(ds, image)
        out = root / image.split / f"{image_id(image.name)}.dicom"
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out, enforce_file_format=True)
        written.append(out)

    train_rows = [
        [image_id(name), rad, *_vote_row(pos)]
        for name, reads in TRAIN_READS.items()
        for rad, pos in reads
    ]
    _write_csv(
        root / "annotations" / "image_labels_train.csv",
        ["image_id", "rad_id", *LABELS],
        train_rows,
    )
    test_header = ["image_id", *("Other disease" if c == "Other diseases" else c for c in LABELS)]
    test_rows = [[image_id(name), *_vote_row(pos)] for name, pos in TEST_READS.items()]
    _write_csv(root / "annotations" / "image_labels_test.csv", test_header, test_rows)

    for split in ("train", "test"):
        rows: list[list[object]] = []
        names = [i.name for i in DEMO_IMAGES if i.split == split]
        for name in names:
            for rad, cls, box in BOXES.get(name, []):
                rows.append([image_id(name), rad or "", cls, *box])
            if split == "train":
                for rad, pos in TRAIN_READS[name]:
                    if pos == ("No finding",):
                        rows.append([image_id(name), rad, "No finding", "", "", "", ""])
        header = ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max"]
        if split == "test":  # consensus: no reader column
            header.remove("rad_id")
            rows = [[r[0], *r[2:]] for r in rows]
        _write_csv(root / "annotations" / f"annotations_{split}.csv", header, rows)
    return written


MISSING_IMAGE = "0" * 32  # in image_labels_train.csv, no .dicom file


TRUNCATED_IMAGE = "vlut_04.dcm"  # its pixel data cut short: the identified file breaks


def write_fixture(root: Path) -> list[Path]:
    """The miniature plus two broken records: a labelled image whose DICOM file is missing,
    and an identified file whose pixel data is cut short (its error must leak nothing)."""
    written = write_raw(root)
    broken = root / "train" / f"{image_id(TRUNCATED_IMAGE)}.dicom"
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 3])
    with open(root / "annotations" / "image_labels_train.csv", "a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow(
            [MISSING_IMAGE, "R1", *([0] * (len(LABELS) - 1)), 1]
        )
    return written


def malformed_row(root: Path, outside: Path):
    """A reader's row with a non-numeric label cell, for an image that is on disk: the row
    is a bad row and its image is left out (its vote would be incomplete)."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / "annotations" / "image_labels_train.csv"
    image = next(p.stem for p in sorted((root / "train").glob("*.dicom")))
    line = csv_line_count(path) + 1
    with open(path, "a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow([image, "R9", "yes", *([0] * (len(LABELS) - 1))])
    rel = f"annotations/image_labels_train.csv:{line}"
    return Expect({rel: "list"}, {rel: f"image {image}: non-numeric label cell"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 1, "val": 1, "test": 1},
        quarantined={MISSING_IMAGE: "load", image_id(TRUNCATED_IMAGE): "load"},
        adversarial={"malformed_row": malformed_row},
        phi_markers=(*IDENTITY.values(), *PATIENT_IDS, REQUESTED_PROCEDURE_TEXT, PRIVATE_TEXT),
        real="real DICOM files from pydicom / pydicom-data (a CR radiograph, MR slices, an "
        "8-bit image)",
        illustrative="identifying tags added on purpose (names, ids, dates, private tags) to "
        "prove they never leak; labels, boxes; one labelled image has no file and one file is cut short (both quarantined)",
    )


FIXTURE = _fixture()
