"""VinDr-Mammo: 5,000 four-view screening mammography exams (DICOM) with breast-level BI-RADS.

Raw layout (PhysioNet 1.0.0, https://physionet.org/content/vindr-mammo/1.0.0/):
    images/<study_id>/<image_id>.dicom      one exam per study, four views (L/R x CC/MLO)
    breast-level_annotations.csv            one row per image:
        study_id, series_id, image_id, laterality (L|R), view_position (CC|MLO), height,
        width, breast_birads ("BI-RADS 1" ... "BI-RADS 5"), breast_density
        ("DENSITY A" ... "DENSITY D"), split ("training" | "test")
    finding_annotations.csv                 one row per finding (or "No Finding" row):
        study_id, series_id, image_id, laterality, view_position, height, width,
        breast_birads, breast_density, finding_categories (a Python list literal, e.g.
        "['Mass', 'Suspicious Calcification']"), finding_birads, xmin, ymin, xmax, ymax,
        split
    metadata.csv                            DICOM attributes per image (not read: the
                                            files' own headers are, through the allow-list)

Sources: the PhysioNet project page and Nguyen et al., Scientific Data 10, 277 (2023);
the column order as CLIMB reads it (`DDVD233/CLIMB:src/datasets/mammo/vindr.py`: columns
0, 1, 2, 7, 9 are study_id, series_id, image_id, breast_birads, split) and as
third-party readers list the breast-level columns; the finding columns and the list
literal in finding_categories from third-party readers (public code), not re-checked
against the release.

Sample: one breast (`<study_id>_<L|R>`), its CC and MLO images as roles `cc` and `mlo`
(`medshard.sources.mammo.views`); a breast without both views is filtered. The label is
the breast's `breast_birads` ("BI-RADS N", the dataset's breast-level assessment after
double reading and arbitration). Both rows of a breast carry it; where they disagree
the higher category is the label (the more suspicious reading) and `source_labels`
keeps each view's value verbatim. `breast_density` goes to meta, with the findings:
{"role", "image_id", "categories", "finding_birads", "box_xyxy"} per finding row (pixels
of that view's stored image, x is the column; null box for rows without coordinates).
"No Finding" rows are not findings and are left out of that list.

Pixels: `medshard.formats.dicom` (modality LUT applied losslessly, MONOCHROME1 inverted
to MONOCHROME2 unless `monochrome1="keep"`, allow-listed tags only). The index's
height/width must match the decoded image, else the record is quarantined (a boxes'
frame that is not the image's).

Split: the official `split` column (training -> train, test -> test). Validation is
carved from train by a keyed hash of the study (`val_fraction`, default 0.1, key
"medshard-split:vindr-mammo"): both breasts of an exam stay together. The release is
de-identified to the exam: it names no patient, so each exam counts as its own subject;
two exams of one woman, if the collection holds any, cannot be linked and may land in
train and val.
"""

from __future__ import annotations

import ast
import csv
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from medshard.schemas import (
    BadRow,
    License,
    RawRecord,
    RecordError,
    Sample,
    SourceInfo,
)
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import (
    CarveValOptions,
    DicomImageOptions,
    MissingRawData,
    Source,
    row_error_reason,
)
from medshard.sources.mammo.views import (
    ROLES,
    VIEW_ROLES,
    breast_meta,
    require_views,
    view_payload,
)

SLUG = "vindr-mammo"
LABELS: tuple[str, ...] = tuple(f"BI-RADS {n}" for n in range(1, 6))
BREAST_CSV = "breast-level_annotations.csv"
FINDING_CSV = "finding_annotations.csv"
SPLITS = {"training": "train", "test": "test"}
BREAST_COLUMNS = ("study_id", "series_id", "image_id", "laterality", "view_position", "height",
                  "width", "breast_birads", "breast_density", "split")
_ID = re.compile(r"^[A-Za-z0-9_-]+$")  # a record id part, safe in a shard member name


def _id(text: str | None, what: str) -> str:
    value = (text or "").strip()
    if not _ID.match(value):
        raise ValueError(f"{what} {value!r} is not a VinDr-Mammo id (letters, digits, _ and -)")
    return value


def _side(text: str | None) -> str:
    side = (text or "").strip().upper()
    if side not in ("L", "R"):
        raise ValueError(f"laterality {text!r} is not L or R")
    return side


