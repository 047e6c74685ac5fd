"""CheXpert: 224,316 chest radiographs of 65,240 patients (Stanford ML Group), v1.0.

Raw layout (as Stanford AIMI ships it; the `-small` variant has downsampled JPEGs):
    CheXpert-v1.0[-small]/train.csv, valid.csv
    CheXpert-v1.0[-small]/{train,valid}/patientNNNNN/studyN/viewN_{frontal,lateral}.jpg
CSV columns: Path, Sex, Age, Frontal/Lateral, AP/PA, then the 14 observations. `Path`
starts with the release folder name (`CheXpert-v1.0-small/train/...`). The data root may
be the folder holding the release folder, or the release folder itself.

Labels. Each observation is 1.0 (positive), 0.0 (negative), -1.0 (uncertain) or blank
(not mentioned); `source_labels` keeps the cells as written, as text ("1.0", "-1.0", "" for
blank: one JSON type in every sample). Unified labels follow
the `uncertain` option: "negative" (default, as CLIMB: only positives count) or
"positive" (the U-Ones policy of the CheXpert paper). The cells, the policy and the
classes come from `medshard.sources.cxr.chexpert_labels`, which MIMIC-CXR shares.

Split: `valid.csv` (radiologist-labelled) is test, as in CLIMB; `train.csv` is split
into train/val by a keyed hash of the patient, so no patient is in two splits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from medshard.schemas import BadRow, License, Payload, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import CarveValOptions, MissingRawData, Source
from medshard.sources.cxr.chexpert_labels import (
    OBSERVATIONS,
    UncertainPolicy,
    observation_cells,
    observation_classes,
    uncertain_option,
)

RELEASE_DIRS = ("CheXpert-v1.0-small", "CheXpert-v1.0")


class CheXpertOptions(CarveValOptions):
    uncertain: UncertainPolicy = uncertain_option()  # type: ignore[assignment]


class CheXpert(Source):
    Options = CheXpertOptions
    fixture = "medshard.sources.cxr.chexpert_fixture:FIXTURE"

    payload_members = ("image.jpg",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="chexpert",
        title="CheXpert: a large chest radiograph dataset with uncertainty labels",
        version="1.0",
        modality="chest-xray",
        tasks=["multi-label classification"],
        license=License(
            name="Stanford University School of Medicine CheXpert Dataset Research Use Agreement",
            url="https://stanfordaimi.azurewebsites.net/datasets/8cbd9ed4-2eb9-4565-affc-111cf4f7ebe2",
            terms_version="2019",
            non_commercial=True,
        ),
        access="registration",
        homepage="https://stanfordmlgroup.github.io/competitions/chexpert/",
        citation=(
            "Irvin J, Rajpurkar P, Ko M, et al. CheXpert: A Large Chest Radiograph Dataset with "
            "Uncertainty Labels and Expert Comparison. AAAI 2019."
        ),
        label_space=list(OBSERVATIONS),
        split_policy="valid.csv is test; train.csv split train/val by keyed hash of the patient",
        release_notes={"0.1.0": "first medshard adapter, CheXpert v1.0 and v1.0-small"},
        published_counts=PublishedCounts(
            train=212243, test=225, unit="images",
            reference="CLIMB A.2; the paper's total 212,498 does not add up",
        ),
    )
    # Stanford AIMI hands out download links per registered user: steps, then verification.
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="manual",
        manual=ManualSteps(
            url="https://stanfordaimi.azurewebsites.net/datasets/8cbd9ed4-2eb9-4565-affc-111cf4f7ebe2",
            steps=[
                "Sign in (or register) at the Stanford AIMI page above and accept the "
                "Stanford University Dataset Research Use Agreement.",
                "Use the download link Stanford AIMI gives you (Azure storage) to download "
                "CheXpert-v1.0-small.zip, or the full CheXpert-v1.0 release.",
                "Put the zip file, or the folder unpacked from it, into the folder named below.",
            ],
            layouts={
                "small": [FileSpec(path="CheXpert-v1.0-small/train.csv"),
                          FileSpec(path="CheXpert-v1.0-small/valid.csv")],
                "full": [FileSpec(path="CheXpert-v1.0/train.csv"),
                         FileSpec(path="CheXpert-v1.0/valid.csv")],
                "flat": [FileSpec(path="train.csv"), FileSpec(path="valid.csv")],
            },
            archives=[FileSpec(path="CheXpert-v1.0-small.zip"), FileSpec(path="CheXpert-v1.0.zip")],
        ),
    )

    def release_dir(self, root: Path) -> Path:
        """The folder holding train.csv: the root itself or a release folder inside it."""
        if (root / "train.csv").is_file():
            return root
        for name in RELEASE_DIRS:
            if (root / name / "train.csv").is_file():
                return root / name
        raise MissingRawData(f"chexpert: train.csv not found in {root} or {root}/CheXpert-v1.0*/")

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        self.release_dir(root)

    def classes_for(self, labels: dict[str, str]) -> list[str]:
        return observation_classes(labels, self._options["uncertain"])

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        release = self.release_dir(root)
        prefix = release.relative_to(root).as_posix()
        for csv_name, official in (("train.csv", None), ("valid.csv", "test")):
            if not (release / csv_name).is_file():
                continue
            yield from self.csv_records(
                root, Path(prefix, csv_name).as_posix(),
                lambda row, official=official: self._record(root, prefix, row, official))

    def _record(self, root: Path, prefix: str, row: dict[str, str],
                official: str | None) -> RawRecord:
        """One CSV row as a record; raises (a bad row) when a cell is malformed."""
        # Path begins with the release folder name, whichever variant it is
        rel_in_release = Path(row["Path"]).parts[1:]
        if len(rel_in_release) < 4:
            raise ValueError(f"Path {row['Path']!r} is not <release>/<split>/patient/study/view")
        rel = Path(prefix, *rel_in_release).as_posix()
        patient, study = rel_in_release[-3], rel_in_release[-2]
        view = Path(rel_in_release[-1]).stem
        labels = observation_cells(row)
        split = official or self.carve_val("train", patient)
        # every key in every sample (null when the CSV cell is blank)
        meta: dict[str, Any] = {
            "view": row.get("Frontal/Lateral") or None,
            "ap_pa": row.get("AP/PA") or None,
            "sex": row.get("Sex") or None,
            "age": float(row["Age"]) if row.get("Age") else None,
            "study": study,
        }
        file = root / rel
        return RawRecord(
            record_id=f"{patient}_{study}_{view}",
            subject_id=patient,
            files=[rel],
            source_labels=labels,
            split=split,  # type: ignore[arg-type]
            size_bytes=file.stat().st_size if file.is_file() else 0,
            meta=meta,
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        data = self.read_bytes(root, record.files[0])
        meta = dict(record.meta)
        view = meta.get("ap_pa") or meta.get("view")
        yield Sample(
            classes=self.classes_for(record.source_labels),
            source_labels=record.source_labels,
            payloads={
                "image": Payload(
                    "image", data, {"view": view, "source_encoding": "jpeg", "bit_depth": 8}
                )
            },
            meta=meta,
            task="multi-label classification",
        )
