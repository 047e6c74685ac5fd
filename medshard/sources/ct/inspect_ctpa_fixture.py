"""A miniature INSPECT (Stanford AIMI layout, 2025-06-11 tables) from real CT slices.

Real: the voxels, HU slices of pydicom-data's `693_UNCR.dcm`, pydicom's `CT_small.dcm`
and `eCT_Supplemental.dcm`'s two frames, block-averaged to 32 x 32 (`ct_slices.py`),
written as `CTPA/<impression_id>.nii.gz` by nibabel. Illustrative: slice positions and
grid (stored LPS like the DICOM series they come from), every label, split and mapping
row, the impressions text and the OMOP EHR tables (present so that the adapter is shown
to ignore them). Broken on purpose: a study without a CT, a CT whose gzip is cut short,
a study whose PE flag is blank (filtered). A patient name is planted in the NIfTI
header (`descrip`, `aux_file`), in the impression text and in an OMOP table.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

PHI_NAME = "Quillfeather^Rosamund"
STAMP = "20250611"
# impression_id -> (person_id, split, pe_positive, pe_acute, pe_subsegmentalonly, 12_month_PH)
STUDIES = {
    "PE453aa01": ("P001", "train", "0", "0", "0", "False"),
    "PE453aa02": ("P001", "train", "1", "1", "1", "False"),
    "PE453aa03": ("P002", "train", "1", "1", "0", "True"),
    "PE453aa04": ("P003", "valid", "1", "0", "1", "Censored"),
    "PE453aa05": ("P004", "test", "1", "0", "0", "True"),
    "PE453aa06": ("P005", "test", "0", "0", "0", "False"),
    "PE453aa07": ("P006", "train", "", "", "", "False"),  # blank PE flag: filtered
    "PE453aa08": ("P007", "train", "1", "1", "0", "False"),  # no CT file
    "PE453aa09": ("P008", "test", "0", "0", "0", "False"),  # CT cut short
}
MISSING = "PE453aa08"
TRUNCATED = "PE453aa09"
BLANK = "PE453aa07"
LABEL_HEADER = ["impression_id", "pe_positive_nlp", "pe_acute", "pe_subsegmentalonly",
                "1_month_mortality", "6_month_mortality", "12_month_mortality",
                "1_month_readmission", "6_month_readmission", "12_month_readmission",
                "12_month_PH", "tte_mortality", "is_censored_mortality"]


def _tsv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(header)
        w.writerows(rows)


def write_fixture(root: Path) -> Path:
    import nibabel as nib

    from medshard.sources.ct.ct_slices import real_ct_volume

    (root / "CTPA").mkdir(parents=True, exist_ok=True)
    for n, impression in enumerate(STUDIES):
        if impression == MISSING:
            continue
        volume = real_ct_volume(size=32, depth=6, shift=n)
        affine = np.diag([-0.66 * 4, -0.66 * 4, 1.25, 1.0])  # LPS storage, as from DICOM
        affine[:3, 3] = [40.0, 30.0, -150.0 + 10 * n]
        img = nib.Nifti1Image(volume, affine)
        img.header["descrip"] = f"{PHI_NAME} CTPA".encode()
        img.header["aux_file"] = PHI_NAME.encode()
        img.to_filename(root / "CTPA" / f"{impression}.nii.gz")
    gz = root / "CTPA" / f"{TRUNCATED}.nii.gz"
    gz.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    rows = [[imp, pos, acute, sub, "False", "False", "Censored", "False", "True", "True", ph,
             "412", "True"] for imp, (_, _, pos, acute, sub, ph) in STUDIES.items()]
    _tsv(root / f"labels_{STAMP}.tsv", LABEL_HEADER, rows)
    _tsv(root / f"splits_{STAMP}.tsv", ["impression_id", "split"],
         [[imp, v[1]] for imp, v in STUDIES.items()])
    _tsv(root / f"study_mapping_{STAMP}.tsv", ["impression_id", "image_id", "person_id"],
         [[imp, f"img-{i}", v[0]] for i, (imp, v) in enumerate(STUDIES.items())])
    _tsv(root / f"impressions_{STAMP}.tsv", ["impression_id", "impressions"],
         [[imp, f"1. No acute pulmonary embolism. Dictated for {PHI_NAME}."] for imp in STUDIES])
    ehr = root / "EHR_CSV"
    ehr.mkdir(exist_ok=True)
    with open(ehr / "person.csv", "w", newline="") as f:
        csv.writer(f).writerows([["person_id", "gender_concept_id", "year_of_birth", "name"],
                                 ["P001", "8507", "1950", PHI_NAME]])
    with open(ehr / "condition_occurrence.csv", "w", newline="") as f:
        csv.writer(f).writerows([["condition_occurrence_id", "person_id", "condition_concept_id"],
                                 ["1", "P001", "440417"]])
    return root


def malformed_row(root: Path, outside: Path):
    """A label of 2, an impression_id with a path in it, a row without impression_id."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / f"labels_{STAMP}.tsv"
    first = csv_line_count(path) + 1
    width = len(LABEL_HEADER)
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["PE453bb01", "2", "0", "0", *[""] * (width - 4)])
        w.writerow([f"../../{outside.name}/x", "1", "0", "0", *[""] * (width - 4)])
        w.writerow([])  # csv skips blank lines: no record, no bad row
        w.writerow(["", "1"])
    return Expect({f"labels_{STAMP}.tsv:{first}": "list", f"labels_{STAMP}.tsv:{first + 1}":
                   "list", f"labels_{STAMP}.tsv:{first + 3}": "list"},
                  {f"labels_{STAMP}.tsv:{first}": "'2'"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 3, "val": 1, "test": 2},
        quarantined={MISSING: "load", TRUNCATED: "load"},
        filtered={"pe_positive is blank": 1},
        phi_markers=(PHI_NAME,),
        adversarial={"malformed_row": malformed_row},
        real="CT slices (HU) of pydicom-data's 693_UNCR, pydicom's CT_small and "
        "eCT_Supplemental, block-averaged to 32 x 32, written as NIfTI by nibabel",
        illustrative="slice positions and grid, labels, splits, mapping, impressions text and "
        "OMOP EHR tables; broken: a study without CT, a CT cut short, a blank PE flag",
    )


FIXTURE = _fixture()