def parse_breast_row(row: dict[str, str]) -> dict[str, Any]:
    """One image row of breast-level_annotations.csv, checked (ValueError/KeyError if not)."""
    view = (row["view_position"] or "").strip().upper()
    if view not in VIEW_ROLES:
        raise ValueError(f"view_position {row['view_position']!r} is not CC or MLO")
    birads = (row["breast_birads"] or "").strip()
    if birads not in LABELS:
        raise ValueError(f"breast_birads {birads!r} is not one of {', '.join(LABELS)}")
    split = (row["split"] or "").strip()
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not training or test")
    return {
        "study_id": _id(row["study_id"], "study_id"),
        "image_id": _id(row["image_id"], "image_id"),
        "laterality": _side(row["laterality"]),
        "view_position": view,
        "height": int(row["height"]),
        "width": int(row["width"]),
        "breast_birads": birads,
        "breast_density": (row["breast_density"] or "").strip() or None,
        "split": SPLITS[split],
    }


def parse_finding_row(row: dict[str, str]) -> dict[str, Any] | None:
    """One row of finding_annotations.csv as a finding, or None for a "No Finding" row."""
    categories = ast.literal_eval((row["finding_categories"] or "").strip())
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise ValueError("finding_categories is not a list of names")
    if categories == ["No Finding"]:
        return None
    cells = [(row[c] or "").strip() for c in ("xmin", "ymin", "xmax", "ymax")]
    box = [float(c) for c in cells] if all(cells) else None
    return {
        "study_id": _id(row["study_id"], "study_id"),
        "image_id": _id(row["image_id"], "image_id"),
        "laterality": _side(row["laterality"]),
        "view_position": (row["view_position"] or "").strip().upper(),
        "categories": categories,
        "finding_birads": (row["finding_birads"] or "").strip() or None,
        "box_xyxy": box,
    }


def _breast_of(row: dict[str, str]) -> tuple[str, str] | None:
    """(study, side) of a row that failed to parse, when those two cells are readable."""
    try:
        return _id(row.get("study_id"), "study_id"), _side(row.get("laterality"))
    except ValueError:
        return None


class VinDrMammoOptions(DicomImageOptions, CarveValOptions):
    """DICOM image options and the val carve; nothing specific to VinDr-Mammo."""


