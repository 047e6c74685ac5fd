"""CBIS-DDSM: scanned-film mammograms (DICOM) with outlined masses and calcifications.

Raw layout (TCIA, https://www.cancerimagingarchive.net/collection/cbis-ddsm/):
    mass_case_description_{train,test}_set.csv
        patient_id, breast_density, left or right breast (LEFT|RIGHT), image view (CC|MLO),
        abnormality id, abnormality type (mass), mass shape, mass margins, assessment
        (BI-RADS 0-5), pathology (MALIGNANT | BENIGN | BENIGN_WITHOUT_CALLBACK), subtlety
        (1-5), image file path, cropped image file path, ROI mask file path
    calc_case_description_{train,test}_set.csv
        the same with `breast density` (space) and calc type, calc distribution in place
        of mass shape, mass margins
    CBIS-DDSM/<Subject>/<study folder>/<series folder>/1-1.dcm   (NBIA Data Retriever)
    metadata.csv    the Retriever's list of series: Subject ID, Study UID, Series UID, ...,
                    File Location (./CBIS-DDSM/<Subject>/<study folder>/<series folder>)

Sources: the collection page and Lee et al., Scientific Data 4, 170177 (2017); the CSV
columns as CLIMB reads them (`DDVD233/CLIMB:src/datasets/mammo/cbis.py`, columns 0, 2, 3,
8, 11) and as third-party readers of the release name them; the mapping of CSV paths to
the download through `metadata.csv` is CLIMB's; the Retriever's folder naming and the
crop/mask sharing one series, from third-party readers of the release (public code).

The CSVs' path columns read `<Subject>/<Study UID>/<Series UID>/000000.dcm`, which is
not where the Retriever puts the files: it names folders `<date>-DDSM-...-<last 5 digits
of the Study UID>` and `1.000000-<series description>-<last 5 digits of the Series
UID>`, and files `1-1.dcm`, `1-2.dcm`. A series folder is found, in this order: at the
CSV's own path (the layout `medshard download` writes: `<PatientID>/<Study UID>/<Series
UID>/`); through `metadata.csv` (Subject/Study UID/Series UID -> File Location); else
as the one folder under `CBIS-DDSM/<Subject>/` whose study and series folder names end
with the UIDs' last five digits. The file names in the CSV are not used (the release's
`000000.dcm` / `000001.dcm` do not say which file is the crop and which the mask, and
one series often holds both): the ROI mask is the file of the mask's (or the crop's)
series whose size is the full image's, checked against its header; the crop is
smaller. The cropped lesion images are not copied (they are the full image cut to the
mask's bounding box).

Sample: one breast and abnormality, `<patient_id>_<L|R>_<mass|calc><abnormality id>`:
full images as roles `cc` and `mlo`, ROI masks as `cc_mask` and `mlo_mask` (kind mask,
0/255 as shipped, each annotating its view and checked to lie on its grid). The CSVs
number abnormalities per image and do not link views; rows of the two views of one
breast with the same abnormality type and id are taken as one abnormality. An
abnormality outlined in one view only is filtered (every sample has every role).

Labels: the `assessment` as "BI-RADS N" (`docs/vocabulary.md`: VinDr-Mammo's spelling,
shared concepts). CLIMB drops BI-RADS 0 (incomplete: needs more imaging) and takes the
highest assessment per image; `birads_zero="drop"` (default) does the same here: the
label is the highest assessment of the abnormality's rows, and an abnormality whose
highest assessment is 0 is filtered; `birads_zero="keep"` labels it "BI-RADS 0".
Pathology, subtlety, density and the shape/margins or type/distribution descriptors of
each row go to `source_labels` / meta verbatim.

Split: the official train/test CSVs; val carved from train by a keyed hash of the
patient (`val_fraction`, default 0.1). The official split is by abnormality type CSV and
the same patient can appear in a mass CSV of one split and a calc CSV of the other: such
a patient keeps the split each CSV gives (the official one), so CBIS-DDSM's own split is
not strictly patient-level.

Pixels: `medshard.formats.dicom` (modality LUT, MONOCHROME1 inverted by default,
allow-listed tags only); the scanned films are 16-bit MONOCHROME2 up to ~5000 x 3000.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from medshard.formats.dicom import read_dataset, read_image
from medshard.schemas import (
    BadRow,
    Filtered,
    License,
    Payload,
    RawRecord,
    RecordError,
    Sample,
    SourceInfo,
)
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import (
    CarveValOptions,
    DicomImageOptions,
    MissingRawData,
    Source,
    row_error_reason,
)
from medshard.sources.mammo.views import ROLES, VIEW_ROLES, breast_meta, require_views, view_payload

SLUG = "cbis-ddsm"
LABELS: tuple[str, ...] = tuple(f"BI-RADS {n}" for n in range(0, 6))
CSVS: dict[str, tuple[str, str]] = {  # file -> (abnormality type, split)
    "mass_case_description_train_set.csv": ("mass", "train"),
    "calc_case_description_train_set.csv": ("calc", "train"),
    "mass_case_description_test_set.csv": ("mass", "test"),
    "calc_case_description_test_set.csv": ("calc", "test"),
}
METADATA_CSV = "metadata.csv"
TREE = "CBIS-DDSM"
PATHOLOGIES = ("MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK")
ONE_VIEW = "abnormality outlined in one view only"
BIRADS_ZERO = "BI-RADS 0 (incomplete assessment), dropped as CLIMB does"
_PATIENT = re.compile(r"^P_\d{5}$")
_UID = re.compile(r"^[0-9.]+$")
_SIDES = {"LEFT": "L", "RIGHT": "R"}


def _cell(row: dict[str, str], *names: str) -> str:
    """The first of `names` the row has (the two CSV kinds spell some columns apart)."""
    for name in names:
        if name in row and row[name] is not None:
            return row[name].strip()
    raise KeyError(names[0])


def series_key(csv_path: str) -> tuple[str, str, str]:
    """(subject, study UID, series UID) of a CSV file path cell."""
    parts = [p for p in csv_path.strip().strip('"').replace("\\", "/").split("/") if p]
    if len(parts) != 4 or not all(_UID.match(p) for p in parts[1:3]):
        raise ValueError(f"file path {csv_path.strip()[:120]!r} is not "
                         "<Subject>/<Study UID>/<Series UID>/<file>.dcm")
    if ".." in parts[0] or not re.match(r"^[A-Za-z0-9_-]+$", parts[0]):
        raise ValueError(f"subject folder {parts[0][:60]!r} is not a CBIS-DDSM subject")
    return parts[0], parts[1], parts[2]


def parse_row(row: dict[str, str], kind: str) -> dict[str, Any]:
    """One CSV row, checked (ValueError/KeyError when malformed)."""
    patient = _cell(row, "patient_id")
    if not _PATIENT.match(patient):
        raise ValueError(f"patient_id {patient!r} is not P_NNNNN")
    side = _SIDES.get(_cell(row, "left or right breast").upper())
    if side is None:
        raise ValueError("left or right breast is not LEFT or RIGHT")
    view = _cell(row, "image view").upper()
    if view not in VIEW_ROLES:
        raise ValueError(f"image view {view!r} is not CC or MLO")
    assessment = int(_cell(row, "assessment"))
    if not 0 <= assessment <= 5:
        raise ValueError(f"assessment {assessment} is not a BI-RADS category 0-5")
    pathology = _cell(row, "pathology").upper()
    if pathology not in PATHOLOGIES:
        raise ValueError(f"pathology {pathology!r} is not one of {', '.join(PATHOLOGIES)}")
    density = _cell(row, "breast_density", "breast density")
    descriptor = {"mass_shape": None, "mass_margins": None, "calc_type": None,
                  "calc_distribution": None}
    if kind == "mass":
        descriptor.update(mass_shape=_cell(row, "mass shape") or None,
                          mass_margins=_cell(row, "mass margins") or None)
    else:
        descriptor.update(calc_type=_cell(row, "calc type") or None,
                          calc_distribution=_cell(row, "calc distribution") or None)
    return {
        "patient": patient, "side": side, "view": view,
        "abnormality_id": int(_cell(row, "abnormality id")),
        "assessment": assessment, "pathology": pathology,
        "subtlety": int(_cell(row, "subtlety")),
        "breast_density": int(density) if density else None,
        **descriptor,
        "image": series_key(_cell(row, "image file path")),
        "crop": series_key(_cell(row, "cropped image file path")),
        "mask": series_key(_cell(row, "ROI mask file path")),
    }


class CBISDDSMOptions(DicomImageOptions, CarveValOptions):
    birads_zero: Literal["drop", "keep"] = Field(
        "drop", description="abnormalities assessed BI-RADS 0 (incomplete): filtered, as CLIMB "
        "does, or kept as class 'BI-RADS 0'",
    )


class CBISDDSM(Source):
    Options = CBISDDSMOptions
    fixture = "medshard.sources.mammo.cbis_ddsm_fixture:FIXTURE"
    payload_members = ("cc.png", "mlo.png", "cc_mask.png", "mlo_mask.png")
    info: ClassVar[SourceInfo] = SourceInfo(
        name=SLUG,
        title="CBIS-DDSM: Curated Breast Imaging Subset of the Digital Database for Screening "
        "Mammography",
        version="2017 (TCIA, DOI 10.7937/K9/TCIA.2016.7O02S9CY)",
        modality="mammography",
        tasks=["classification", "segmentation"],
        license=License(
            name="Creative Commons Attribution 3.0 Unported", spdx="CC-BY-3.0",
            url="https://creativecommons.org/licenses/by/3.0/", terms_version="3.0",
        ),
        access="open",
        homepage="https://www.cancerimagingarchive.net/collection/cbis-ddsm/",
        citation=(
            "Lee RS, Gimenez F, Hoogi A, Miyake KK, Gorovoy M, Rubin DL. A curated mammography "
            "data set for use in computer-aided detection and diagnosis research. Scientific "
            "Data 4, 170177 (2017). Sawyer-Lee R, et al. Curated Breast Imaging Subset of "
            "Digital Database for Screening Mammography (CBIS-DDSM), The Cancer Imaging "
            "Archive (2016), https://doi.org/10.7937/K9/TCIA.2016.7O02S9CY"
        ),
        label_space=list(LABELS),
        split_policy=(
            "official train/test case-description CSVs; val = a keyed hash of the patient over "
            "train (val_fraction, default 0.1)"
        ),
        split_unit="patient within each CSV (a patient may have a mass in one official split "
        "and a calcification in the other)",
        release_notes={"0.1.0": "first medshard adapter: one sample per breast and "
                       "abnormality, CC/MLO full images and ROI masks"},
        published_counts=PublishedCounts(
            train=2230, test=595, unit="images (CLIMB: BI-RADS 0 dropped, one label per image; "
            "medshard writes one sample per breast and abnormality with both views)",
            reference="CLIMB Table 7 / A.2",
        ),
    )

    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://www.cancerimagingarchive.net/collection/cbis-ddsm/",
        steps=[
            "On the collection page, download the four case-description CSVs "
            "(mass_/calc_case_description_train_set.csv, ..._test_set.csv) into the source "
            "folder.",
            "Download the images (.tcia manifest) with the NBIA Data Retriever into the same "
            "folder, keeping its CBIS-DDSM/ tree and its metadata.csv.",
        ],
    ), approx_bytes=163_000_000_000)

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not any((root / name).is_file() for name in CSVS):
            raise MissingRawData(
                f"{SLUG}: no case-description CSV (e.g. mass_case_description_train_set.csv) in "
                f"{root}; put the four CSVs and the NBIA download's CBIS-DDSM/ folder there"
            )

    def label_files(self, root: Path) -> list[str]:
        return [name for name in CSVS if (root / name).is_file()]

    def _metadata(self, root: Path) -> dict[tuple[str, str, str], str]:
        """(subject, study UID, series UID) -> series folder, from the Retriever's metadata.csv."""
        if not (root / METADATA_CSV).is_file():
            return {}
        out = {}
        with open(self.path(root, METADATA_CSV), newline="", encoding="utf-8-sig") as f:
            for row in csv.DictReader(f):
                try:
                    key = (row["Subject ID"].strip(), row["Study UID"].strip(),
                           row["Series UID"].strip())
                    loc = row["File Location"].strip().replace("\\", "/")
                except (KeyError, AttributeError):
                    continue
                while loc.startswith("./"):
                    loc = loc[2:]
                out[key] = loc
        return out

    def _series_dir(self, root: Path, key: tuple[str, str, str],
                    metadata: dict[tuple[str, str, str], str]) -> str | None:
        """The series folder (relative to root) of a CSV path, or None when absent."""
        subject, study, series = key
        direct = f"{subject}/{study}/{series}"
        if (root / direct).is_dir():
            return direct
        loc = metadata.get(key)
        if loc and ".." not in loc.split("/") and (root / loc).is_dir():
            return loc
        base = root / TREE / subject
        if not base.is_dir():
            return None
        found = [p for p in sorted(base.glob("*/*"))
                 if p.is_dir() and p.parent.name.endswith("-" + study[-5:])
                 and p.name.endswith("-" + series[-5:])]
        return found[0].relative_to(root).as_posix() if len(found) == 1 else None

    def _dicoms(self, root: Path, rel: str | None) -> list[str]:
        if rel is None:
            return []
        return [f"{rel}/{p.name}" for p in sorted((root / rel).iterdir())
                if p.suffix.lower() == ".dcm"]

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per breast and abnormality; reads the CSVs and metadata.csv and lists
        series folders (no DICOM file is opened). A malformed row is a BadRow."""
        self.check_root(root)
        metadata = self._metadata(root)
        groups: dict[tuple[str, str, str, str, int], list[dict[str, Any]]] = defaultdict(list)
        for name, (kind, split) in CSVS.items():
            if not (root / name).is_file():
                continue
            with open(self.path(root, name), newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                for row in reader:
                    try:
                        parsed = parse_row(row, kind)
                    except (ValueError, KeyError, TypeError) as exc:
                        yield BadRow(name, reader.line_num, row_error_reason(exc),
                                     type(exc).__name__)
                        continue
                    groups[(split, parsed["patient"], parsed["side"], kind,
                            parsed["abnormality_id"])].append(parsed)
        seen: dict[str, str] = {}
        for (split, patient, side, kind, abn), rows in sorted(groups.items()):
            record_id = f"{patient}_{side}_{kind}{abn}"
            if record_id in seen:
                yield BadRow(next(n for n, (k, s) in CSVS.items() if (k, s) == (kind, split)), 0,
                             f"abnormality {record_id} is in both the train and the test CSV")
                continue
            seen[record_id] = split
            rows.sort(key=lambda r: ROLES.index(VIEW_ROLES[r["view"]]))
            views, files = [], []
            for r in rows:
                image_dir = self._series_dir(root, r["image"], metadata)
                roi_dirs = sorted({d for d in (self._series_dir(root, r["mask"], metadata),
                                               self._series_dir(root, r["crop"], metadata)) if d})
                image_files = self._dicoms(root, image_dir)
                roi_files = [f for d in roi_dirs for f in self._dicoms(root, d)]
                views.append({"role": VIEW_ROLES[r["view"]], "image": image_files,
                              "roi": roi_files})
                files += [f for f in image_files + roi_files if f not in files]
            yield RawRecord(
                record_id=record_id,
                subject_id=patient,
                files=files,
                source_labels={"assessment": [r["assessment"] for r in rows],
                               "pathology": [r["pathology"] for r in rows]},
                split=self.carve_val(split, patient),  # type: ignore[arg-type]
                size_bytes=sum((root / f).stat().st_size for f in files if (root / f).is_file()),
                meta={
                    "laterality": side,
                    "abnormality_type": "mass" if kind == "mass" else "calcification",
                    "abnormality_id": abn,
                    "views": views,
                    "rows": [{"role": VIEW_ROLES[r["view"]], "assessment": r["assessment"],
                              "pathology": r["pathology"], "subtlety": r["subtlety"],
                              "breast_density": r["breast_density"],
                              "mass_shape": r["mass_shape"], "mass_margins": r["mass_margins"],
                              "calc_type": r["calc_type"],
                              "calc_distribution": r["calc_distribution"]} for r in rows],
                },
            )

    def label_classes(self) -> list[str]:
        return [c for c in LABELS if c != "BI-RADS 0" or self._options["birads_zero"] == "keep"]

    def _mask(self, root: Path, candidates: list[str], shape: tuple[int, int],
              role: str) -> np.ndarray:
        """The ROI mask among `candidates`: the file whose header size is the full image's."""
        same = []
        for rel in candidates:
            ds = read_dataset(self.path(root, rel), pixels=False)
            if (int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)) == shape:
                same.append(rel)
        if len(same) != 1:
            raise RecordError(
                f"{role.upper()} ROI mask: {len(same)} of the {len(candidates)} ROI files are the "
                f"size of the full image {shape[0]} x {shape[1]} (need exactly one); the mask is "
                "not aligned with its image or the ROI series is incomplete")
        mask = read_image(self.path(root, same[0]), monochrome1="keep").pixels
        values = np.unique(mask)
        if mask.ndim != 2 or not set(values.tolist()) <= {0, 255} or values[-1] != 255:
            raise RecordError(f"{role.upper()} ROI mask holds values other than 0 and 255, or no "
                              "outline: not a CBIS-DDSM mask")
        return mask.astype(np.uint8)

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        views = record.meta["views"]
        require_views([v["role"] for v in views], ONE_VIEW)
        assessment = max(record.source_labels["assessment"])
        if assessment == 0 and self._options["birads_zero"] == "drop":
            raise Filtered(BIRADS_ZERO)
        side, kind = record.meta["laterality"], record.meta["abnormality_type"]
        payloads: dict[str, Payload] = {}
        view_meta: dict[str, dict[str, Any]] = {}
        for v in views:
            role = v["role"]
            if len(v["image"]) != 1:
                raise RecordError(f"{role.upper()} full image series not found (or not one "
                                  f"file: {len(v['image'])}); put the NBIA download's "
                                  "metadata.csv in the source folder")
            payload, view_meta[role] = view_payload(
                self.path(root, v["image"][0]), role.upper(), side,
                monochrome1=self._options["monochrome1"], burned_in=self._options["burned_in"])
            payloads[role] = payload
            shape = (payload.descriptor["height"], payload.descriptor["width"])
            payloads[f"{role}_mask"] = Payload(
                "mask", self._mask(root, v["roi"], shape, role),
                {"annotates": role, "label_names": {"0": "background", "255": kind}})
        yield Sample(
            classes=[f"BI-RADS {assessment}"],
            source_labels=record.source_labels,
            payloads=payloads,
            meta={**breast_meta(view_meta), "laterality": side, "abnormality_type": kind,
                  "abnormality_id": record.meta["abnormality_id"], "rows": record.meta["rows"]},
            task="classification",
        )
