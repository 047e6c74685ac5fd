"""A miniature CT-ICH (PhysioNet `ct-ich` 1.3.1 layout) from real CT slices.

Real: the voxels, HU slices of pydicom-data's `693_UNCR.dcm`, pydicom's `CT_small.dcm`
and `eCT_Supplemental.dcm`'s two frames, block-averaged to 32 x 32 (`ct_slices.py`),
written as NIfTI-1 by nibabel. Illustrative: slice positions and grid (one patient stored
LPS like the DICOM it came from, the others LAS), the masks (bright voxels of a box) and
the per-slice labels. Broken on purpose: a patient listed in the CSV without a CT file
(and one of subjects 59-65, which the release ships without CT: filtered),
one whose `.nii` is cut short; the `malformed_row` mutation adds malformed CSV rows.
A patient name is planted in the NIfTI header's `descrip` and `aux_file`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from medshard.sources.ct.hemorrhage import DIAGNOSIS_CSV, LABEL_COLUMNS

PHI_NAME = "Quillfeather^Rosamund"
DEPTH = 4
# patient -> (axis signs of the stored grid, slice shift, per-slice (types, fracture))
PATIENTS = {
    49: ((-1, 1, 1), 0, [(("Subdural",), 1), ((), 0), (("Epidural", "Subdural"), 0), ((), 0)]),
    50: ((-1, -1, 1), 1, [((), 0), ((), 0), (("Intraparenchymal",), 0), ((), 0)]),
    51: ((-1, 1, 1), 2, [((), 0), (("Subarachnoid",), 0), ((), 0), ((), 0)]),
    52: ((-1, 1, 1), 3, [((), 0), ((), 1), ((), 0), ((), 0)]),
    53: ((-1, 1, 1), 0, [((), 0), ((), 0), ((), 0), ((), 0)]),
}
MISSING_PATIENT = 70
UNRELEASED_PATIENT = 60  # ct-ich ships no CT for 59-65: filtered
TRUNCATED_PATIENT = 53
SPACING = (7.2, 7.2, 5.0)


def write_patient(release: Path, patient: int) -> None:
    import nibabel as nib

    from medshard.sources.ct.ct_slices import real_ct_volume

    signs, shift, _ = PATIENTS[patient]
    volume = real_ct_volume(size=32, depth=DEPTH, shift=shift)
    affine = np.diag([*(s * d for s, d in zip(signs, SPACING, strict=True)), 1.0])
    affine[:3, 3] = [115.0, -110.0 if signs[1] > 0 else 110.0, -20.0]
    img = nib.Nifti1Image(volume, affine)
    img.header["descrip"] = f"{PHI_NAME} head CT".encode()
    img.header["aux_file"] = PHI_NAME.encode()
    for sub in ("ct_scans", "masks"):
        (release / sub).mkdir(parents=True, exist_ok=True)
    img.to_filename(release / "ct_scans" / f"{patient:03d}.nii")
    box = np.zeros(volume.shape, dtype=np.uint8)
    box[8:24, 8:24, :] = (volume[8:24, 8:24, :] > 40).astype(np.uint8)
    nib.Nifti1Image(box, affine).to_filename(release / "masks" / f"{patient:03d}.nii")


def label_rows() -> list[list[int]]:
    rows = []
    for patient, (_, _, slices) in PATIENTS.items():
        for k, (types, fracture) in enumerate(slices, start=1):
            flags = {c: int(c in types) for c in LABEL_COLUMNS[:5]}
            flags["No_Hemorrhage"] = int(not types)
            flags["Fracture_Yes_No"] = fracture
            rows.append([patient, k, *(flags[c] for c in LABEL_COLUMNS)])
    rows += [[MISSING_PATIENT, 1, 0, 0, 0, 0, 0, 1, 0], [UNRELEASED_PATIENT, 1, 0, 0, 0, 0, 0, 1, 0]]
    return rows


def write_fixture(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for patient in PATIENTS:
        write_patient(root, patient)
    nii = root / "ct_scans" / f"{TRUNCATED_PATIENT:03d}.nii"
    nii.write_bytes(nii.read_bytes()[: 352 + 32 * 32 * 2])  # header + one slice of four
    with open(root / DIAGNOSIS_CSV, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["PatientNumber", "SliceNumber", *LABEL_COLUMNS])
        w.writerows(label_rows())
    with open(root / "patient_demographics.csv", "w", newline="") as f:
        csv.writer(f).writerows([["Patient Number", "Age (years)", "Gender", "Note"],
                                 [49, 35, "Male", PHI_NAME]])
    return root


def malformed_row(root: Path, outside: Path):
    """A non-numeric SliceNumber, a label of 2, a row too short."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / DIAGNOSIS_CSV
    first = csv_line_count(path) + 1
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        w.writerow([49, "five", 0, 0, 0, 0, 0, 1, 0])
        w.writerow([49, 6, 0, 0, 2, 0, 0, 0, 0])
        w.writerow([49, 7, 0])
    return Expect({f"{DIAGNOSIS_CSV}:{first + i}": "list" for i in range(3)},
                  {f"{DIAGNOSIS_CSV}:{first}": "five"})


def _fixture():
    from medshard.testing.fixture import Fixture

    quarantined = {f"{MISSING_PATIENT:03d}_s001": "load"}
    quarantined.update({f"{TRUNCATED_PATIENT:03d}_s{k:03d}": "load" for k in range(2, DEPTH + 1)})
    return Fixture(
        write=write_fixture,
        samples={"train": 13, "test": 4},
        quarantined=quarantined,
        filtered={"no CT released for subjects 059-065 (ct-ich README)": 1},
        phi_markers=(PHI_NAME,),
        adversarial={"malformed_row": malformed_row},
        real="CT slices (HU) of pydicom-data's 693_UNCR, pydicom's CT_small and "
        "eCT_Supplemental, block-averaged to 32 x 32, written as NIfTI by nibabel",
        illustrative="slice positions and grid, masks (thresholded box), per-slice labels; "
        "broken: a listed patient without a CT, a CT cut short after its first slice",
    )


FIXTURE = _fixture()
