"""CoronaHack: 5,910 chest radiographs, normal or pneumonia (bacterial, viral, COVID-19).

Raw layout (Kaggle praveengovi/coronahack-chest-xraydataset):
    Chest_xray_Corona_Metadata.csv
        an unnamed index column, X_ray_image_name, Label ("Normal" / "Pnemonia", sic),
        Dataset_type ("TRAIN" / "TEST"), Label_2_Virus_category (blank, "COVID-19",
        "SARS", "Streptococcus", "ARDS"), Label_1_Virus_category (blank, "bacteria",
        "Virus", "Stress-Smoking"); columns read by name
    Chest_xray_Corona_dataset_Summary.csv   counts per class (not read)
    Coronahack-Chest-XRay-Dataset/Coronahack-Chest-XRay-Dataset/{train,test}/<image name>
    Kaggle's archive nests the image folder twice; a root where it is unpacked once
    (`Coronahack-Chest-XRay-Dataset/{train,test}/`) is read too.

Sources: the Kaggle dataset page; CLIMB code `src/datasets/chest_xray/coronahack.py`
(the paths and columns it reads); public notebooks that print the metadata columns. The
images are Kermany et al.'s paediatric radiographs (JPEG) plus COVID-19/SARS/ARDS images
from Cohen et al.'s covid-chestxray-dataset (JPEG or PNG).

Labels. `source_labels` keeps the row's Label, Label_1_Virus_category and
Label_2_Virus_category verbatim (blank as ""). Classes:
  - Label "Normal" -> "Normal";
  - Label_1 "bacteria" -> "Bacterial Pneumonia" (Streptococcus included);
  - Label_1 "Virus" -> "Viral Pneumonia" (SARS included), except Label_2 "COVID-19" ->
    "COVID-19";
  - Label_1 "Stress-Smoking" (Label_2 "ARDS"; not an infectious pneumonia class) is
    filtered and counted, as CLIMB drops it.
CLIMB folds the COVID-19 images into "Viral Pneumonia" (3 classes). Here they are their own
class, because Label_2 says which they are: "COVID-19" maps to cxr.pneumonia,
cxr.viral-pneumonia and cxr.covid-19, so CLIMB's viral class is still the concept
cxr.viral-pneumonia, and the non-COVID viral images are decidable negatives for COVID-19
(Kermany's images predate the pandemic). docs/vocabulary.md has the map.

Split: the official Dataset_type (TRAIN / TEST, the image folders). Val is carved from
TRAIN by a keyed hash of the subject (`val_fraction`). The subject is the patient where a
file name carries one (Kermany's person<N>_<bacteria|virus>_<M>: "person<N>"), else the
image: the Kaggle release has no patient column, so Kermany's normal images and the
COVID-19 images are image-level units.

Images: the JPEG/PNG bytes as shipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from medshard.schemas import BadRow, Filtered, License, Payload, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import CarveValOptions, Source
from medshard.sources.cxr.pneumonia_images import (
    image_record_id,
    kermany_patient,
)

SLUG = "coronahack"
METADATA = "Chest_xray_Corona_Metadata.csv"
IMAGE_DIRS = ("Coronahack-Chest-XRay-Dataset/Coronahack-Chest-XRay-Dataset",
              "Coronahack-Chest-XRay-Dataset")
CLASSES = ("Normal", "Bacterial Pneumonia", "Viral Pneumonia", "COVID-19")
DATASET_TYPES = {"TRAIN": "train", "TEST": "test"}
STRESS_SMOKING = "Stress-Smoking"


def class_of(label: str, label_1: str, label_2: str) -> str | None:
    """The class of a metadata row; None for the Stress-Smoking (ARDS) rows.

    Raises ValueError for a combination the release does not have."""
    if label == "Normal":
        if label_1:
            raise ValueError(f"Label 'Normal' with Label_1_Virus_category {label_1!r}")
        return "Normal"
    if label not in ("Pnemonia", "Pneumonia"):
        raise ValueError(f"Label {label!r} is not 'Normal' or 'Pnemonia'")
    if label_1 == "bacteria":
        return "Bacterial Pneumonia"
    if label_1 == "Virus":
        return "COVID-19" if label_2 == "COVID-19" else "Viral Pneumonia"
    if label_1 == STRESS_SMOKING:
        return None
    raise ValueError(f"Label_1_Virus_category {label_1!r} is not bacteria, Virus or "
                     f"{STRESS_SMOKING}")


class CoronaHack(Source):
    Options = CarveValOptions
    fixture = "medshard.sources.cxr.coronahack_fixture:FIXTURE"
    payload_members = ("image.jpg", "image.png")
    required_files = (METADATA,)
    root_hint = ("the data root must be the folder unpacked from the Kaggle archive (it holds "
                 "the metadata CSV and Coronahack-Chest-XRay-Dataset/)")
    info: ClassVar[SourceInfo] = SourceInfo(
        name=SLUG,
        title="CoronaHack: chest X-ray dataset (normal, bacterial, viral and COVID-19 pneumonia)",
        version="Kaggle release as downloaded (the dataset page shows no pinned version)",
        modality="chest-xray",
        tasks=["classification"],
        license=License(
            name="CC BY 4.0",
            spdx="CC-BY-4.0",
            url="https://www.kaggle.com/datasets/praveengovi/coronahack-chest-xraydataset",
            terms_version="4.0",
        ),
        access="open",
        homepage="https://www.kaggle.com/datasets/praveengovi/coronahack-chest-xraydataset",
        citation=(
            "Praveen Govi. CoronaHack - Chest X-Ray-Dataset. Kaggle (2020). Images from "
            "Kermany D, Zhang K, Goldbaum M. Labeled Optical Coherence Tomography (OCT) and "
            "Chest X-Ray Images for Classification. Mendeley Data v2 (2018), "
            "doi:10.17632/rscbjbr9sj.2; and Cohen JP, Morrison P, Dao L. COVID-19 image data "
            "collection. arXiv:2003.11597 (2020)."
        ),
        label_space=list(CLASSES),
        split_policy="the official Dataset_type (TRAIN/TEST); val = keyed hash of the "
        "subject over TRAIN (val_fraction, default 0.1)",
        split_unit="patient where the file name carries one (Kermany's person<N>), else "
        "the image (normal and COVID-19 images carry no patient identity)",
        release_notes={"0.1.0": "first medshard adapter"},
        published_counts=PublishedCounts(
            train=5284, test=624, unit="images",
            reference="CLIMB A.2 (CLIMB counts COVID-19 images as Viral Pneumonia and drops "
            "Stress-Smoking)",
        ),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="kaggle", dataset="praveengovi/coronahack-chest-xraydataset"
    )

    def image_dir(self, root: Path) -> str:
        for rel in IMAGE_DIRS:
            if (root / rel / "train").is_dir() or (root / rel / "test").is_dir():
                return rel
        return IMAGE_DIRS[0]

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        self.check_root(root)
        images = self.image_dir(root)
        seen: set[str] = set()

        def parse(row: dict[str, str]) -> RawRecord:
            record = self._record(root, images, row)
            if record.record_id in seen:
                raise ValueError(f"image {row['X_ray_image_name']!r} is listed twice "
                                 f"(record id {record.record_id})")
            seen.add(record.record_id)
            return record

        yield from self.csv_records(root, METADATA, parse, encoding="utf-8-sig")

    def _record(self, root: Path, images: str, row: dict[str, str]) -> RawRecord:
        name = row["X_ray_image_name"].strip()
        if not name:
            raise ValueError("X_ray_image_name is blank")
        dataset_type = row["Dataset_type"].strip()
        if dataset_type not in DATASET_TYPES:
            raise ValueError(f"Dataset_type {dataset_type!r} is not TRAIN or TEST")
        official = DATASET_TYPES[dataset_type]
        labels = {
            "Label": row["Label"].strip(),
            "Label_1_Virus_category": (row.get("Label_1_Virus_category") or "").strip(),
            "Label_2_Virus_category": (row.get("Label_2_Virus_category") or "").strip(),
        }
        cls = class_of(labels["Label"], labels["Label_1_Virus_category"],
                       labels["Label_2_Virus_category"])
        rel = f"{images}/{official}/{name}"
        record_id = image_record_id(official, name)
        subject = kermany_patient(name) or record_id
        file = root / rel
        meta: dict[str, Any] = {
            "class": cls,
            "dataset_type": dataset_type,
            "file_name": name,
            "patient_from_file_name": kermany_patient(name) is not None,
        }
        return RawRecord(
            record_id=record_id,
            subject_id=subject,
            files=[rel],
            source_labels=labels,
            split=self.carve_val(official, subject),  # type: ignore[arg-type]
            size_bytes=file.stat().st_size if file.is_file() and not file.is_symlink() else 0,
            meta=meta,
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        cls = record.meta["class"]
        if cls is None:
            raise Filtered(f"{STRESS_SMOKING} (ARDS): not one of the pneumonia classes")
        data = self.read_bytes(root, record.files[0])
        yield Sample(
            classes=[cls],
            source_labels=record.source_labels,
            payloads={"image": Payload("image", data, {"view": None})},
            meta={k: v for k, v in record.meta.items() if k != "class"},
            task="classification",
        )
