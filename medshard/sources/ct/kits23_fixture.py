"""A miniature KiTS23 in its real layout, from the real NIfTI images shipped with nibabel.

Volumes are nibabel's own test images (`example4d.nii.gz`: an int16 EPI series, LAS;
`anatomical.nii`: a big-endian int16 T1, LAS); a 3-D image kept in its own layout
is shipped as nibabel's file itself (gzipped), others are written with nibabel as
`imaging.nii.gz`. Two cases are stored in deliberately non-RAS layouts (LPS, as
DICOM-derived files are, and slices-first I-P-L, as KiTS's own files are): the
same voxels, permuted and flipped, with the affine that keeps every voxel at its
world position. Masks are derived from the intensities (kidney = bright voxels of
a central box, tumor = brightest of those, cyst = a small ball) and written as
uint8 `segmentation.nii.gz` with the image's affine. kits23.json carries the real
file's fields, including ones the source must not let out.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

# case id -> (nibabel image, volume index for 4-D, stored axis codes or None, malignant)
CASES: dict[str, tuple[str, int, tuple[str, str, str] | None, bool | None]] = {
    "case_00000": ("example4d.nii.gz", 0, None, True),
    "case_00001": ("anatomical.nii", 0, None, False),
    "case_00002": ("example4d.nii.gz", 0, ("L", "P", "S"), True),
    "case_00003": ("example4d.nii.gz", 1, ("I", "P", "L"), False),
    "case_00004": ("standard.nii.gz", 0, None, None),
}


def nibabel_image_path(name: str) -> Path:
    """Path of one of the NIfTI test images that nibabel ships."""
    import nibabel

    return Path(nibabel.__file__).parent / "tests" / "data" / name


def derived_mask(volume: np.ndarray) -> np.ndarray:
    """0 background, 1 kidney, 2 tumor, 3 cyst: thresholds of a central box plus a small ball."""
    mask = np.zeros(volume.shape, dtype=np.uint8)
    box = tuple(slice(s // 4, s - s // 4) for s in volume.shape)
    core = volume[box]
    if core.size == 0:
        return mask
    kidney = core > np.percentile(core, 70)
    tumor = core > np.percentile(core, 95)
    sub = mask[box]
    sub[kidney] = 1
    sub[tumor] = 2
    radius = max(1, min(volume.shape) // 8)
    lo = [max(0, s // 3 - radius) for s in volume.shape]
    ball_box = tuple(slice(a, s // 3 + radius + 1) for a, s in zip(lo, volume.shape, strict=True))
    # only the ball's bounding box is gridded: a 600-slice volume must not be
    grid = np.ogrid[ball_box]
    ball = sum((g - s // 3) ** 2 for g, s in zip(grid, volume.shape, strict=True)) <= radius**2
    mask[ball_box][ball] = 3
    return mask


def reorient(arr: np.ndarray, affine: np.ndarray, codes: tuple[str, str, str]):
    """`arr` permuted/flipped to axis codes `codes`, with the affine that keeps world positions."""
    from nibabel.orientations import (
        apply_orientation,
        axcodes2ornt,
        inv_ornt_aff,
        io_orientation,
        ornt_transform,
    )

    transform = ornt_transform(io_orientation(affine), axcodes2ornt(codes))
    return apply_orientation(arr, transform), affine @ inv_ornt_aff(transform, arr.shape)


def clinical(case_id: str, malignant: bool | None, age: int) -> dict[str, Any]:
    """A kits23.json entry with the real file's fields (identifying-looking ones included)."""
    return {
        "case_id": case_id,
        "gender": "female" if age % 2 else "male",
        "vital_status": "censored",
        "vital_days_after_surgery": 1958,
        "bmi": 29.47,
        "comorbidities": {"copd": False, "chronic_kidney_disease": True},
        "age_at_nephrectomy": age,
        "hospitalization": 2,
        "surgery_type": "robotic",
        "surgical_procedure": "partial_nephrectomy",
        "estimated_blood_loss": 400,
        "smoking_history": "never_smoked",
        "radiographic_size": 2.4,
        "cytoreductive": False,
        "pathologic_size": 2.1,
        "malignant": malignant,
        "pathology_t_stage": "1a",
        "pathology_n_stage": "0",
        "pathology_m_stage": "0",
        "tumor_histologic_subtype": "clear_cell_rcc" if malignant else "oncocytoma",
        "tumor_necrosis": False,
        "tumor_isup_grade": "3" if malignant else "na",
        "sarcomatoid_features": False,
        "rhabdoid_features": False,
        "last_preop_egfr": {"days_before_nephrectomy": 54, "value": 77.0},
        "aua_risk_score": "intermediate_risk",
    }


