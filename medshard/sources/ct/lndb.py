"""LNDb: 294 chest CTs (CHUSJ, Porto) with radiologists' lung nodule findings.

Raw layout (Zenodo record 8348419; where each fact comes from: below):
    data0/ ... data5/LNDb-XXXX.mhd + LNDb-XXXX.raw   the CTs (MetaImage, int16 HU), unpacked
                                                    from data0.rar ... data5.rar; a flat
                                                    `data/` or the root itself also works
    trainNodules.csv     one row per radiologist finding: LNDbID, RadID, FindingID, x, y, z
                         (world mm, ITK's LPS physical space), Nodule (1 nodule / 0 non-nodule),
                         Volume (mm^3), Text (texture rating)
    trainNodules_gt.csv  the findings merged across radiologists: LNDbID, RadID (list, "1,2"),
                         RadFindingID (list), FindingID, x, y, z, AgrLevel, Nodule, Volume, Text
    trainFolds.csv       the official 4-fold partition: columns Fold0 ... Fold3, each a column
                         of LNDbIDs (ragged, blank cells below the shorter folds)
The masks (`masks/`) are not read. Sources: the Zenodo record and the LNDb paper (Pedrosa
et al., arXiv:1911.08434) for the files and classes; CLIMB's `src/datasets/ct/lndb.py` and
the LNDb challenge's `readNoduleList.py` (which CLIMB vendors) for the CSV columns, the
merged file and the equivalent diameter.

Samples: one per finding (option `findings`: the merged `trainNodules_gt.csv`, default, or
the per-radiologist `trainNodules.csv`). The payload is a crop of the CT around the
finding's world coordinate at a declared physical size (`crop_mm`, a cube): the centre
voxel is the world point mapped through the MetaImage header (origin, direction,
spacing) and rounded half up, as ITK's TransformPhysicalPointToIndex does; the crop has
ceil(crop_mm / spacing) voxels along each axis at native spacing (no resampling), starts
n // 2 voxels before the centre, and voxels outside the scan are `pad_value` (default
-1024 HU, air). Only the crop's box is read from the `.raw` (SimpleITK streamed region,
`medshard/formats/mhd.py`). The crop is given in RAS (axes permuted/flipped from the
file's LPS grid, never resampled) with its own affine (`volume.affine`: crop voxel ->
RAS mm) and spacing; `test_lndb.py` checks it against the same crop cut from SimpleITK's
image at `TransformPhysicalPointToIndex`.

Classes (CLIMB's 3, A.2; LNDb's definitions as CLIMB's docstring quotes them):
"non-nodule" when Nodule = 0; otherwise "nodule ≥ 3mm" or "nodule < 3mm" by the
equivalent-sphere diameter of Volume, d = 2 (3 V / 4 pi)^(1/3) (the challenge's
`nodEqDiam`, which is how LNDb's own tooling turns Volume into a size). LNDb defines the
classes by the greatest in-plane dimension, >= 3 mm vs < 3 mm, so exactly 3 mm is large;
CLIMB's window labels count `diameter <= 3` as small. We follow LNDb (>= 3 is large, the
diameter taken to 0.001 mm so that a 3-mm sphere's printed volume, 14.137, is 3 mm).
(The merged file gives non-nodules the volume of a 3-mm sphere; their class comes from
Nodule, not Volume.)

Split: the official folds. `test_fold` (default 3) is test and the other three folds
train (3:1, the proportion of CLIMB's first-75 %-of-IDs split; CLIMB's split itself is
not the official one); val is carved from train by keyed subject hash. A scan in no fold
gets the keyed-hash split. Subject: the scan (LNDb has one CT per patient in the
released set, per the data description; the IDs carry no other patient key).

Option `scan_samples` (off by default) adds one sample per scan that has findings: the
whole CT in RAS (read in one piece: about 2x its voxel bytes at peak), its classes the
classes of its findings (multi-label; a scan without findings gets no sample, as no
class says "no finding"), `meta.finding_ids` naming them. Finding and scan samples share
one JSON shape (`meta.sample_kind`; crop fields null for a scan).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from medshard.formats.mhd import LPS_TO_RAS, MetaImageError, read_header, read_region
from medshard.formats.nifti import source_orientation, to_ras, volume_payload
from medshard.schemas import BadRow, License, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import CarveValOptions, MissingRawData, Source

MERGED_CSV = "trainNodules_gt.csv"
RADIOLOGIST_CSV = "trainNodules.csv"
FOLDS_CSV = "trainFolds.csv"
SCAN_RE = re.compile(r"^LNDb-(\d{4})\.mhd$")
LARGE, SMALL, NON_NODULE = "nodule ≥ 3mm", "nodule < 3mm", "non-nodule"


def equivalent_diameter_mm(volume_mm3: float) -> float:
    """Diameter of the sphere of the given volume (LNDb challenge's nodEqDiam)."""
    return 2.0 * (3.0 * volume_mm3 / (4.0 * math.pi)) ** (1.0 / 3.0)


def finding_class(nodule: int, volume_mm3: float) -> str:
    if nodule == 0:
        return NON_NODULE
    # to 0.001 mm: a 3-mm sphere's volume as the CSVs print it (14.137) counts as 3 mm
    return LARGE if round(equivalent_diameter_mm(volume_mm3), 3) >= 3.0 else SMALL


def crop_box(header_size: tuple[int, ...], spacing: tuple[float, ...], center: np.ndarray,
             crop_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(start, n) of the crop in file index space: n = ceil(crop_mm / spacing)."""
    n = np.array([math.ceil(crop_mm / s - 1e-9) for s in spacing], dtype=np.int64)
    return center - n // 2, n


class LNDbOptions(CarveValOptions):
    findings: Literal["merged", "radiologist"] = Field(
        "merged", description="one sample per merged finding (trainNodules_gt.csv) or per "
        "radiologist finding (trainNodules.csv)")
    crop_mm: float = Field(48.0, gt=0, le=256.0, description="side of the cube cut around "
                           "each finding, in mm (native spacing, ceil(mm / spacing) voxels)")
    pad_value: int = Field(-1024, ge=-32768, le=32767,
                           description="value of crop voxels outside the scan (HU)")
    test_fold: int = Field(3, ge=0, le=3, description="official fold used as test; the "
                           "other three are train")
    scan_samples: bool = Field(False, description="also one sample per scan: the whole CT "
                               "in RAS, classes = the classes of its findings")


class LNDb(Source):
    Options = LNDbOptions
    fixture = "medshard.sources.ct.lndb_fixture:FIXTURE"
    payload_members = ("volume.npy",)
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://zenodo.org/records/8348419",
        steps=[
            "Download data0.rar ... data5.rar, trainNodules.csv, trainNodules_gt.csv and "
            "trainFolds.csv from the Zenodo record (CC BY 4.0).",
            "Unpack each dataN.rar (e.g. `unrar x data0.rar`) in the folder named below, "
            "keeping the dataN/ folders with their LNDb-XXXX.mhd/.raw files.",
        ],
        layouts={"zenodo": [FileSpec(path=MERGED_CSV), FileSpec(path=RADIOLOGIST_CSV),
                            FileSpec(path=FOLDS_CSV)]},
    ))
    info: ClassVar[SourceInfo] = SourceInfo(
        name="lndb",
        title="LNDb: a lung nodule database on computed tomography",
        version="2019 (Zenodo 8348419)",
        modality="ct",
        tasks=["classification"],
        license=License(
            name="Creative Commons Attribution 4.0", spdx="CC-BY-4.0",
            url="https://creativecommons.org/licenses/by/4.0/", terms_version="4.0",
        ),
        access="open",
        homepage="https://zenodo.org/records/8348419",
        citation=(
            "Pedrosa J, Aresta G, Ferreira C, et al. LNDb: A Lung Nodule Database on Computed "
            "Tomography. arXiv:1911.08434 (2019)."
        ),
        label_space=[LARGE, SMALL, NON_NODULE],
        split_policy="official folds (trainFolds.csv): test_fold is test, the other three "
        "train; val carved from train by keyed subject hash",
        split_unit="scan (LNDbID)",
        release_notes={"0.1.0": "first medshard adapter: one crop per finding, RAS, official folds"},
        published_counts=PublishedCounts(
            train=4130, test=1431, unit="CLIMB's 24-slice windows (medshard: findings)",
            reference="CLIMB A.2; CLIMB counts sliding windows of whole scans, medshard one "
            "crop per finding, so the numbers are not comparable one to one",
        ),
    )

    # -- layout -------------------------------------------------------------------------
    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not (root / self._findings_csv()).is_file():
            raise MissingRawData(f"lndb: {self._findings_csv()} not found in {root}; download "
                                 "the LNDb files from Zenodo (`medshard download lndb`)")

    def _findings_csv(self) -> str:
        return MERGED_CSV if self.opts.findings == "merged" else RADIOLOGIST_CSV

    def label_files(self, root: Path) -> list[str]:
        return [f for f in (self._findings_csv(), FOLDS_CSV) if (root / f).is_file()]

    def _scans(self, root: Path) -> dict[int, str]:
        """LNDbID -> path of its .mhd (relative), from the folder listing only."""
        found: dict[int, str] = {}
        for pattern in ("data*/LNDb-*.mhd", "LNDb-*.mhd"):
            for p in sorted(root.glob(pattern)):
                m = SCAN_RE.match(p.name)
                if m:
                    found.setdefault(int(m.group(1)), p.relative_to(root).as_posix())
        return found

    def _folds(self, root: Path) -> tuple[dict[int, int], list[BadRow]]:
        folds: dict[int, int] = {}
        bad: list[BadRow] = []
        if not (root / FOLDS_CSV).is_file():
            return folds, bad
        with open(self.path(root, FOLDS_CSV), newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            cols = {i: int(name[4:]) for i, name in enumerate(header)
                    if re.fullmatch(r"Fold\d+", name.strip())}
            for line, row in enumerate(reader, start=2):
                for i, cell in enumerate(row):
                    if i in cols and cell.strip():
                        try:
                            folds[int(float(cell))] = cols[i]
                        except ValueError:
                            bad.append(BadRow(FOLDS_CSV, line, f"ValueError: LNDbID {cell!r} "
                                              "is not a number", "ValueError"))
        return folds, bad

    # -- listing --------------------------------------------------------------------------
    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        scans = self._scans(root)
        folds, bad = self._folds(root)
        yield from bad
        per_scan: dict[str, list[RawRecord]] = {}
        for rec in self.csv_records(root, self._findings_csv(),
                                    lambda row: self._record(root, row, scans, folds)):
            yield rec
            if isinstance(rec, RawRecord):
                per_scan.setdefault(rec.subject_id, []).append(rec)
        if self.opts.scan_samples:
            for findings in per_scan.values():
                yield self._scan_record(findings)

    def _scan_record(self, findings: list[RawRecord]) -> RawRecord:
        """One record for the whole scan of these findings (option `scan_samples`)."""
        first = findings[0]
        classes = {finding_class(f.source_labels["Nodule"], f.source_labels["Volume"])
                   for f in findings}
        rads = sorted({r for f in findings for r in f.source_labels["RadID"]})
        return RawRecord(
            record_id=first.subject_id,
            subject_id=first.subject_id,
            files=list(first.files),
            split=first.split,
            source_labels={"Nodule": None, "Volume": None, "Text": None, "RadID": rads,
                           "FindingID": None, "AgrLevel": None},
            meta={"world_lps_mm": None, "fold": first.meta["fold"], "scan": True,
                  "classes": [c for c in self.info.label_space if c in classes],
                  "finding_ids": [f.record_id for f in findings]},
        )

    def _record(self, root: Path, row: dict[str, str], scans: dict[int, str],
                folds: dict[int, int]) -> RawRecord:
        lnd = int(row["LNDbID"])
        finding = int(row["FindingID"])
        nodule = int(float(row["Nodule"]))
        if nodule not in (0, 1):
            raise ValueError(f"Nodule is {nodule}, expected 0 or 1")
        volume = float(row["Volume"])
        if not math.isfinite(volume) or volume < 0:
            raise ValueError(f"Volume {row['Volume']!r} is not a volume in mm^3")
        world = [float(row[c]) for c in ("x", "y", "z")]
        if not all(math.isfinite(v) for v in world):
            raise ValueError("x, y, z must be finite world coordinates")
        rads = [int(float(r)) for r in str(row["RadID"]).split(",") if r.strip()]
        if self.opts.findings == "merged":
            record_id = f"LNDb-{lnd:04d}_f{finding}"
            agreement: int | None = int(float(row["AgrLevel"]))
        else:
            record_id = f"LNDb-{lnd:04d}_r{rads[0]}_f{finding}"
            agreement = None
        mhd = scans.get(lnd, f"data/LNDb-{lnd:04d}.mhd")
        raw = mhd[: -len(".mhd")] + ".raw"
        fold = folds.get(lnd)
        split = None if fold is None else ("test" if fold == self.opts.test_fold else "train")
        return RawRecord(
            record_id=record_id,
            subject_id=f"LNDb-{lnd:04d}",
            files=[mhd, raw],
            split=self.carve_val(split, f"LNDb-{lnd:04d}") if split else None,
            size_bytes=0,
            source_labels={
                "Nodule": nodule, "Volume": volume, "Text": float(row["Text"]),
                "RadID": rads, "FindingID": finding, "AgrLevel": agreement,
            },
            meta={"world_lps_mm": world, "fold": fold, "scan": False},
        )

    def estimate_output_bytes(self, record: RawRecord) -> int:
        if record.meta["scan"]:
            return 512 * 512 * 400 * 2  # a whole chest CT, int16
        # a crop of about crop_mm^3 at ~0.7 x 0.7 x 1 mm, int16: far below the scan's bytes
        side = self.opts.crop_mm
        return max(int(2 * (side / 0.6) ** 2 * (side / 0.6)), 1)

    # -- loading --------------------------------------------------------------------------
    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        mhd_rel, raw_rel = record.files
        mhd = self.path(root, mhd_rel)
        self.path(root, raw_rel)  # the voxel file must stay inside the root too
        if not mhd.is_file():
            raise RecordError(f"missing CT header {mhd_rel}; unpack the LNDb dataN.rar archives")
        scan = bool(record.meta["scan"])
        try:
            header = read_header(mhd)
            self._check_data_file(mhd, raw_rel)
            if scan:
                crop = read_region(mhd, (0, 0, 0), header.size)  # type: ignore[arg-type]
                affine_lps, center, padded = header.affine_lps, None, None
            else:
                crop, affine_lps, center, padded = self._crop(mhd, header,
                                                              record.meta["world_lps_mm"])
        except MetaImageError as exc:
            raise RecordError(f"{mhd_rel}: {exc}") from None
        volume, affine = to_ras(crop, LPS_TO_RAS @ affine_lps)
        labels = record.source_labels
        yield Sample(
            classes=(list(record.meta["classes"]) if scan
                     else [finding_class(labels["Nodule"], labels["Volume"])]),
            source_labels=dict(labels),
            payloads={"volume": volume_payload(volume, affine, units="HU")},
            meta={
                "sample_kind": "scan" if scan else "finding",
                "finding_ids": (list(record.meta["finding_ids"]) if scan
                                else [record.record_id]),
                "world_lps_mm": None if scan else list(record.meta["world_lps_mm"]),
                "equivalent_diameter_mm": (None if scan
                                           else equivalent_diameter_mm(labels["Volume"])),
                "fold": record.meta["fold"],
                "crop_mm": None if scan else float(self.opts.crop_mm),
                "pad_value": None if scan else int(self.opts.pad_value),
                "center_index": None if scan else [int(v) for v in center],
                "padded_voxels": None if scan else int(padded),
                "scan_shape": list(header.size),
                "scan_spacing_mm": list(header.spacing),
                "source_orientation": source_orientation(LPS_TO_RAS @ header.affine_lps),
            },
            task="classification",
        )

    def _check_data_file(self, mhd: Path, raw_rel: str) -> None:
        """The header's ElementDataFile must be the listed .raw beside it (no other path)."""
        text = mhd.read_text(encoding="latin-1", errors="replace")
        m = re.search(r"^\s*ElementDataFile\s*=\s*(.+?)\s*$", text, flags=re.M)
        if m is None or m.group(1) != Path(raw_rel).name:
            raise MetaImageError(f"ElementDataFile must name {Path(raw_rel).name} beside the "
                                 "header; the .mhd is not an LNDb scan header")

    def _crop(self, mhd: Path, header, world: list[float]):
        aff = header.affine_lps
        ijk = np.linalg.solve(aff[:3, :3], np.asarray(world, dtype=np.float64) - aff[:3, 3])
        center = np.floor(ijk + 0.5).astype(np.int64)  # ITK rounds half up
        size = np.asarray(header.size, dtype=np.int64)
        if np.any(center < 0) or np.any(center >= size):
            raise RecordError(f"finding at world {world} mm lies outside the scan "
                              f"(voxel {center.tolist()} of {size.tolist()})")
        start, n = crop_box(header.size, header.spacing, center, self.opts.crop_mm)
        lo = np.maximum(start, 0)
        hi = np.minimum(start + n, size)
        region = read_region(mhd, tuple(lo), tuple(hi - lo))
        pad = int(self.opts.pad_value)
        info = np.iinfo(region.dtype) if region.dtype.kind in "iu" else None
        if info is not None and not info.min <= pad <= info.max:
            raise RecordError(f"pad_value {pad} does not fit the scan's {region.dtype}")
        crop = np.full(tuple(n), pad, dtype=region.dtype)
        inner = tuple(slice(a, b) for a, b in zip(lo - start, hi - start, strict=True))
        crop[inner] = region
        shift = np.eye(4)
        shift[:3, 3] = start
        return crop, aff @ shift, center, crop.size - region.size
