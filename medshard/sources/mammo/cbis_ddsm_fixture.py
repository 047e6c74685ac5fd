"""A miniature CBIS-DDSM as the NBIA Data Retriever writes it, with the four case CSVs.

Pixels: real radiograph windows re-tagged as MG (`medshard.sources.mammo.fixture_images`);
ROI masks are illustrative ellipses on the full image's grid (0/255, 8-bit, as CBIS-DDSM
ships them) and crops are the full image cut to the mask's bounding box. Folder names
follow the Retriever (`<date>-DDSM-NA-<last 5 digits of the Study UID>`,
`1.000000-<series description>-<last 5 of the Series UID>`, files `1-1.dcm`, `1-2.dcm`)
and `metadata.csv` maps the CSVs' UID paths to them. Cases:
  - mass train P_00001 LEFT, abnormality 1, BI-RADS 4, CC and MLO: the CC's crop and mask
    are two series; the MLO's ROI series holds both, the crop first (1-1) and the mask
    second (1-2), as often in the release;
  - mass train P_00004 RIGHT, BI-RADS 0 (filtered: CLIMB's rule);
  - calc train P_00013 RIGHT, BI-RADS 3, CC and MLO, with a trailing newline in one ROI
    path cell (as in the release);
  - calc train P_00007 LEFT, CC row only (filtered: one view);
  - mass test P_00016 LEFT, BI-RADS 5;
  - calc test P_00038 LEFT: its MLO mask is not the size of its image (quarantined);
  - mass test P_00041 RIGHT: its MLO full image was not downloaded (quarantined).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from medshard.sources.mammo.cbis_ddsm import BIRADS_ZERO, ONE_VIEW
from medshard.sources.mammo.fixture_images import (
    PHI_MARKERS,
    cropped_dataset,
    ellipse_mask,
    mask_dataset,
    mg_view,
)

MASS_HEADER = ["patient_id", "breast_density", "left or right breast", "image view",
               "abnormality id", "abnormality type", "mass shape", "mass margins", "assessment",
               "pathology", "subtlety", "image file path", "cropped image file path",
               "ROI mask file path"]
CALC_HEADER = ["patient_id", "breast density", "left or right breast", "image view",
               "abnormality id", "abnormality type", "calc type", "calc distribution",
               "assessment", "pathology", "subtlety", "image file path",
               "cropped image file path", "ROI mask file path"]
METADATA_HEADER = ["Series UID", "Collection", "3rd Party Analysis", "Data Description URI",
                   "Subject ID", "Study UID", "Study Description", "Study Date",
                   "Series Description", "Manufacturer", "Modality", "SOP Class Name",
                   "SOP Class UID", "Number of Images", "File Size", "File Location",
                   "Download Timestamp"]
# DICOM PatientID inside the files (the TCIA release puts the subject folder name there)
DICOM_PATIENT = "DDSMPID55012QX"


def uid(text: str) -> str:
    digits = str(int(hashlib.sha256(f"medshard-demo-cbis:{text}".encode()).hexdigest(), 16))
    return "1.3.6.1.4.1.9590.100.1.2." + digits[:30]


# (kind, split, patient, side, abnormality id, assessment, pathology, descriptors, views,
#  radiograph)
CASES = [
    ("mass", "train", "P_00001", "LEFT", 1, 4, "MALIGNANT", ("IRREGULAR", "SPICULATED"),
     ("CC", "MLO"), "RG1_UNCR.dcm"),
    ("mass", "train", "P_00004", "RIGHT", 1, 0, "BENIGN", ("OVAL", "CIRCUMSCRIBED"),
     ("CC", "MLO"), "RG3_UNCR.dcm"),
    ("calc", "train", "P_00013", "RIGHT", 1, 3, "BENIGN", ("AMORPHOUS", "CLUSTERED"),
     ("CC", "MLO"), "RG3_UNCR.dcm"),
    ("calc", "train", "P_00007", "LEFT", 1, 4, "BENIGN_WITHOUT_CALLBACK",
     ("PLEOMORPHIC", "SEGMENTAL"), ("CC",), "RG1_UNCR.dcm"),
    ("mass", "test", "P_00016", "LEFT", 1, 5, "MALIGNANT", ("LOBULATED", "ILL_DEFINED"),
     ("CC", "MLO"), "RG1_UNCR.dcm"),
    ("calc", "test", "P_00038", "LEFT", 1, 2, "BENIGN", ("PUNCTATE", "REGIONAL"),
     ("CC", "MLO"), "RG3_UNCR.dcm"),
    ("mass", "test", "P_00041", "RIGHT", 1, 4, "BENIGN", ("ROUND", "OBSCURED"),
     ("CC", "MLO"), "RG1_UNCR.dcm"),
]
SWAPPED_ROI = ("P_00001", "MLO")  # crop and mask in one series, crop first
MISALIGNED = ("P_00038", "MLO")
NOT_DOWNLOADED = ("P_00041", "MLO")


def record_id(patient: str, side: str, kind: str, abn: int = 1) -> str:
    return f"{patient}_{side[0]}_{kind}{abn}"


def _prefix(kind: str, split: str) -> str:
    return f"{'Mass' if kind == 'mass' else 'Calc'}-{'Training' if split == 'train' else 'Test'}"


class _Tree:
    """Writes series the Retriever's way and remembers metadata.csv rows."""

    def __init__(self, root: Path) -> None:
        self.root, self.metadata = root, []

    def series(self, subject: str, description: str, datasets: list) -> str:
        """Write `datasets` as 1-1.dcm, 1-2.dcm, ...; returns the CSV-style path of the first."""
        study, series = uid(f"{subject}-study"), uid(f"{subject}-{description}")
        rel = (f"CBIS-DDSM/{subject}/07-20-2016-DDSM-NA-{study[-5:]}/"
               f"1.000000-{description}-{series[-5:]}")
        folder = self.root / rel
        folder.mkdir(parents=True, exist_ok=True)
        for i, ds in enumerate(datasets, 1):
            ds.save_as(folder / f"1-{i}.dcm", enforce_file_format=True)
        self.metadata.append([series, "CBIS-DDSM", "NO", "", subject, study, "", "07-20-2016",
                              description, "", "MG", "", "", len(datasets), "", f"./{rel}", ""])
        return f"{subject}/{study}/{series}"