class VinDrMammo(Source):
    Options = VinDrMammoOptions
    fixture = "medshard.sources.mammo.vindr_mammo_fixture:FIXTURE"
    payload_members = ("cc.png", "mlo.png")
    required_files = (BREAST_CSV,)
    root_hint = ("it must be the VinDr-Mammo 1.0.0 folder that holds "
                 "breast-level_annotations.csv and images/")
    info: ClassVar[SourceInfo] = SourceInfo(
        name=SLUG,
        title="VinDr-Mammo: a large-scale benchmark dataset for computer-aided diagnosis in "
        "full-field digital mammography",
        version="1.0.0",
        modality="mammography",
        tasks=["classification", "detection"],
        license=License(
            name="PhysioNet Restricted Health Data License 1.5.0",
            url="https://physionet.org/content/vindr-mammo/view-license/1.0.0/",
            terms_version="1.5.0",
        ),
        access="registration",
        homepage="https://physionet.org/content/vindr-mammo/1.0.0/",
        citation=(
            "Nguyen HT, Nguyen HQ, Pham HH, et al. VinDr-Mammo: A large-scale benchmark dataset "
            "for computer-aided diagnosis in full-field digital mammography. Scientific Data "
            "10, 277 (2023). PhysioNet, https://doi.org/10.13026/br2v-7517"
        ),
        label_space=list(LABELS),
        split_policy=(
            "official split column (training/test); val = a keyed hash of the exam over "
            "training (val_fraction, default 0.1)"
        ),
        split_unit="exam (the release names no patient, so exams of one woman cannot be "
        "linked)",
        release_notes={"0.1.0": "first medshard adapter, VinDr-Mammo 1.0.0: one sample per "
                       "breast with CC and MLO roles"},
        published_counts=PublishedCounts(
            train=16000, test=4000, unit="images (CLIMB counts each view; medshard writes one "
            "sample per breast, two views each: 8,000 / 2,000 breasts)",
            reference="CLIMB Table 7 / A.2",
        ),
    )

    # PhysioNet restricted-access project (DUA): SHA256SUMS.txt lists every file
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="physionet", project="vindr-mammo", version="1.0.0"
    )

    def label_files(self, root: Path) -> list[str]:
        return [f for f in (BREAST_CSV, FINDING_CSV) if (root / f).is_file()]

    def _rows(self, root: Path, rel: str) -> Iterator[tuple[int, dict[str, str]]]:
        with open(self.path(root, rel), newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in BREAST_COLUMNS if c not in (reader.fieldnames or [])]
            if rel == BREAST_CSV and missing:
                raise MissingRawData(f"{SLUG}: {rel} lacks the columns {missing}; re-download "
                                     "the VinDr-Mammo 1.0.0 annotations")
            for row in reader:
                yield reader.line_num, row

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per breast (study, laterality) of breast-level_annotations.csv; reads
        the two CSVs only. A malformed row is a BadRow and its breast is left out."""
        self.check_root(root)
        skip: set[tuple[str, str]] = set()
        breasts: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for line, row in self._rows(root, BREAST_CSV):
            try:
                parsed = parse_breast_row(row)
            except (ValueError, KeyError, TypeError) as exc:
                yield BadRow(BREAST_CSV, line, row_error_reason(exc), type(exc).__name__)
                if (breast := _breast_of(row)) is not None:
                    skip.add(breast)
                continue
            breasts[(parsed["study_id"], parsed["laterality"])].append(parsed)
        findings: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        if (root / FINDING_CSV).is_file():
            for line, row in self._rows(root, FINDING_CSV):
                try:
                    finding = parse_finding_row(row)
                except (ValueError, KeyError, TypeError, SyntaxError) as exc:
                    yield BadRow(FINDING_CSV, line, row_error_reason(exc), type(exc).__name__)
                    if (breast := _breast_of(row)) is not None:
                        skip.add(breast)
                    continue
                if finding is not None:
                    findings[(finding["study_id"], finding["laterality"])].append(finding)
        for (study, side), rows in sorted(breasts.items()):
            if (study, side) in skip:
                continue
            rows.sort(key=lambda r: (ROLES.index(VIEW_ROLES[r["view_position"]]), r["image_id"]))
            splits = {r["split"] for r in rows}
            if len(splits) != 1:  # an exam in two splits: the index contradicts itself
                yield BadRow(BREAST_CSV, 0, f"breast {study}_{side} has rows in both splits")
                continue
            files = [f"images/{study}/{r['image_id']}.dicom" for r in rows]
            views = [VIEW_ROLES[r["view_position"]] for r in rows]
            by_image = {r["image_id"]: VIEW_ROLES[r["view_position"]] for r in rows}
            yield RawRecord(
                record_id=f"{study}_{side}",
                subject_id=study,
                files=files,
                source_labels={
                    "breast_birads": [r["breast_birads"] for r in rows],
                    "breast_density": [r["breast_density"] for r in rows],
                },
                split=self.carve_val(splits.pop(), study),  # type: ignore[arg-type]
                size_bytes=sum((root / f).stat().st_size for f in files if (root / f).is_file()),
                meta={
                    "study_id": study,
                    "laterality": side,
                    "views": [{"role": v, "image_id": r["image_id"], "height": r["height"],
                               "width": r["width"]} for v, r in zip(views, rows, strict=True)],
                    "findings": [
                        {"role": by_image.get(f["image_id"]), "image_id": f["image_id"],
                         "categories": f["categories"], "finding_birads": f["finding_birads"],
                         "box_xyxy": f["box_xyxy"]}
                        for f in sorted(findings.get((study, side), []),
                                        key=lambda f: (f["image_id"], f["box_xyxy"] or [],
                                                       f["categories"]))
                    ],
                },
            )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        views = record.meta["views"]
        require_views([v["role"] for v in views])
        side = record.meta["laterality"]
        payloads, view_meta = {}, {}
        for v, rel in zip(views, record.files, strict=True):
            payload, meta = view_payload(self.path(root, rel), v["role"].upper(), side,
                                         monochrome1=self._options["monochrome1"],
                                         burned_in=self._options["burned_in"])
            shape = (payload.descriptor["height"], payload.descriptor["width"])
            if shape != (v["height"], v["width"]):
                raise RecordError(f"{v['role'].upper()} image is {shape[0]} x {shape[1]}, the "
                                  f"index says {v['height']} x {v['width']}")
            payloads[v["role"]], view_meta[v["role"]] = payload, meta
        birads = record.source_labels["breast_birads"]
        density = [d for d in record.source_labels["breast_density"] if d]
        yield Sample(
            classes=[max(birads, key=LABELS.index)],
            source_labels=record.source_labels,
            payloads=payloads,
            meta={
                **breast_meta(view_meta),
                "study_id": record.meta["study_id"],
                "laterality": side,
                "breast_density": density[0] if density else None,
                "findings": record.meta["findings"],
            },
            task="classification",
        )
