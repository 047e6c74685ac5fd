"""A miniature ISIC 2020 training set in the challenge's layout (train/ JPEGs, ground truth
v2, duplicates list).

Illustrative: every picture (no dermoscopy ships in any package: `lesion_pictures`), the
ids, demographics and diagnoses. Real: the layout, the CSV columns, the JPEG encoding.
Patient IP_0000001 has two images of two lesions (they must share a split); ISIC_0000209
is listed as the second copy of ISIC_0000208 (filtered); ISIC_0000210 ships as DICOM (the
DICOM release) with names planted in its header that must never come out, nor any
patient_id; one JPEG is truncated (transform) and one row's image is missing (load).
"""

from __future__ import annotations

import csv
from pathlib import Path

from medshard.sources.derm.lesion_pictures import encode, lesion_picture

HEADER = ["image_name", "patient_id", "lesion_id", "sex", "age_approx",
          "anatom_site_general_challenge", "diagnosis", "benign_malignant", "target"]
ROWS = [
    ("ISIC_0000201", "IP_0000001", "IL_0000001", "male", "45.0", "torso", "nevus", "benign"),
    ("ISIC_0000202", "IP_0000001", "IL_0000002", "male", "45.0", "lower extremity", "melanoma",
     "malignant"),
    ("ISIC_0000203", "IP_0000002", "IL_0000003", "female", "50.0", "head/neck", "unknown",
     "benign"),
    ("ISIC_0000204", "IP_0000003", "IL_0000004", "female", "", "", "seborrheic keratosis",
     "benign"),
    ("ISIC_0000205", "IP_0000004", "IL_0000005", "male", "70.0", "upper extremity",
     "melanoma", "malignant"),
    ("ISIC_0000206", "IP_0000005", "IL_0000006", "female", "35.0", "torso", "lentigo NOS",
     "benign"),
    ("ISIC_0000207", "IP_0000012", "IL_0000007", "male", "60.0", "torso", "nevus", "benign"),
    ("ISIC_0000208", "IP_0000007", "IL_0000008", "female", "40.0", "palms/soles", "unknown",
     "benign"),
    ("ISIC_0000209", "IP_0000008", "IL_0000009", "female", "40.0", "palms/soles", "unknown",
     "benign"),
    ("ISIC_0000210", "IP_0000009", "IL_0000010", "male", "55.0", "oral/genital", "solar lentigo",
     "benign"),
]
TRUNCATED = ("ISIC_0000211", "IP_0000010", "IL_0000011", "male", "30.0", "torso", "nevus",
             "benign")
MISSING = ("ISIC_0000212", "IP_0000011", "IL_0000012", "female", "65.0", "torso", "melanoma",
           "malignant")
DUPLICATE_PAIRS = [("ISIC_0000208", "ISIC_0000209")]
DICOM_IMAGE = "ISIC_0000210"  # shipped as DICOM (the DICOM release), with identities planted
IDENTITY = {"PatientName": "Quillfeather^Ottoline", "InstitutionName": "Brackenridge Skin Clinic",
            "ReferringPhysicianName": "Ashgrove^Peregrine"}


def write_dicom(path: Path, picture) -> None:
    """An RGB VL Photographic Image (the IOD dermoscopy uses) holding `picture`, with the
    planted identities and the CSV's patient id in its header."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[path.name])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "XC"
    for keyword, value in IDENTITY.items():
        setattr(ds, keyword, value)
    ds.PatientID = "IP_0000009"
    ds.Rows, ds.Columns = picture.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = picture.tobytes()
    ds.save_as(path, enforce_file_format=True)


def write_fixture(root: Path) -> Path:
    (root / "train").mkdir(parents=True, exist_ok=True)
    for n, row in enumerate([*ROWS, TRUNCATED]):
        picture = lesion_picture(100 + min(n, 7))  # 208 and 209: one picture
        if row[0] == DICOM_IMAGE:
            write_dicom(root / "train" / f"{row[0]}.dcm", picture)
            continue
        data = encode(picture, "JPEG")
        if row is TRUNCATED:
            data = data[: len(data) // 3]
        (root / "train" / f"{row[0]}.jpg").write_bytes(data)
    with open(root / "ISIC_2020_Training_GroundTruth_v2.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for row in [*ROWS, TRUNCATED, MISSING]:
            w.writerow([*row, "1" if row[7] == "malignant" else "0"])
    with open(root / "ISIC_2020_Training_Duplicates.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_name_1", "image_name_2"])
        w.writerows(DUPLICATE_PAIRS)
    return root


def _append(root: Path, rows: list[list[str]]) -> list[int]:
    from medshard.testing.adversarial import csv_line_count

    path = root / "ISIC_2020_Training_GroundTruth_v2.csv"
    first = csv_line_count(path) + 1
    with open(path, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return list(range(first, first + len(rows)))


def outside_path(root: Path, outside: Path):
    """An image_name with `..` that leads to a JPEG outside the root."""
    from medshard.testing.adversarial import Expect, plant_outside

    plant_outside(outside, "ISIC_0077777.jpg", (root / "train" / "ISIC_0000201.jpg").read_bytes())
    lines = _append(root, [[f"../{outside.name}/ISIC_0077777", "IP_0077777", "", "male", "50.0",
                            "torso", "nevus", "benign", "0"]])
    return Expect({f"ISIC_2020_Training_GroundTruth_v2.csv:{lines[0]}": "list"})


def malformed_rows(root: Path, outside: Path):
    """A verdict outside benign/malignant, a target that contradicts it, a non-numeric age."""
    from medshard.testing.adversarial import Expect

    csv_rel = "ISIC_2020_Training_GroundTruth_v2.csv"
    lines = _append(root, [
        ["ISIC_0077001", "IP_0077001", "", "male", "50.0", "torso", "nevus", "indeterminate", "0"],
        ["ISIC_0077002", "IP_0077002", "", "male", "50.0", "torso", "melanoma", "malignant", "0"],
        ["ISIC_0077003", "IP_0077003", "", "male", "old", "torso", "nevus", "benign", "0"],
    ])
    return Expect({f"{csv_rel}:{n}": "list" for n in lines},
                  {f"{csv_rel}:{lines[1]}": "contradicts"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 7, "val": 1, "test": 1},
        quarantined={TRUNCATED[0]: "transform", MISSING[0]: "load"},
        filtered={"listed as a duplicate (image_name_2) in ISIC_2020_Training_Duplicates.csv": 1},
        phi_markers=(*IDENTITY.values(), *sorted({row[1] for row in [*ROWS, TRUNCATED, MISSING]})),
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        real="the challenge's layout, CSV columns (ground truth v2, duplicates list), JPEG "
        "encoding and a DICOM VL Photographic Image (pydicom)",
        illustrative="every picture (drawn: no dermoscopy ships in any package), ids, "
        "demographics, diagnoses, the DICOM header's identities; one duplicate pair "
        "(filtered), one JPEG truncated and one row's image missing (quarantined)",
    )


FIXTURE = _fixture()