def write_raw(root: Path) -> None:
    """The miniature CBIS-DDSM under `root` (the source root)."""
    root = Path(root)
    tree = _Tree(root)
    csv_rows: dict[str, list[list[object]]] = {}
    for n, (kind, split, patient, side, abn, assessment, pathology, desc, views,
            name) in enumerate(CASES):
        for k, view in enumerate(views):
            crop_at = (300 + 120 * n, 400 + 60 * k, 96 + 4 * k, 80 + 2 * n)
            image = mg_view(name, crop_at, view=view, laterality=side[0],
                            patient_id=DICOM_PATIENT)
            shape = (int(image.Rows), int(image.Columns))
            mask = ellipse_mask(shape, (shape[0] // 2, shape[1] // 2 - 5), (14 + n, 9 + k))
            if (patient, view) == MISALIGNED:
                mask = mask[:-8]  # a mask on another grid
            rows, cols = np.nonzero(mask)
            box = (int(rows.min()), int(cols.min()), int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1)
            crop, roi = cropped_dataset(image, box), mask_dataset(image, mask)
            subject = f"{_prefix(kind, split)}_{patient}_{side}_{view}"
            full_path = tree.series(subject, "full mammogram images", [image])
            if (patient, view) == NOT_DOWNLOADED:
                full_folder = root / "CBIS-DDSM" / subject
                for f in sorted(full_folder.rglob("*.dcm")):
                    f.unlink()
            roi_subject = f"{subject}_{abn}"
            if (patient, view) == SWAPPED_ROI:
                crop_path = mask_path = tree.series(roi_subject, "ROI mask images", [crop, roi])
            else:
                crop_path = tree.series(roi_subject, "cropped images", [crop])
                mask_path = tree.series(roi_subject, "ROI mask images", [roi])
            mask_cell = f"{mask_path}/000001.dcm" + ("\n" if patient == "P_00013" else "")
            csv_rows.setdefault(f"{kind}_case_description_{split}_set.csv", []).append(
                [patient, 2 + n % 3, side, view, abn, "mass" if kind == "mass" else
                 "calcification", *desc, assessment, pathology, 1 + n % 5,
                 f"{full_path}/000000.dcm", f"{crop_path}/000000.dcm", mask_cell])
    for file, rows in sorted(csv_rows.items()):
        header = MASS_HEADER if file.startswith("mass") else CALC_HEADER
        with open(root / file, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(METADATA_HEADER)
        w.writerows(tree.metadata)


def write_fixture(root: Path) -> None:
    write_raw(root)


def malformed_row(root: Path, outside: Path):
    """A mass row whose assessment is not a number: a bad row; the listing goes on."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / "mass_case_description_train_set.csv"
    line = csv_line_count(path) + 1
    with open(path, "a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow(
            ["P_00099", 3, "LEFT", "CC", 1, "mass", "OVAL", "CIRCUMSCRIBED", "four", "BENIGN", 3,
             "a/1.2/1.3/000000.dcm", "a/1.2/1.4/000000.dcm", "a/1.2/1.5/000000.dcm"])
    rel = f"mass_case_description_train_set.csv:{line}"
    return Expect({rel: "list"}, {rel: "four"})


def outside_path(root: Path, outside: Path):
    """A row whose image path climbs out of the root: refused as a bad row at listing."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / "calc_case_description_test_set.csv"
    line = csv_line_count(path) + 1
    with open(path, "a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow(
            ["P_00098", 3, "LEFT", "CC", 1, "calcification", "PUNCTATE", "REGIONAL", 3, "BENIGN",
             3, "../1.2.3/1.2.4/000000.dcm", "a/1.2/1.4/000000.dcm",
             "a/1.2/1.5/000000.dcm"])
    rel = f"calc_case_description_test_set.csv:{line}"
    return Expect({rel: "list"}, {rel: "not a CBIS-DDSM subject"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 1, "val": 1, "test": 1},
        quarantined={record_id("P_00038", "LEFT", "calc"): "load",
                     record_id("P_00041", "RIGHT", "mass"): "load"},
        filtered={BIRADS_ZERO: 1, ONE_VIEW: 1},
        adversarial={"malformed_row": malformed_row, "outside_path": outside_path},
        phi_markers=(*PHI_MARKERS, DICOM_PATIENT),
        real="real computed-radiograph pixels from pydicom-data (RG1_UNCR, RG3_UNCR), cropped",
        illustrative="their use as mammograms (re-tagged MG), the ROI masks (ellipses on the "
        "image grid), cases, assessments and pathology; identifying tags planted to prove they "
        "never leak; one mask off its image's grid, one full image not downloaded",
    )


FIXTURE = _fixture()
