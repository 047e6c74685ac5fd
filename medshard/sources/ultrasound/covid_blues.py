"""COVID-BLUES: BLUE-protocol lung ultrasound videos of 63 suspected COVID-19 patients.

Raw layout (github.com/NinaWie/COVID-BLUES, the repository is the release):
    lus_videos/patient_<ID>_<POINT>.mp4      one video per BLUE point, POINT one of L1, L2,
                                             L3 (left lung), R1, R2, R3 (right lung)
    lus_videos/patient_<ID>_<POINT>_2.mp4    a second video of the same point, where taken
    clinical_variables.csv                   one row per patient: patient_id, cov_test (PCR
                                             result, 1 positive / 0 negative), pat_age,
                                             pat_sex, ... (about 150 clinical variables)
    variable_explanations.csv, appendix.pdf  what the variables mean (not read)
Where the facts come from: the repository's README (63 patients, 33 positive and 30
negative; 362 videos; 60-100 frames each; Philips Lumify with a convex probe; the file
name scheme and the `_2` repeats), its `clinical_variables.csv` header (`patient_id`,
`cov_test`, `pat_age`, `pat_sex`; -99 marks a missing value in its rows), and CLIMB's
loader (DDVD233/CLIMB src/datasets/ultrasound/covid_blue.py: label from `cov_test`, 0 ->
"No COVID", 1 -> "Has COVID", patient id from the file name). The severity ratings the
README describes are not read (their file is not named in the README).

A sample is one video with the patient's COVID label: the original MP4 bytes, with any
identity metadata boxes blanked in place (see `mp4_video.py`), fps, frame count and the
probe ("convex", per the README: every video was taken with the same probe) in meta,
with the BLUE point and the repeat number. Clinical variables stay out except age
(`pat_age`, -99 -> null); `pat_sex` is kept as its 0/1 code (`sex_code`) because the
codes' meaning is in variable_explanations.csv, not confirmed here.

Split by patient: a keyed hash of the patient id (default), or `split="climb"`: CLIMB's
split, the first 75 % of the patient ids present (sorted as numbers) train, the rest
test (266 / 96 videos on the full release, CLIMB A.2). A video whose patient has no
clinical row (or a malformed one) is quarantined: it has no label.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from medshard.schemas import BadRow, License, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source, SourceOptions
from medshard.sources.ultrasound.mp4_video import mp4_video_payload

VIDEO_DIR = "lus_videos"
CLINICAL = "clinical_variables.csv"
LABELS = {0: "No COVID", 1: "Has COVID"}
PROBE = "convex"
_NAME = re.compile(r"^patient_(\d+)_([LR][123])(?:_(\d+))?$")
MISSING_VALUE = -99.0  # the clinical table's code for "not recorded"


class CovidBluesOptions(SourceOptions):
    split: Literal["hash", "climb"] = Field(
        "hash", description="hash: keyed hash of the patient id; climb: the first 75 % of "
        "patient ids (sorted) train, the rest test, as CLIMB's loader does")


def _number(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    value = float(text)
    return None if math.isnan(value) or value == MISSING_VALUE else value


def parse_clinical_row(row: dict[str, str]) -> dict[str, Any]:
    """The fields medshard takes from one clinical_variables.csv row; raises on a malformed
    row (the caller turns that into a bad row)."""
    patient = int(row["patient_id"])
    test = int(float(row["cov_test"]))
    if test not in LABELS:
        raise ValueError(f"cov_test {row['cov_test']!r} is neither 0 nor 1")
    sex = _number(row.get("pat_sex"))
    return {"patient": patient, "cov_test": test, "age": _number(row.get("pat_age")),
            "sex_code": None if sex is None else int(sex)}


class CovidBlues(Source):
    fixture = "medshard.sources.ultrasound.covid_blues_fixture:FIXTURE"
    Options = CovidBluesOptions
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="github", repo="NinaWie/COVID-BLUES", ref="main")
    payload_members = ("video.mp4",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="covid-blues",
        title="COVID-BLUES: BLUE-protocol lung ultrasound videos of suspected COVID-19 patients",
        version="main",
        modality="ultrasound",
        tasks=["classification"],
        license=License(
            name="Creative Commons Attribution-NonCommercial-NoDerivatives 4.0",
            spdx="CC-BY-NC-ND-4.0",
            url="https://github.com/NinaWie/COVID-BLUES/blob/main/LICENSE",
            terms_version="4.0",
            non_commercial=True,
        ),
        access="open",
        homepage="https://github.com/NinaWie/COVID-BLUES",
        citation=(
            "Wiedemann N, et al. COVID-BLUES: a prospective study on the value of AI in lung "
            "ultrasound analysis. IEEE Journal of Biomedical and Health Informatics (2025)."
        ),
        label_space=list(LABELS.values()),
        split_policy="keyed hash of the patient id; option split=climb gives CLIMB's "
        "first-75 %-of-patient-ids train split",
        split_unit="patient",
        release_notes={"0.1.0": "first medshard adapter: original MP4 bytes (metadata boxes "
                       "blanked), PCR label per patient, split by patient"},
        published_counts=PublishedCounts(
            train=266, test=96, unit="videos",
            reference="CLIMB A.2 (362 videos); matches with split=climb on the full release",
        ),
    )

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        for name in (VIDEO_DIR, CLINICAL):
            if not (root / name).exists():
                raise MissingRawData(f"covid-blues: {root}/{name} is missing; clone "
                                     "github.com/NinaWie/COVID-BLUES into this folder")

    def label_files(self, root: Path) -> list[str]:
        return [CLINICAL]

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        clinical: dict[int, dict[str, Any]] = {}

        def keep(row: dict[str, str]) -> None:
            parsed = parse_clinical_row(row)
            clinical[parsed["patient"]] = parsed

        # bad clinical rows are reported here; their patients' videos have no label
        yield from self.csv_records(root, CLINICAL, keep)  # type: ignore[arg-type]
        videos = []
        for p in sorted((root / VIDEO_DIR).iterdir(), key=lambda p: p.name):
            if p.suffix.lower() != ".mp4":
                continue
            m = _NAME.match(p.stem)
            if m is None:
                yield BadRow(f"{VIDEO_DIR}/{p.name}", 0, "file name is not "
                             "patient_<ID>_<L1..R3>[_<n>].mp4", "ValueError")
                continue
            videos.append((p, int(m.group(1)), m.group(2), int(m.group(3) or 1)))
        patients = sorted({v[1] for v in videos})
        climb_train = set(patients[: int(len(patients) * 0.75)])
        for p, patient, point, repeat in videos:
            row = clinical.get(patient)
            split = None
            if self.opts.split == "climb":
                split = "train" if patient in climb_train else "test"
            yield RawRecord(
                record_id=p.stem,
                subject_id=str(patient),
                files=[f"{VIDEO_DIR}/{p.name}"],
                source_labels={"cov_test": None if row is None else row["cov_test"]},
                split=split,  # type: ignore[arg-type]
                size_bytes=p.stat().st_size,
                meta={"blue_point": point, "repeat": repeat, "patient_id": patient,
                      "age": None if row is None else row["age"],
                      "sex_code": None if row is None else row["sex_code"],
                      "clinical_row": row is not None},
            )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        if not record.meta["clinical_row"]:
            raise RecordError(f"patient {record.meta['patient_id']} has no valid row in "
                              f"{CLINICAL}: the video has no COVID label")
        payload, video_meta = mp4_video_payload(
            self.read_bytes(root, record.files[0], "video"))
        label = LABELS[record.source_labels["cov_test"]]
        yield Sample(
            classes=[label],
            source_labels=dict(record.source_labels),
            payloads={"video": payload},
            meta={"blue_point": record.meta["blue_point"], "repeat": record.meta["repeat"],
                  "probe": PROBE, "age": record.meta["age"],
                  "sex_code": record.meta["sex_code"], **video_meta},
            task="classification",
        )
