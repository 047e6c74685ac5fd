"""NIH LHNCBC malaria cell images: 27,558 segmented red blood cells, parasitized or uninfected.

Raw layout (cell_images.zip from the LHNCBC malaria datasheet):
    cell_images/Parasitized/<smear>_IMG_<date>_<time>[a-z]_cell_<n>.png   13,779
    cell_images/Uninfected/<smear>_IMG_<date>_<time>[a-z]_cell_<n>.png    13,779
Sources: the LHNCBC malaria datasheet (`cell_images.zip`, the archive TensorFlow Datasets'
`malaria` builder also reads); the Kaggle copy `iarunava/cell-images-for-detecting-malaria`
nests a second `cell_images/` inside.
PNG cells of varying size on a black background, cut from Giemsa-stained thin smears of
P. falciparum patients and healthy controls photographed through a smartphone on the
microscope (Rajaraman et al., PeerJ 2018). The zip also holds `Thumbs.db` files (skipped).
The root may hold `cell_images/`, `cell_images/cell_images/`, or the two class folders.

Patient / smear identity, as verified. The datasheet publishes two CSVs mapping patient
ids to cells (`patientid_cellmapping_parasitized.csv`, `..._uninfected.csv`); their
column layout could not be confirmed from here, so this adapter does not read them. The
cell file names carry the smear: the part before `_IMG_` is the smear id, e.g.
`C100P61ThinF` (parasitized) or `C1_thinF`, `C68P29N_ThinF` (uninfected), and
`<smear>_IMG_<date>_<time>` is the field image the cell was cut from (file names seen in
many public uses of the set, e.g. `C33P1thinF_IMG_20150619_114756a_cell_179.png`). The
`P<k>` token reads as the patient number (third-party builders group by these ids); smears
without it carry only the `C<k>` number. Subject, by the `subject` option:
  - "patient" (default): `P<k>` where the smear id has one, else the smear id: all smears
    of one patient number stay in one split;
  - "smear": the smear id (finer, more leakage if one patient has several smears).
Either way every cell of one field image and one smear stays in one split (a keyed hash
of the subject). What cannot be promised: that `P<k>` numbers and smears without one map
one-to-one onto people; the split unit is recorded as "smear/patient (from file names)".

Labels: the class folder, `Parasitized` or `Uninfected`, per cell (an uninfected cell may
come from an infected patient). No official split (CLIMB does not use this set;
MultiMed counts "27,560 pathology images").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from medshard.schemas import BadRow, License, Payload, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source, SourceOptions
from medshard.sources.folders import files_in, first_existing_dir

CLASSES = ("Parasitized", "Uninfected")
RELEASE_DIRS = ("cell_images/cell_images", "cell_images", "")
_NAME = re.compile(
    r"^(?P<smear>C(?P<c>\d+)(?:P(?P<p>\d{1,9}))?[A-Za-z_]*?)_?IMG_(?P<field>\d{8}_\d{6}[a-z]?)"
    r"_cell_(?P<cell>\d{1,9})\.png$")


def parse_cell_name(name: str) -> dict[str, str | int | None]:
    """The smear, patient number, field image and cell number in a cell file name."""
    m = _NAME.match(name)
    if m is None:
        raise ValueError(f"file name {name!r} is not <smear>_IMG_<date>_<time>_cell_<n>.png")
    smear = m["smear"].rstrip("_")
    return {
        "smear": smear,
        "patient": f"P{int(m['p'])}" if m["p"] is not None else None,
        "field_image": f"{smear}_IMG_{m['field']}",
        "cell": int(m["cell"]),
    }


def cell_record_id(cls: str, parsed: dict) -> str:
    """`P_C100P61ThinF_20150918144104_162`: class initial, smear, field time, cell number.

    Short enough that the sample key stays within a tar member name (the file name itself
    would not: the pipeline would hash it, for some cells and not others)."""
    field = str(parsed["field_image"]).split("_IMG_", 1)[1].replace("_", "")
    return f"{cls[0]}_{parsed['smear']}_{field}_{parsed['cell']}"


class MalariaOptions(SourceOptions):
    subject: Literal["patient", "smear"] = Field(
        "patient", description="the unit splits keep whole: the P<k> patient number where the "
        "smear id has one (else the smear), or the smear id",
    )


class LHNCBCMalaria(Source):
    Options = MalariaOptions
    fixture = "medshard.sources.microscopy.malaria_fixture:FIXTURE"
    payload_members = ("image.png",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="lhncbc-malaria",
        title="NIH LHNCBC malaria cell images (thin blood smears, P. falciparum)",
        version="cell_images.zip (2018)",
        modality="pathology",
        tasks=["classification"],
        license=License(
            name="not stated (open release of the U.S. National Library of Medicine, LHNCBC)",
            url="https://lhncbc.nlm.nih.gov/LHC-research/LHC-projects/image-processing/malaria-datasheet.html",
            terms_version="not stated",
        ),
        access="open",
        homepage="https://lhncbc.nlm.nih.gov/LHC-research/LHC-projects/image-processing/malaria-datasheet.html",
        citation=(
            "Rajaraman S, Antani SK, Poostchi M, Silamut K, Hossain MA, Maude RJ, Jaeger S, "
            "Thoma GR. Pre-trained convolutional neural networks as feature extractors toward "
            "improved malaria parasite detection in thin blood smear images. PeerJ. "
            "2018;6:e4568."
        ),
        label_space=list(CLASSES),
        split_policy="no official split: keyed hash of the patient number (or smear) read from "
        "the cell file name",
        split_unit="smear/patient (from file names)",
        release_notes={"0.1.0": "first medshard adapter"},
        published_counts=PublishedCounts(
            unit="images", reference="MultiMed: 27,560 pathology images, no split counts; the "
            "archive holds 27,558 (13,779 per class)"),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="https",
        files=[FileSpec(path="cell_images.zip", extract=True,
                        url="https://data.lhncbc.nlm.nih.gov/public/Malaria/cell_images.zip")],
    )

    def class_dirs(self, root: Path) -> dict[str, str]:
        for rel in RELEASE_DIRS:
            base = f"{rel}/" if rel else ""
            found = {c: f"{base}{c}" for c in CLASSES
                     if first_existing_dir(root, [f"{base}{c}"]) is not None}
            if found:
                return found
        return {}

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not self.class_dirs(root):
            raise MissingRawData(f"lhncbc-malaria: no Parasitized/ or Uninfected/ folder in "
                                 f"{root}/cell_images/ or {root}/; unpack cell_images.zip there")

    def subject_of(self, parsed: dict) -> str:
        if self._options["subject"] == "patient" and parsed["patient"]:
            return str(parsed["patient"])
        return str(parsed["smear"])

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        for cls, rel_dir in self.class_dirs(root).items():
            for f in files_in(root, rel_dir, (".png",)):
                try:
                    parsed = parse_cell_name(f.name)
                except ValueError as exc:
                    yield BadRow(f.rel, 0, str(exc))
                    continue
                yield RawRecord(
                    record_id=cell_record_id(cls, parsed),
                    subject_id=self.subject_of(parsed),
                    files=[f.rel],
                    source_labels={"class": cls},
                    size_bytes=f.size,
                    meta={"smear": parsed["smear"], "patient_number": parsed["patient"],
                          "field_image": parsed["field_image"], "cell": parsed["cell"]},
                )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        data = self.read_bytes(root, record.files[0])
        yield Sample(
            classes=[record.source_labels["class"]],
            source_labels=record.source_labels,
            payloads={"image": Payload("image", data, {"source_encoding": "png"})},
            meta=dict(record.meta),
            task="classification",
        )
