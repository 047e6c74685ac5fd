"""VinDr-CXR: 18,000 posteroanterior chest X-rays (DICOM) with radiologist labels and boxes.

Raw layout (PhysioNet 1.0.0, https://physionet.org/content/vindr-cxr/1.0.0/):
    train/<image_id>.dicom        15,000 images, each read by 3 of 17 radiologists
    test/<image_id>.dicom          3,000 images, labelled by the consensus of 5
    annotations/image_labels_{train,test}.csv
        image_id, rad_id, then one 0/1 column per label, 28 columns in this order:
        22 findings (Aortic enlargement ... Other lesion) then 6 diagnoses (COPD, Lung
        tumor, Pneumonia, Tuberculosis, Other diseases, No finding); one row per reader
        (train), the consensus row (test). The test file spells one column "Other
        disease": it is read as "Other diseases". rad_id is optional (test; "" when absent,
        so the field is a string in every sample).
    annotations/annotations_{train,test}.csv
        image_id, rad_id, class_name, x_min, y_min, x_max, y_max: one box per reader and
        finding, in pixels of the DICOM image; rows without coordinates ("No finding")
        carry no box.

Labels. `classes` are the CSV column names verbatim. Readers are aggregated per image
by the `reader_aggregation` option:
  - "majority" (default): positive when more than half of the image's readers marked
    it (2 of 3 in train; the consensus row in test). With 3 readers this never yields
    "No finding" together with a finding, which "any" can.
  - "any": positive when at least one reader marked it.
  - "all": positive only when every reader marked it.
A blank cell counts as not marked. `source_labels` keeps every reader's vote
verbatim: {label: [vote of each reader, in `meta["readers"]` order]}.
Boxes of every reader travel in `meta["annotations"]` as
{"rad_id", "class_name", "box_xyxy": [x_min, y_min, x_max, y_max]} (pixels of the
stored image, which is at native resolution; x is the column).

Pixels and de-identification: `medshard.formats.dicom` (modality LUT applied
losslessly, VOI window kept but not applied, MONOCHROME1 inverted to MONOCHROME2
unless `monochrome1="keep"`, allow-listed tags only). VinDr-CXR ships its radiographs
in both polarities; inverting makes one build hold one (CLIMB's loader mixes them).

Split: the official train/test folders. Validation is carved from train by a keyed
hash of the subject (`val_fraction` of the subjects, default 0.1, key
"medshard-split:vindr-cxr"). The subject is the DICOM PatientID where a file has one,
else the image id. VinDr-CXR's de-identified release carries no patient identity, so in
practice each image is its own subject and the train/val split is **image-level, not
patient-level**: two images of one patient can land in train and val. `info.split_unit`,
`medshard info` and the manifest say so.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from medshard.formats.dicom import read_image, read_patient_id
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
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import CarveValOptions, DicomImageOptions, MissingRawData, Source

SLUG = "vindr-cxr"

# Column order of image_labels_{train,test}.csv after image_id, rad_id.
LOCAL_LABELS: tuple[str, ...] = (
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Clavicle fracture",
    "Consolidation", "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration",
    "Lung Opacity", "Lung cavity", "Lung cyst", "Mediastinal shift", "Nodule/Mass",
    "Pleural effusion", "Pleural thickening", "Pneumothorax", "Pulmonary fibrosis",
    "Rib fracture", "Other lesion",
)
GLOBAL_LABELS: tuple[str, ...] = (
    "COPD", "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases", "No finding",
)
LABELS: tuple[str, ...] = LOCAL_LABELS + GLOBAL_LABELS
# Spellings that differ between the train and test files of the same release.
LABEL_ALIASES: dict[str, str] = {"Other disease": "Other diseases"}

SPLIT_DIRS = ("train", "test")
_BOX_COLUMNS = ("x_min", "y_min", "x_max", "y_max")
_IMAGE_ID = re.compile(r"^[A-Za-z0-9_-]+$")  # a record id, and safe in a shard member name


def _vote(text: str | None) -> int | float | None:
    """A label cell as written: 0/1 (or another number) or None when blank."""
    text = (text or "").strip()
    if not text:
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


def aggregate_readers(votes: dict[str, list[int | float | None]], rule: str) -> list[str]:
    """Labels (in LABELS order) that `rule` makes positive from per-reader votes."""
    out = []
    for label in LABELS:
        marks = votes.get(label, [])
        positive = sum(1 for v in marks if v == 1)
        n = len(marks)
        if n == 0:
            continue
        if (
            (rule == "majority" and 2 * positive > n)
            or (rule == "any" and positive >= 1)
            or (rule == "all" and positive == n)
        ):
            out.append(label)
    return out


def _open_csv(path: Path) -> tuple[csv.DictReader, Any]:
    f = open(path, newline="", encoding="utf-8-sig")
    return csv.DictReader(f), f


def read_image_labels(
    path: Path, bad: list[tuple[int, str, str]] | None = None
) -> dict[str, list[tuple[str | None, dict[str, Any]]]]:
    """image_id -> [(rad_id, {label: vote})] in file order, from image_labels_<split>.csv.

    A row with a non-numeric label cell is appended to `bad` as (line, image id, reason)
    and left out; without `bad` it raises MissingRawData.
    """
    reader, f = _open_csv(path)
    with f:
        header = [LABEL_ALIASES.get(c.strip(), c.strip()) for c in reader.fieldnames or []]
        unknown = [c for c in header if c not in LABELS and c not in ("image_id", "rad_id")]
        missing = [c for c in LABELS if c not in header]
        if "image_id" not in header or unknown or missing:
            raise MissingRawData(
                f"{SLUG}: {path.name} does not have the VinDr-CXR 1.0.0 columns "
                f"(unexpected {unknown[:3]}, missing {missing[:3]}); re-download the annotations"
            )
        rows: dict[str, list[tuple[str | None, dict[str, Any]]]] = defaultdict(list)
        for raw in reader:
            row = {LABEL_ALIASES.get(k.strip(), k.strip()): v for k, v in raw.items() if k}
            image_id = (row.get("image_id") or "").strip()
            if not image_id:
                continue
            try:
                votes = {label: _vote(row.get(label)) for label in LABELS}
            except ValueError as exc:
                if bad is not None:
                    bad.append((reader.line_num, image_id, f"non-numeric label cell: {exc}"))
                    continue
                raise MissingRawData(
                    f"{SLUG}: {path.name} has a non-numeric label cell for image {image_id}"
                ) from None
            rows[image_id].append(((row.get("rad_id") or "").strip(), votes))
    return rows


def read_boxes(
    path: Path, bad: list[tuple[int, str, str]] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """image_id -> boxes {"rad_id", "class_name", "box_xyxy"} from annotations_<split>.csv.

    A row with a non-numeric coordinate is appended to `bad` as (line, image id, reason)
    and left out (without `bad`: ValueError).
    """
    if not path.is_file():
        return {}
    reader, f = _open_csv(path)
    boxes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with f:
        for row in reader:
            image_id = (row.get("image_id") or "").strip()
            cells = [(row.get(c) or "").strip() for c in _BOX_COLUMNS]
            if not image_id or not all(cells):
                continue  # "No finding" rows have no box
            name = (row.get("class_name") or "").strip()
            try:
                box = [float(c) for c in cells]
            except ValueError as exc:
                if bad is None:
                    raise
                bad.append((reader.line_num, image_id, f"non-numeric box coordinate: {exc}"))
                continue
            boxes[image_id].append(
                {
                    "rad_id": (row.get("rad_id") or "").strip(),
                    "class_name": LABEL_ALIASES.get(name, name),
                    "box_xyxy": box,
                }
            )
    for items in boxes.values():
        items.sort(key=lambda b: (b["rad_id"] or "", b["class_name"], b["box_xyxy"]))
    return boxes


class VinDrCXROptions(DicomImageOptions, CarveValOptions):
    reader_aggregation: Literal["majority", "any", "all"] = Field(
        "majority", description="how the train set's 3 readers become one label per image"
    )


class VinDrCXR(Source):
    Options = VinDrCXROptions
    fixture = "medshard.sources.cxr.vindr_cxr_fixture:FIXTURE"
    payload_members = ("image.png", "image.npy")
    info: ClassVar[SourceInfo] = SourceInfo(
        name=SLUG,
        title="VinDr-CXR: An open dataset of chest X-rays with radiologist annotations",
        version="1.0.0",
        modality="chest-xray",
        tasks=["multi-label classification", "detection"],
        license=License(
            name="PhysioNet Credentialed Health Data License 1.5.0",
            url="https://physionet.org/content/vindr-cxr/view-license/1.0.0/",
            terms_version="1.5.0",
            credentialed=True,
        ),
        access="credentialed",
        homepage="https://physionet.org/content/vindr-cxr/1.0.0/",
        citation=(
            "Nguyen HQ, Lam K, Le LT, et al. VinDr-CXR: An open dataset of chest X-rays with "
            "radiologist's annotations. Scientific Data 9, 429 (2022). "
            "PhysioNet, https://doi.org/10.13026/3akn-b287"
        ),
        label_space=list(LABELS),
        split_policy=(
            "official train/test folders; val = a keyed hash of the subject over train "
            "(val_fraction, default 0.1); the subject is the image (no patient identity)"
        ),
        split_unit="image (the de-identified files carry no patient identity, so train/val "
        "is not patient-level)",
        release_notes={"0.1.0": "first medshard adapter, VinDr-CXR 1.0.0"},
        published_counts=PublishedCounts(
            train=15000, test=3000, unit="images",
            reference="CLIMB A.2",
        ),
    )


    # PhysioNet credentialed project: SHA256SUMS.txt lists and checksums every file
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="physionet", project="vindr-cxr", version="1.0.0"
    )


    def check_root(self, root: Path) -> None:
        super().check_root(root)
        needed = [f"annotations/image_labels_{s}.csv" for s in SPLIT_DIRS]
        absent = [n for n in needed if not (root / n).is_file()]
        if absent:
            raise MissingRawData(
                f"{SLUG}: {absent[0]} not found in {root}; it must be the VinDr-CXR 1.0.0 folder "
                "that holds annotations/, train/ and test/"
            )


    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per image listed in a label CSV or present as a .dicom file.

        Reads the CSVs and each DICOM header's PatientID (no pixels). A malformed label
        or box row is a BadRow, and its image is left out (its labels or boxes would be
        incomplete).
        """
        self.check_root(root)
        for split_dir in SPLIT_DIRS:
            labels_csv = f"annotations/image_labels_{split_dir}.csv"
            boxes_csv = f"annotations/annotations_{split_dir}.csv"
            bad_labels: list[tuple[int, str, str]] = []
            bad_boxes: list[tuple[int, str, str]] = []
            labels = read_image_labels(self.path(root, labels_csv), bad_labels)
            boxes = read_boxes(self.path(root, boxes_csv), bad_boxes)
            skip: set[str] = set()
            for rel_csv, bad in ((labels_csv, bad_labels), (boxes_csv, bad_boxes)):
                for line, image_id, reason in bad:
                    skip.add(image_id)
                    yield BadRow(rel_csv, line, f"image {image_id}: {reason}")
            on_disk = {p.stem for p in (root / split_dir).glob("*.dicom")}
            for image_id in sorted((set(labels) | on_disk) - skip):
                if not _IMAGE_ID.match(image_id):
                    raise MissingRawData(
                        f"{SLUG}: image id {image_id!r} in {split_dir}/ is not a VinDr-CXR id "
                        "(letters, digits, _ and - only); remove files that are not part of the release"
                    )
                rel = f"{split_dir}/{image_id}.dicom"
                path = root / rel
                readers = labels.get(image_id, [])
                try:
                    subject = (read_patient_id(self.path(root, rel))
                               if path.is_file() else None) or image_id
                except RecordError:  # a link out of the root: load() quarantines it
                    subject = image_id
                yield RawRecord(
                    record_id=image_id,
                    subject_id=subject,
                    files=[rel],
                    source_labels={
                        label: [votes[label] for _, votes in readers] for label in LABELS
                    }
                    if readers
                    else {},
                    split=self.carve_val(split_dir, subject),  # type: ignore[arg-type]
                    size_bytes=path.stat().st_size if path.is_file() else 0,
                    meta={
                        "readers": [rad for rad, _ in readers],
                        "annotations": boxes.get(image_id, []),
                    },
                )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        if not record.source_labels:
            raise Filtered("image has no rows in image_labels csv")
        rule = self._options["reader_aggregation"]
        image = read_image(self.path(root, record.files[0]),
                           monochrome1=self._options["monochrome1"],
                           burned_in=self._options["burned_in"])
        readers = record.meta.get("readers", [])
        meta: dict[str, Any] = {
            **image.meta,
            "readers": readers,
            "n_readers": len(readers),
            "reader_aggregation": rule,
            "annotations": record.meta.get("annotations", []),
        }
        meta["view"] = image.descriptor.get("view") or None  # every key in every sample
        yield Sample(
            classes=aggregate_readers(record.source_labels, rule),
            source_labels=record.source_labels,
            payloads={"image": Payload("image", image.pixels, image.descriptor)},
            meta=meta,
            task="multi-label classification",
        )
