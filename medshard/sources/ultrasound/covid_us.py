"""COVID-US (COVIDx-US): lung ultrasound videos gathered from public sources, by NRC Canada.

Raw layout (github.com/nrc-cnrc/COVID-US after running its notebook, see below):
    utils/video_metadata.csv          one row per video: id (e.g. `23_grepmed_pneumonia`),
                                      filename (the publisher's), filetype (mp4 | gif | ...),
                                      folder, source, url, probe (Convex | Linear), class
                                      (COVID | Pneumonia | Normal | Other), class_on_website,
                                      version, date_added, type, patient, case_no, gender,
                                      age, comment (free text), paper_link, paper_doi,
                                      license, link
    data/video/<id>.<filetype>        the downloaded video (the notebook's VIDEO_PATH)
The repository ships no video: its notebook `create_COVIDxUS.ipynb` downloads each one
from its publisher (ButterflyNetwork, GrepMed, The POCUS Atlas, LITFL, Radiopaedia,
CoreUltrasound, University of Florida, papers, Clarius) and saves it under the row's id.
CLIMB's copy (a Google Drive zip of `videos/<id>.mp4`, DDVD233/CLIMB
src/datasets/ultrasound/covid_us.py) is accepted too: `videos/<id>.<filetype>` is read
when `data/video/` lacks the file. Where the facts come from: the repository's README
(classes and probe counts), `utils/video_metadata.csv` and `utils/video_files_properties.csv`
(columns, ids, file types: the POCUS Atlas videos are GIF), the notebook (the metadata is
read as latin-1, files are renamed to their id, 21 columns listed), CLIMB's loader (drops
class `other`, labels `covid` / `pneumonia` / `normal`). The later products of the
notebook (cropped `_prc.avi` and inpainted `_clean.avi` videos, extracted frames) are not
read: they are re-encodings; the downloaded file is the original.

A sample is one video: the publisher's MP4 bytes with identity metadata boxes blanked in
place (`mp4_video.py`); fps, frame count, probe (`convex` / `linear`), publisher and
video type in meta. Class `Other` is filtered (no class: CLIMB drops it too); a GIF
(the POCUS Atlas' animations) is filtered as not an MP4 video: GIF has no frame-rate
field that survives every tool and medshard keeps no GIF payload yet. The free-text
`comment` (case histories with ages and events) and the publisher's file names and
URLs never leave the source.

Split: a keyed hash of the subject. Most videos carry no patient identity; where a row
gives `patient` or `case_no` (several LITFL videos are one case), the subject is that
(within its publisher), else the video id: patient-level splits only where the
metadata knows the patient. CLIMB splits 75/25 stratified by publisher with sklearn's
random_state 42, which is not a subject split and is not offered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from medshard.schemas import BadRow, License, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.schemas.sample import Filtered
from medshard.sources.base import Source
from medshard.sources.ultrasound.mp4_video import mp4_video_payload

METADATA = "utils/video_metadata.csv"
VIDEO_DIRS = ("data/video", "videos")  # the notebook's folder, then CLIMB's mirror
CLASSES = {"covid": "covid", "pneumonia": "pneumonia", "normal": "normal", "other": None}
PROBES = ("convex", "linear")
MP4_TYPES = ("mp4", "mov", "m4v")


def _blank(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def _age(text: str | None) -> float | None:
    text = _blank(text)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None  # "adult", "40s": not a number of years


class CovidUS(Source):
    fixture = "medshard.sources.ultrasound.covid_us_fixture:FIXTURE"
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://github.com/nrc-cnrc/COVID-US",
        steps=[
            "Clone github.com/nrc-cnrc/COVID-US into the folder named below.",
            "Run create_COVIDxUS.ipynb there (section 1, 'Get Ultrasound Videos'): it "
            "downloads every video from its publisher into data/video/<id>.<filetype>.",
            "Keep utils/video_metadata.csv as the repository ships it.",
        ],
        layouts={"notebook": [FileSpec(path=METADATA)]},
    ))
    payload_members = ("video.mp4",)
    required_files = (METADATA,)
    root_hint = "clone github.com/nrc-cnrc/COVID-US into this folder"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="covid-us",
        title="COVID-US (COVIDx-US): lung ultrasound videos of COVID-19, pneumonia and normal lungs",
        version="1.5",
        modality="ultrasound",
        tasks=["classification"],
        license=License(
            name="GNU Affero General Public License 3.0 (the collection scripts and metadata); "
            "each video keeps its publisher's terms",
            spdx="AGPL-3.0-only",
            url="https://github.com/nrc-cnrc/COVID-US/blob/main/LICENSE",
            terms_version="3.0",
        ),
        access="manual",
        homepage="https://github.com/nrc-cnrc/COVID-US",
        citation=(
            "Ebadi A, Xi P, MacLean A, et al. COVIDx-US: An open-access benchmark dataset of "
            "ultrasound imaging data for AI-driven COVID-19 analytics. Frontiers in Bioscience "
            "(Landmark) 27(7):198 (2022)."
        ),
        label_space=["covid", "pneumonia", "normal"],
        split_policy="keyed hash of the subject: the row's patient or case number within its "
        "publisher where given, else the video",
        split_unit="video (patient where video_metadata.csv gives one)",
        release_notes={"0.1.0": "first medshard adapter: the downloaded MP4s (metadata boxes "
                       "blanked), class and probe from video_metadata.csv"},
        published_counts=PublishedCounts(
            train=74, test=25, unit="videos",
            reference="CLIMB A.2 (Table 6 says 242; 150 videos described); CLIMB's split is "
            "stratified by publisher, not by subject",
        ),
    )

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        # the notebook reads it as latin-1; every byte decodes, so no row is lost to encoding
        yield from self.csv_records(root, METADATA, lambda row: self._record(root, row),
                                    encoding="latin-1")

    def _record(self, root: Path, row: dict[str, str]) -> RawRecord:
        vid = row["id"].strip()
        if not vid:
            raise ValueError("empty id")
        raw_class = row["class"].strip()
        if raw_class.lower() not in CLASSES:
            raise ValueError(f"class {raw_class!r} is not COVID, Pneumonia, Normal or Other")
        filetype = (row.get("filetype") or "mp4").strip().lower().lstrip(".")
        probe = (_blank(row.get("probe")) or "").lower() or None
        if probe is not None and probe not in PROBES:
            raise ValueError(f"probe {row['probe']!r} is not Convex or Linear")
        rel = next((f"{d}/{vid}.{filetype}" for d in VIDEO_DIRS
                    if (root / d / f"{vid}.{filetype}").is_file()),
                   f"{VIDEO_DIRS[0]}/{vid}.{filetype}")
        publisher = _blank(row.get("source"))
        patient, case = _blank(row.get("patient")), _blank(row.get("case_no"))
        subject = (f"{publisher}:patient:{patient}" if patient else
                   f"{publisher}:case:{case}" if case else vid)
        path = root / rel
        return RawRecord(
            record_id=vid.replace(".", "_").replace(" ", "_"),
            subject_id=subject,
            files=[rel],
            source_labels={"class": raw_class},
            split=None,
            size_bytes=path.stat().st_size if path.is_file() else 0,
            meta={"filetype": filetype, "probe": probe, "publisher": publisher,
                  "video_type": _blank(row.get("type")), "age": _age(row.get("age"))},
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        label = CLASSES[record.source_labels["class"].lower()]
        if label is None:
            raise Filtered("class Other: not covid, pneumonia or normal (CLIMB drops it too)")
        if record.meta["filetype"] not in MP4_TYPES:
            raise Filtered(f"{record.meta['filetype']} animation, not an MP4 video")
        payload, video_meta = mp4_video_payload(
            self.read_bytes(root, record.files[0], "video"))
        meta: dict[str, Any] = {
            "probe": record.meta["probe"], "publisher": record.meta["publisher"],
            "video_type": record.meta["video_type"], "age": record.meta["age"], **video_meta,
        }
        yield Sample(
            classes=[label],
            source_labels=dict(record.source_labels),
            payloads={"video": payload},
            meta=meta,
            task="classification",
        )
