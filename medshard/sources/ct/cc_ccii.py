"""CC-CCII: chest CT scans of novel coronavirus pneumonia, common pneumonia and normal controls.

Raw layout (CNCB per-class zip files, unpacked; sources below):
    NCP/<patient_id>/<scan_id>/<slice>.png    slices of one scan (8-bit grayscale PNG;
    CP/...  Normal/...                        a few scans ship JPEG), numbered by file name
    unzip_filenames.csv                       one row per scan: zip_file, label (NCP / CP /
                                              Normal), patient_id, scan_id, n_slice
    lesions_slices.csv                        slices with lesions marked (not read)
Sources: Zhang et al., Cell 2020 (classes); the CNCB download page (per-class zips); the
COVIDx-CT build instructions and public loaders of this release for the folder layout and
the unzip_filenames.csv columns. MultiMed lists the set as "COVID CT (CC-CCII)" (617,775 slices); CLIMB does not use it.

Samples: one per scan (row of unzip_filenames.csv): the scan's slices, sorted by the
integer in their file name (0000.png, 1.png, ...), stacked into an (H, W, N) uint8 array
(`volume.npy`, kind `array`). The PNGs carry no geometry: pixel spacing, slice spacing,
orientation and HU calibration are unknown, so the sample says so (`meta.spacing_mm` and
`meta.orientation` null, `meta.intensity` "8-bit display values, not HU") rather than
inventing an affine; the payload is therefore not a `volume` (which requires one).
The CSV's n_slice and the number of slice files found are both in meta.

Labels: the class folder verbatim (NCP, CP, Normal). Split: no official split;
keyed hash of patient_id (patients are grouped across scans; a patient_id shared
between class folders is treated as one patient, the cautious reading: it can only
coarsen the split, never leak).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import Source

INDEX_CSV = "unzip_filenames.csv"
CLASSES = ("NCP", "CP", "Normal")
SLICE_RE = re.compile(r"^(\d+)\.(png|jpg|jpeg)$", re.IGNORECASE)
ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class CCCCII(Source):
    fixture = "medshard.sources.ct.cc_ccii_fixture:FIXTURE"
    payload_members = ("volume.npy",)
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="http://ncov-ai.big.ac.cn/download?lang=en",
        steps=[
            "Download every NCP / CP / Normal zip file and unzip_filenames.csv from the CNCB "
            "COVID-CT page (China Consortium of Chest CT Image Investigation).",
            "Unzip each archive in the folder named below, so that it holds "
            "NCP/<patient>/<scan>/, CP/... and Normal/... beside unzip_filenames.csv.",
        ],
        layouts={"cncb": [FileSpec(path=INDEX_CSV)]},
    ))
    required_files = (INDEX_CSV,)
    root_hint = "download it with the class zip files from CNCB (`medshard info cc-ccii`)"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="cc-ccii",
        title="CC-CCII: China Consortium of Chest CT Image Investigation (COVID-19 CT)",
        version="CNCB release",
        modality="ct",
        tasks=["classification"],
        license=License(
            name="CNCB COVID-CT terms (academic research; licence not stated on the page)",
            url="http://ncov-ai.big.ac.cn/download?lang=en",
            terms_version="unstated", non_commercial=True,
        ),
        access="open",
        homepage="http://ncov-ai.big.ac.cn/download?lang=en",
        citation=(
            "Zhang K, Liu X, Shen J, et al. Clinically Applicable AI System for Accurate "
            "Diagnosis, Quantitative Measurements, and Prognosis of COVID-19 Pneumonia Using "
            "Computed Tomography. Cell 181(6):1423-1433 (2020)."
        ),
        label_space=list(CLASSES),
        split_policy="no official split: keyed hash of patient_id",
        split_unit="patient",
        release_notes={"0.1.0": "first medshard adapter: one slice stack per scan"},
        published_counts=PublishedCounts(
            unit="slices", reference="MultiMed: 617,775 (called scans there; they are slices), "
            "no per-split counts; medshard counts scans",
        ),
    )

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        yield from self.csv_records(root, INDEX_CSV, lambda row: self._record(root, row))

    def _record(self, root: Path, row: dict[str, str]) -> RawRecord:
        label = row["label"].strip()
        if label not in CLASSES:
            raise ValueError(f"label {label!r} is not one of {', '.join(CLASSES)}")
        patient, scan = row["patient_id"].strip(), row["scan_id"].strip()
        for name, value in (("patient_id", patient), ("scan_id", scan)):
            if not ID_RE.fullmatch(value):
                raise ValueError(f"{name} {value!r} is not an identifier")
        n_slice = int(row["n_slice"])
        folder = root / label / patient / scan
        slices = sorted(
            ((int(m.group(1)), p.name) for p in (folder.iterdir() if folder.is_dir() else ())
             if (m := SLICE_RE.match(p.name))), key=lambda t: (t[0], t[1]))
        files = [f"{label}/{patient}/{scan}/{name}" for _, name in slices]
        return RawRecord(
            record_id=f"{label}_{patient}_{scan}",
            subject_id=patient,
            files=files,
            source_labels={"label": label, "zip_file": row.get("zip_file", "").strip()},
            size_bytes=sum((root / f).stat().st_size for f in files),
            meta={"n_slice_listed": n_slice, "folder": f"{label}/{patient}/{scan}"},
        )

    def estimate_output_bytes(self, record: RawRecord) -> int:
        return max(512 * 512 * len(record.files), 1)  # uint8 slices, typically 512 x 512

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        from PIL import Image, UnidentifiedImageError

        if not record.files:
            raise RecordError(f"no slice files in {record.meta['folder']}/; unzip "
                              f"{record.source_labels['zip_file'] or 'its zip file'} there")
        stack: np.ndarray | None = None
        for z, rel in enumerate(record.files):
            data = self.read_bytes(root, rel, "slice")
            try:
                with Image.open(io.BytesIO(data)) as im:
                    im.load()
                    arr = _gray(im, rel)
            except (UnidentifiedImageError, OSError, SyntaxError) as exc:
                raise RecordError(f"unreadable slice {rel} ({type(exc).__name__}); re-extract "
                                  "the scan's zip file") from None
            if stack is None:
                stack = np.empty((*arr.shape, len(record.files)), dtype=np.uint8)
            elif arr.shape != stack.shape[:2]:
                raise RecordError(f"slice {rel} is {arr.shape}, the scan's first slice "
                                  f"{stack.shape[:2]}: not one scan")
            stack[:, :, z] = arr
        assert stack is not None
        yield Sample(
            classes=[record.source_labels["label"]],
            source_labels=dict(record.source_labels),
            payloads={"volume": Payload(kind="array", data=stack, descriptor={})},
            meta={
                "n_slice_listed": int(record.meta["n_slice_listed"]),
                "n_slice_found": len(record.files),
                "slice_order": "integer in the file name, ascending",
                "axes": "row, column, slice",
                "spacing_mm": None,
                "orientation": None,
                "intensity": "8-bit display values, not HU",
            },
            task="classification",
        )


def _gray(im, rel: str) -> np.ndarray:
    """An 8-bit grayscale slice; an RGB(A) slice must have three equal channels."""
    if im.mode == "L":
        return np.asarray(im, dtype=np.uint8)
    if im.mode in ("RGB", "RGBA"):
        rgb = np.asarray(im.convert("RGB"))
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return np.ascontiguousarray(rgb[..., 0])
    raise RecordError(f"slice {rel} is {im.mode}, not 8-bit grayscale")
