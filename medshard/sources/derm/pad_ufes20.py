"""PAD-UFES-20: 2,298 smartphone photographs of 1,641 skin lesions of 1,373 patients (UFES, Brazil).

Raw layout (the owner's Mendeley Data release, doi:10.17632/zr7vgbcyr2.1, unpacked; the
Kaggle copy `mahdavi1202/skin-cancer` holds the same files):
    metadata.csv    patient_id, lesion_id, smoke, drink, background_father,
                    background_mother, age, pesticide, gender, skin_cancer_history,
                    cancer_history, has_piped_water, has_sewage_system, fitspatrick, region,
                    diameter_1, diameter_2, diagnostic, itch, grew, hurt, changed, bleed,
                    elevation, img_id, biopsed
    images/imgs_part_{1,2,3}/<img_id>        PNG, img_id = PAT_<patient>_<lesion>_<n>.png
Facts: the column order from public code that quotes the header (code search
"patient_id,lesion_id,smoke,drink"), the image folder from CLIMB's
`src/datasets/derm/pad_ufes_20.py` (reads `images/<img_id>`, Mendeley zip) and loaders that
read `imgs_part_1`; the classes and counts from Pacheco et al., Data in Brief 32:106221
(2020): BCC, SCC (Bowen's disease merged into it), ACK, SEK, MEL, NEV. An image is found by
its file name in any folder under the root.

Labels. `classes` is `diagnostic` verbatim (the vocabulary: MEL, NEV, BCC as CLIMB's MEL, NV,
BCC; CLIMB's AKIEC = ACK + SCC and OTHER = SEK, kept apart here). `source_labels` keeps
diagnostic and biopsed (True when histopathology confirmed it; PAD reports all cancers
biopsied). Meta: the clinical fields, allow-listed and typed: age (years), gender,
fitspatrick (skin type 1-6), region, diameter_1/diameter_2 (mm), and the yes/no questions
(itch, grew, hurt, changed, bleed, elevation, smoke, drink, pesticide, skin_cancer_history,
cancer_history, has_piped_water, has_sewage_system) as true/false/null ("UNK" or blank is
null). background_father/mother (ancestry country) are left out: they narrow who a patient is
without serving the classification task. These are clinical photographs, not dermoscopy.

Split: no official split. train/val/test by a keyed hash of the **patient_id** (HMAC-SHA256
keyed "medshard-split:<source>", the build's split fractions, 80/10/10 by default), so every
image of a patient, and so of a lesion, shares a split (CLIMB splits 80/20 per class by
image, no seed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from medshard.schemas import BadRow, License, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import Source
from medshard.sources.photo_sets import ImageIndex, image_payload

DIAGNOSTICS = ("ACK", "BCC", "MEL", "NEV", "SCC", "SEK")
METADATA = "metadata.csv"
YES_NO = ("itch", "grew", "hurt", "changed", "bleed", "elevation", "smoke", "drink", "pesticide",
          "skin_cancer_history", "cancer_history", "has_piped_water", "has_sewage_system")


def _yes_no(text: str | None) -> bool | None:
    """"True"/"False" as written in metadata.csv; "UNK" and blank are unknown."""
    value = (text or "").strip().lower()
    if value in ("", "unk", "nan"):
        return None
    if value not in ("true", "false"):
        raise ValueError(f"yes/no cell {text!r} is not True, False, UNK or blank")
    return value == "true"


def _number(text: str | None) -> float | None:
    value = (text or "").strip()
    return None if value in ("", "UNK", "nan") else float(value)


class PADUFES20(Source):
    fixture = "medshard.sources.derm.pad_ufes20_fixture:FIXTURE"
    payload_members = ("image.png", "image.jpg")
    demographic_fields = {"sex": "gender"}
    required_files = (METADATA,)
    root_hint = "put the Mendeley release there (`medshard info pad-ufes-20`)"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="pad-ufes-20",
        title="PAD-UFES-20: a skin lesion dataset of patient data and clinical images collected "
        "from smartphones",
        version="Mendeley Data v1 (doi:10.17632/zr7vgbcyr2.1)",
        modality="dermoscopy",
        tasks=["classification"],
        license=License(name="Creative Commons Attribution 4.0", spdx="CC-BY-4.0",
                        url="https://data.mendeley.com/datasets/zr7vgbcyr2/1", terms_version="v1"),
        access="open",
        homepage="https://data.mendeley.com/datasets/zr7vgbcyr2/1",
        citation="Pacheco AGC, Lima GR, Salomão AS, et al. PAD-UFES-20: A skin lesion dataset "
        "composed of patient data and clinical images collected from smartphones. Data in "
        "Brief 32, 106221 (2020).",
        label_space=list(DIAGNOSTICS),
        split_policy="no official split: train/val/test by keyed hash of the patient_id (the "
        "build's split fractions, 80/10/10 by default)",
        split_unit="patient",
        release_notes={"0.1.0": "first medshard adapter (Mendeley release)"},
        published_counts=PublishedCounts(
            train=1839, test=459, unit="images",
            reference="CLIMB Table 7 (random 80/20 of images); the build's default "
            "fractions hold out 10% for test, not 20%"),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="manual",
        manual=ManualSteps(
            url="https://data.mendeley.com/datasets/zr7vgbcyr2/1",
            steps=[
                "Open the Mendeley Data page above and choose 'Download All' (CC BY 4.0).",
                "Unpack the archive, then the image archives inside it, so that the folder "
                "named below holds metadata.csv and images/imgs_part_1/, imgs_part_2/, "
                "imgs_part_3/ with the PNG files.",
            ],
            layouts={"mendeley": [FileSpec(path=METADATA)]},
        ),
    )

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        self.check_root(root)
        index = ImageIndex(root)
        yield from self.csv_records(root, METADATA, lambda row: self._record(root, index, row))

    def _record(self, root: Path, index: ImageIndex, row: dict[str, str]) -> RawRecord:
        img_id, patient = row["img_id"].strip(), row["patient_id"].strip()
        diagnostic = row["diagnostic"].strip()
        if diagnostic not in DIAGNOSTICS:
            raise ValueError(f"diagnostic {diagnostic!r} is not one of {', '.join(DIAGNOSTICS)}")
        if not img_id or not patient:
            raise ValueError("img_id or patient_id is blank")
        fitz = _number(row.get("fitspatrick"))
        meta: dict[str, Any] = {
            "age": _number(row.get("age")),
            "gender": (row.get("gender") or "").strip() or None,
            "fitspatrick": fitz,
            "region": (row.get("region") or "").strip() or None,
            "diameter_1": _number(row.get("diameter_1")),
            "diameter_2": _number(row.get("diameter_2")),
            **{name: _yes_no(row.get(name)) for name in YES_NO},
        }
        rel = index.find(img_id) or f"images/{img_id}"
        file = root / rel
        return RawRecord(
            record_id=Path(img_id).stem, subject_id=patient, files=[rel],
            source_labels={"diagnostic": diagnostic, "biopsed": _yes_no(row.get("biopsed"))},
            split=None,  # the build's keyed hash of the subject
            size_bytes=file.stat().st_size if file.is_file() else 0, meta=meta,
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        yield Sample(
            classes=[record.source_labels["diagnostic"]],
            source_labels=record.source_labels,
            payloads={"image": image_payload(self, root, record.files[0],
                                             {"view": "clinical photograph (smartphone)"})},
            meta=dict(record.meta),
        )