def write_case(dataset: Path, case_id: str, volume: np.ndarray, affine: np.ndarray,
               mask: np.ndarray) -> None:
    """Write `case_id/imaging.nii.gz` and `segmentation.nii.gz` with nibabel."""
    import nibabel as nib

    case = dataset / case_id
    case.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(volume, affine).to_filename(case / "imaging.nii.gz")
    nib.Nifti1Image(mask, affine).to_filename(case / "segmentation.nii.gz")


def write_raw(root: Path) -> Path:
    """Write `root/dataset/` (kits23.json and five cases); returns the dataset folder."""
    import nibabel as nib

    dataset = root / "dataset"
    dataset.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (case_id, (name, index, codes, malignant)) in enumerate(CASES.items()):
        img = nib.load(nibabel_image_path(name))
        data = np.asanyarray(img.dataobj)
        if data.ndim == 4:
            data = data[..., index]
        affine = img.affine
        mask = derived_mask(data)
        if codes is not None:
            data, new_affine = reorient(data, affine, codes)
            mask, _ = reorient(mask, affine, codes)
            affine = new_affine
        write_case(dataset, case_id, np.ascontiguousarray(data), affine,
                   np.ascontiguousarray(mask))
        if codes is None and img.ndim == 3:
            # a 3-D image stored as it is: ship nibabel's own file bytes (big-endian and all)
            raw = nibabel_image_path(name).read_bytes()
            if not name.endswith(".gz"):
                raw = gzip.compress(raw, mtime=0)
            (dataset / case_id / "imaging.nii.gz").write_bytes(raw)
        entries.append(clinical(case_id, malignant, age=[49, 92, 63, 71, 55][i]))
    (dataset / "kits23.json").write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return dataset


def write_large_case(dataset: Path, case_id: str = "case_00600", slices: int = 600,
                     size: int = 512) -> None:
    """A KiTS-sized case (slices x size x size int16, slices first like KiTS) for memory runs.

    The voxels are nibabel's real `example4d.nii.gz` volume scaled up by nearest-neighbour
    indexing; the file is stored I-P-L so that loading it exercises the RAS reorientation.
    """
    import nibabel as nib

    img = nib.load(nibabel_image_path("example4d.nii.gz"))
    small = np.asanyarray(img.dataobj)[..., 0]
    idx = [np.arange(n) * s // n for n, s in zip((size, size, slices), small.shape, strict=True)]
    volume = small[np.ix_(*idx)]
    zoom = np.diag([s / n for n, s in zip((size, size, slices), small.shape, strict=True)] + [1.0])
    affine = img.affine @ zoom
    mask = derived_mask(volume)
    volume, new_affine = reorient(volume, affine, ("I", "P", "L"))
    mask, _ = reorient(mask, affine, ("I", "P", "L"))
    write_case(dataset, case_id, np.ascontiguousarray(volume), new_affine,
               np.ascontiguousarray(mask))
    path = dataset / "kits23.json"
    entries = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    entries.append(clinical(case_id, True, age=60))
    path.write_text(json.dumps(entries, indent=2), encoding="utf-8")


MISSING_CASE = "case_00099"  # in kits23.json, no imaging file
TRUNCATED_CASE = "case_00098"  # in kits23.json, its imaging download cut short


def write_fixture(root: Path) -> Path:
    """The miniature plus two broken records: a case listed in kits23.json without its CT,
    and one whose CT download was cut short (a copy of the first case, halved)."""
    import shutil

    dataset = write_raw(root)
    entries = json.loads((dataset / "kits23.json").read_text(encoding="utf-8"))
    first = entries[0]["case_id"]
    shutil.copytree(dataset / first, dataset / TRUNCATED_CASE)
    gz = (dataset / TRUNCATED_CASE / "imaging.nii.gz").read_bytes()
    (dataset / TRUNCATED_CASE / "imaging.nii.gz").write_bytes(gz[: len(gz) // 2])
    entries.append(dict(entries[0], case_id=TRUNCATED_CASE))
    entries.append(clinical(MISSING_CASE, True, age=60))
    (dataset / "kits23.json").write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return root


def malformed_entry(root: Path, outside: Path):
    """A kits23.json case whose case_id climbs out of the dataset folder."""
    import json

    from medshard.testing.adversarial import Expect

    path = root / "dataset" / "kits23.json"
    cases = json.loads(path.read_text())
    cases.append({**cases[0], "case_id": "../../outside-kits23"})
    path.write_text(json.dumps(cases))
    return Expect({f"dataset/kits23.json:{len(cases)}": "list"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 3, "test": 1},
        quarantined={MISSING_CASE: "load", TRUNCATED_CASE: "load"},
        adversarial={"malformed_row": malformed_entry},
        filtered={"malignant is null in kits23.json": 1},
        real="nibabel's bundled NIfTI images (incl. a big-endian and a flipped orientation)",
        illustrative="segmentations derived from the image, `kits23.json`; one listed case has "
        "no CT file, one a CT cut short (quarantined)",
    )


FIXTURE = _fixture()
