"""KiTS23: contrast-enhanced abdominal CT of 489 nephrectomy patients, with kidney/tumor/cyst masks.

Raw layout (github.com/neheller/kits23, dataset v0.1.3; `kits23_download_data` fills
in the images):
    dataset/kits23.json                     one object per case: case_id, clinical fields
    dataset/case_XXXXX/imaging.nii.gz       the CT, Hounsfield units (int16 as shipped)
    dataset/case_XXXXX/segmentation.nii.gz  0 background, 1 kidney, 2 tumor, 3 cyst
The data root may be the repository root (holding `dataset/`) or `dataset/` itself.

One case gives one sample with two members:
  - `volume.npy`: the CT at native resolution, no resampling, dtype as stored (int16
    HU; a NIfTI with non-identity scl_slope/scl_inter is rescaled exactly to an
    integer type when slope and intercept are integers, else to float32);
  - `segmentation.npy`: the mask, same shape and orientation (uint8).
Orientation convention: arrays are reoriented to RAS+ (nibabel's
`as_closest_canonical`: array axis i increases towards R, A, S for i = 0, 1, 2) by
axis permutations and flips only, never resampling; `affine` is the matching
voxel -> world (RAS mm) matrix and `spacing_mm` the voxel size along each array axis.
The original axis codes are kept in `meta["source_orientation"]`. Reorienting costs
one copy of the volume when the file is not already RAS; nothing else is copied.

Labels: `malignant` (true -> "malignant", false -> "benign"); a case whose
`malignant` is null is filtered. Clinical metadata passes an allow-list (demographics,
tumor pathology and size; no dates, day offsets, outcomes or comorbidities); ages
of 90 and over are reported as 90, as HIPAA Safe Harbor asks.

Provenance: every sample and the manifest carry the sha256 of the kits23.json read
(`label_files`); a changed kits23.json rebuilds every shard of the source.

Split: KiTS23's test cases are hidden (not in kits23.json), so there is no official
labelled split; the pipeline assigns one by a keyed hash of the case.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import nibabel as nib
import numpy as np

from medshard.formats.nifti import (
    open_volume,
    read_ras,
    read_voxels,
    source_orientation,
    to_ras,
    volume_payload,
)
from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.schemas.sample import Filtered
from medshard.sources.base import ROW_ERRORS, MissingRawData, Source, row_error_reason

SEGMENTATION_LABELS = {"0": "background", "1": "kidney", "2": "tumor", "3": "cyst"}
# Clinical fields of kits23.json that may leave the source (no dates, offsets or outcomes).
CLINICAL_FIELDS = (
    "gender", "age_at_nephrectomy", "bmi", "surgical_procedure", "radiographic_size",
    "pathologic_size", "tumor_histologic_subtype", "pathology_t_stage", "pathology_n_stage",
    "pathology_m_stage", "tumor_isup_grade", "tumor_necrosis", "sarcomatoid_features",
    "rhabdoid_features", "cytoreductive", "aua_risk_score",
)
MAX_AGE = 90  # HIPAA Safe Harbor: ages above 89 are aggregated


class KiTS23(Source):
    fixture = "medshard.sources.ct.kits23_fixture:FIXTURE"
    # The images come from the challenge's own script (its URLs are not stable links).
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://github.com/neheller/kits23",
        steps=[
            "git clone https://github.com/neheller/kits23 && cd kits23 && pip install -e .",
            "Run `kits23_download_data`: it fills dataset/case_XXXXX/imaging.nii.gz (~30 GB).",
            "Copy or link the clone's dataset/ folder into the folder named below.",
        ],
        layouts={"repository": [FileSpec(path="dataset/kits23.json")],
                 "dataset folder": [FileSpec(path="kits23.json")]},
    ))
    payload_members = ("segmentation.npy", "volume.npy")
    demographic_fields = {"sex": "gender", "age_years": "age_at_nephrectomy"}
    info: ClassVar[SourceInfo] = SourceInfo(
        name="kits23",
        title="KiTS23: the 2023 Kidney and Kidney Tumor Segmentation challenge dataset",
        version="0.1.3",
        modality="ct",
        tasks=["classification", "segmentation"],
        license=License(
            name="Creative Commons Attribution-NonCommercial-ShareAlike 4.0",
            spdx="CC-BY-NC-SA-4.0",
            url="https://creativecommons.org/licenses/by-nc-sa/4.0/",
            terms_version="4.0",
            non_commercial=True,
            share_alike=True,
        ),
        access="open",
        homepage="https://kits-challenge.org/kits23/",
        citation=(
            "Heller N, Isensee F, Trofimova D, et al. The KiTS21 Challenge: Automatic "
            "segmentation of kidneys, renal tumors, and renal cysts in corticomedullary-phase "
            "CT. arXiv:2307.01984 (2023)."
        ),
        label_space=["benign", "malignant"],
        split_policy="no official labelled test set: keyed hash of the case id",
        release_notes={
            "0.1.0": "first medshard adapter: RAS volumes + masks, benign/malignant",
            "0.2.0": "sha256 of kits23.json in every sample's provenance and the manifest",
        },
        published_counts=PublishedCounts(
            train=361, test=117, unit="cases",
            reference="CLIMB A.2",
        ),
    )

    def dataset_dir(self, root: Path) -> Path:
        """The folder holding kits23.json: `root/dataset/` or the root itself."""
        for candidate in (root / "dataset", root):
            if (candidate / "kits23.json").is_file():
                return candidate
        raise MissingRawData(f"kits23: kits23.json not found in {root}/dataset/ or {root}")

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        self.dataset_dir(root)

    def label_files(self, root: Path) -> list[str]:
        # upstream revises kits23.json in place (malignancy labels changed in 2025): its
        # sha256 in every sample's provenance and the manifest says which labels a build has
        return [(self.dataset_dir(root) / "kits23.json").relative_to(root).as_posix()]

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        dataset = self.dataset_dir(root)
        prefix = dataset.relative_to(root)
        index = (prefix / "kits23.json").as_posix()
        cases = json.loads(self.path(root, index).read_text(encoding="utf-8"))
        for n, case in enumerate(cases, start=1):
            try:
                yield self._record(root, prefix, case)
            except ROW_ERRORS as exc:  # one malformed case entry; `line` is its 1-based index
                yield BadRow(index, n, row_error_reason(exc), type(exc).__name__)

    def _record(self, root: Path, prefix: Path, case: dict[str, Any]) -> RawRecord:
        case_id = case["case_id"]
        files = [
            (prefix / case_id / name).as_posix()
            for name in ("imaging.nii.gz", "segmentation.nii.gz")
        ]
        clinical = {k: case.get(k) for k in CLINICAL_FIELDS if case.get(k) is not None}
        if isinstance(clinical.get("age_at_nephrectomy"), (int, float)):
            clinical["age_at_nephrectomy"] = min(clinical["age_at_nephrectomy"], MAX_AGE)
        record = RawRecord(
            record_id=case_id,
            subject_id=case_id,
            files=files,
            source_labels={"malignant": case.get("malignant")},
            size_bytes=sum((root / f).stat().st_size for f in files if (root / f).is_file()),
            meta={"clinical": clinical, "voxel_bytes": 0},
        )
        try:
            record.meta["voxel_bytes"] = _voxel_bytes(self.path(root, files[0]))
        except RecordError:  # outside the root: load() quarantines it with the reason
            pass
        return record

    def estimate_output_bytes(self, record: RawRecord) -> int:
        # shards hold uncompressed .npy: the CT's voxels plus a uint8 mask of the same shape
        voxels = int(record.meta.get("voxel_bytes") or 0)
        return max(voxels + voxels // 2, record.size_bytes, 1)

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        malignant = record.source_labels.get("malignant")
        if malignant is None:
            raise Filtered("malignant is null in kits23.json")
        image_path, seg_path = (self.path(root, f) for f in record.files)
        for rel, path in zip(record.files, (image_path, seg_path), strict=True):
            if not path.is_file():
                raise RecordError(f"{rel} is missing; run kits23_download_data to fetch it")
        image = open_volume(image_path, record.files[0])
        seg_img = open_volume(seg_path, record.files[1], what="segmentation")
        if seg_img.shape != image.shape:
            raise RecordError(
                f"segmentation shape {seg_img.shape} differs from imaging shape {image.shape}"
            )
        if not np.allclose(seg_img.affine, image.affine, atol=1e-3):
            raise RecordError("segmentation affine differs from the imaging affine")

        volume, affine = read_ras(image, record.files[0])
        try:
            mask, _ = to_ras(_mask_voxels(seg_img), image.affine)
        except (OSError, EOFError, ValueError) as exc:  # truncated gzip, short data
            raise RecordError(f"{record.files[1]}: cannot read voxels ({type(exc).__name__}); "
                              "the file is cut short: re-download it") from None

        meta: dict[str, Any] = {
            **record.meta.get("clinical", {}),
            "source_orientation": source_orientation(image.affine),
            "segmentation_labels": dict(SEGMENTATION_LABELS),
        }
        yield Sample(
            classes=["malignant" if malignant else "benign"],
            source_labels={"malignant": bool(malignant)},
            payloads={
                "volume": volume_payload(volume, affine, units="HU"),
                "segmentation": Payload(
                    kind="array", data=mask,
                    descriptor={"annotates": "volume", "label_names": dict(SEGMENTATION_LABELS)},
                ),
            },
            meta=meta,
            task="classification",
        )


def _mask_voxels(img: nib.Nifti1Image) -> np.ndarray:
    """The label mask as uint8 (labels are 0..3); refuses non-integer or out-of-range labels."""
    arr = read_voxels(img)
    if arr.dtype == np.uint8:
        return arr
    if arr.size and (arr.min() < 0 or arr.max() > 255 or (arr.dtype.kind == "f" and
                                                           not np.all(np.mod(arr, 1) == 0))):
        raise RecordError("segmentation holds values that are not integer labels 0..255")
    return arr.astype(np.uint8)


def _voxel_bytes(path: Path) -> int:
    """Uncompressed voxel bytes from the NIfTI header only (no voxel is read); 0 if unreadable."""
    try:
        img = nib.load(path)
        return int(np.prod(img.shape)) * img.get_data_dtype().itemsize
    except Exception:  # a missing or broken file is reported by load(), not by listing
        return 0
