"""CT-ICH: 82 head CTs of traumatic brain injury with per-slice hemorrhage labels (PhysioNet).

Raw layout (PhysioNet `ct-ich` 1.3.1; sources below):
    hemorrhage_diagnosis_raw_ct.csv   one row per slice: PatientNumber, SliceNumber,
                                      Intraventricular, Intraparenchymal, Subarachnoid,
                                      Epidural, Subdural, No_Hemorrhage, Fracture_Yes_No (0/1)
    ct_scans/NNN.nii                  the CT of patient NNN (3 digits), HU, slices along
                                      the NIfTI's third axis
    masks/NNN.nii                     the radiologists' hemorrhage delineation, same grid
    patient_demographics.csv          age, gender, diagnosis per patient (not read)
Sources: the PhysioNet project page and the release's own README (files, 82 patients, 75
with CT: subjects 59-65 have rows but no CT; faces blurred; the windows below); the
columns as public loaders read them; CLIMB's `src/datasets/ct/hemorrhage.py` (Kaggle mirror) for
its label rule. The data root may be the folder holding these or the folder PhysioNet's zip unpacks to
(`computed-tomography-images-for-intracranial-hemorrhage-detection-and-segmentation-1.3.1/`).
This is the owner's layout, read first. The Kaggle mirror CLIMB uses (vbookshelf's
"Computed Tomography (CT) images"; 82 patients):
    hemorrhage_diagnosis.csv            the same per-slice columns
    Patients_CT/NNN/brain/<k>.jpg       slice k in the brain window, 8-bit JPEG
    Patients_CT/NNN/bone/<k>.jpg        slice k in the bone window
is read when the owner's CSV is absent: its samples carry the two JPEGs as shipped
(`brain.jpg`, `bone.jpg`; window centre/width in their descriptors) and no HU, since the
mirror has none. Every sample says which layout it came from (`meta.layout`:
"physionet-nifti" or "kaggle-jpg").

Samples: one per slice (row of the CSV). SliceNumber k (1-based) is index k - 1 along the
NIfTI's third axis (the release's `split_raw_data.py` walks slices as `ct_scan[:, :, s]`). The payload is that slice as a
one-slice volume (`volume.npy`, HU as stored, int16 in the release) in RAS with its own
affine (nibabel's `slicer` keeps the slice's position; reoriented by permutation/flip
only) and, where `masks/NNN.nii` exists, the same slice of the mask (`segmentation.npy`,
uint8). Only the slice is read from an uncompressed `.nii` (nibabel's array proxy).

Labels: CLIMB's 2 classes from No_Hemorrhage: 1 -> "No Hemorrhage", 0 -> "Has Hemorrhage".
The seven 0/1 columns are kept verbatim in `source_labels`; a row whose No_Hemorrhage
contradicts the five type columns keeps CLIMB's class and is flagged
`meta.label_conflict = true`. Window settings in meta (`windows`): the brain (level 40,
width 120 HU) and bone (level 700, width 3200 HU) windows the radiologists annotated in
(the release's README). The volume itself is never windowed. The CSV rows of subjects
59-65, whose CTs the release does not include, are filtered with that reason; any other
missing CT is quarantined.

Split: no official split; keyed hash of the patient (CLIMB: 80/20 of patients,
sklearn seed 42), so all slices of a patient share a split.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from medshard.formats.nifti import open_volume, source_orientation, to_ras, volume_payload
from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.schemas.sample import Filtered
from medshard.sources.base import MissingRawData, Source

DIAGNOSIS_CSV = "hemorrhage_diagnosis_raw_ct.csv"
MIRROR_CSV = "hemorrhage_diagnosis.csv"
PHYSIONET, KAGGLE = "physionet-nifti", "kaggle-jpg"
RELEASE_DIR = "computed-tomography-images-for-intracranial-hemorrhage-detection-and-segmentation-1.3.1"
TYPE_COLUMNS = ("Intraventricular", "Intraparenchymal", "Subarachnoid", "Epidural", "Subdural")
LABEL_COLUMNS = (*TYPE_COLUMNS, "No_Hemorrhage", "Fracture_Yes_No")
WINDOWS = {"brain": {"level": 40.0, "width": 120.0}, "bone": {"level": 700.0, "width": 3200.0}}
NO, HAS = "No Hemorrhage", "Has Hemorrhage"
UNRELEASED = {f"{n:03d}" for n in range(59, 66)}  # in the CSV, no CT (the release's README)


def _flag(row: dict[str, str], column: str) -> int:
    value = int(float(row[column]))
    if value not in (0, 1):
        raise ValueError(f"{column} is {row[column]!r}, expected 0 or 1")
    return value


class Hemorrhage(Source):
    fixture = "medshard.sources.ct.hemorrhage_fixture:FIXTURE"
    payload_members = ("bone.jpg", "brain.jpg", "segmentation.npy", "volume.npy")
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="physionet", project="ct-ich", version="1.3.1")
    info: ClassVar[SourceInfo] = SourceInfo(
        name="hemorrhage",
        title="Computed Tomography Images for Intracranial Hemorrhage Detection and Segmentation",
        version="1.3.1",
        modality="ct",
        tasks=["classification", "segmentation"],
        license=License(
            name="Creative Commons Attribution 4.0", spdx="CC-BY-4.0",
            url="https://creativecommons.org/licenses/by/4.0/", terms_version="4.0",
        ),
        access="open",
        homepage="https://physionet.org/content/ct-ich/1.3.1/",
        citation=(
            "Hssayeni MD, Croock MS, Salman AD, Al-khafaji HF, Yahya ZA, Ghoraani B. "
            "Intracranial Hemorrhage Segmentation Using A Deep Convolutional Model. "
            "Data 5(1):14 (2020). PhysioNet, doi:10.13026/4nae-zg36."
        ),
        label_space=[NO, HAS],
        split_policy="no official split: keyed hash of the patient",
        split_unit="patient",
        release_notes={"0.1.0": "first medshard adapter: per-slice HU volumes + masks"},
        published_counts=PublishedCounts(
            train=1986, test=515, unit="slices",
            reference="CLIMB A.2 (its test is described as '515 patient records'; 82 "
            "patients, ~30 slices each)",
        ),
    )

    def layout(self, root: Path) -> tuple[str, Path, str]:
        """(layout name, folder, label CSV name): the owner's release first, then the mirror."""
        for candidate in (root, root / RELEASE_DIR):
            if (candidate / DIAGNOSIS_CSV).is_file():
                return PHYSIONET, candidate, DIAGNOSIS_CSV
        if (root / MIRROR_CSV).is_file() and (root / "Patients_CT").is_dir():
            return KAGGLE, root, MIRROR_CSV
        raise MissingRawData(f"hemorrhage: {DIAGNOSIS_CSV} not found in {root} or "
                             f"{root}/{RELEASE_DIR} (nor the Kaggle mirror's {MIRROR_CSV} + "
                             "Patients_CT/); download ct-ich 1.3.1 from PhysioNet")

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        self.layout(root)

    def label_files(self, root: Path) -> list[str]:
        _, folder, csv_name = self.layout(root)
        return [(folder / csv_name).relative_to(root).as_posix()]

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        layout, folder, csv_name = self.layout(root)
        prefix = folder.relative_to(root)
        index = (prefix / csv_name).as_posix()
        yield from self.csv_records(root, index,
                                    lambda row: self._record(root, prefix, row, layout))

    def _record(self, root: Path, prefix: Path, row: dict[str, str], layout: str) -> RawRecord:
        patient = int(row["PatientNumber"])
        slice_number = int(row["SliceNumber"])
        if patient < 0 or slice_number < 1:
            raise ValueError(f"PatientNumber {patient} / SliceNumber {slice_number} out of range")
        labels = {c: _flag(row, c) for c in LABEL_COLUMNS}
        if layout == PHYSIONET:
            files = [(prefix / "ct_scans" / f"{patient:03d}.nii").as_posix()]
            optional = [(prefix / "masks" / f"{patient:03d}.nii").as_posix()]
        else:
            slices = prefix / "Patients_CT" / f"{patient:03d}"
            files = [(slices / "brain" / f"{slice_number}.jpg").as_posix()]
            optional = [(slices / "bone" / f"{slice_number}.jpg").as_posix()]
        files += [f for f in optional if (root / f).is_file()]
        return RawRecord(
            record_id=f"{patient:03d}_s{slice_number:03d}",
            subject_id=f"{patient:03d}",
            files=files,
            source_labels=labels,
            size_bytes=0,
            meta={"slice_number": slice_number, "layout": layout},
        )

    def estimate_output_bytes(self, record: RawRecord) -> int:
        return 512 * 512 * 3  # one int16 slice and one uint8 mask slice of a 512 x 512 CT

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        if record.meta["layout"] == KAGGLE:
            payloads, orientation = self._mirror_payloads(record, root), None
        else:
            payloads, orientation = self._nifti_payloads(record, root)
        labels = record.source_labels
        has = labels["No_Hemorrhage"] == 0
        typed = any(labels[c] for c in TYPE_COLUMNS)
        yield Sample(
            classes=[HAS if has else NO],
            source_labels=dict(labels),
            payloads=payloads,
            meta={
                "slice_number": int(record.meta["slice_number"]),
                "layout": record.meta["layout"],
                "windows": {name: dict(w) for name, w in WINDOWS.items()},
                "label_conflict": has != typed,
                "source_orientation": orientation,
            },
            task="classification",
        )

    def _mirror_payloads(self, record: RawRecord, root: Path) -> dict[str, Payload]:
        from medshard.sources.photo_sets import image_payload

        payloads = {}
        for rel in record.files:
            window = rel.split("/")[-2]  # brain | bone
            w = WINDOWS[window]
            payloads[window] = image_payload(self, root, rel, {
                "window_center": [w["level"]], "window_width": [w["width"]]})
        return payloads

    def _nifti_payloads(self, record: RawRecord, root: Path) -> tuple[dict[str, Payload], str]:
        k = int(record.meta["slice_number"])
        ct_rel = record.files[0]
        ct_path = self.path(root, ct_rel)
        if not ct_path.is_file():
            if record.record_id.split("_s")[0] in UNRELEASED:
                raise Filtered("no CT released for subjects 059-065 (ct-ich README)")
            raise RecordError(f"missing CT {ct_rel}; download ct-ich's ct_scans/ folder")
        volume, affine, orientation = self._slice(ct_path, ct_rel, k)
        payloads = {"volume": volume_payload(volume, affine, units="HU")}
        if len(record.files) > 1:
            mask, mask_affine, _ = self._slice(self.path(root, record.files[1]), record.files[1], k,
                                               what="mask")
            if mask.shape != volume.shape or not np.allclose(mask_affine, affine, atol=1e-3):
                raise RecordError(f"{record.files[1]} is not on the CT's grid")
            if mask.size and (mask.min() < 0 or mask.max() > 255):
                raise RecordError(f"{record.files[1]} holds values outside 0..255")
            payloads["segmentation"] = Payload(kind="array", data=mask.astype(np.uint8),
                                               descriptor={"annotates": "volume"})
        return payloads, orientation

    @staticmethod
    def _slice(path: Path, rel: str, k: int,
               what: str = "CT") -> tuple[np.ndarray, np.ndarray, str]:
        """Slice k (1-based, third axis) as an (X, Y, 1) RAS array with its affine."""
        img = open_volume(path, rel, what=what)
        if not 1 <= k <= img.shape[2]:
            raise RecordError(f"SliceNumber {k} is beyond the {img.shape[2]} slices of {rel}")
        try:
            slab = img.slicer[:, :, k - 1:k]
            data = np.asanyarray(slab.dataobj)
        except (OSError, EOFError, ValueError) as exc:  # cut short
            raise RecordError(f"{rel}: cannot read slice {k} ({type(exc).__name__}: the file "
                              "is shorter than its header says); re-download it") from None
        out, affine = to_ras(data, slab.affine)
        return out, affine, source_orientation(img.affine)
