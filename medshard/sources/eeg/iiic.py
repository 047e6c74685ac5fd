"""IIIC: ictal-interictal-injury continuum patterns in ICU EEG, 10-s segments with expert vote counts.

Raw layout read here: the public release of the IIIC data with per-segment votes whose
layout is documented, the HMS "Harmful Brain Activity Classification" data (Kaggle
competition `hms-harmful-brain-activity-classification`, from the same Jing et al. IIIC
project):

    train.csv              one row per labelled segment: eeg_id, eeg_sub_id,
                           eeg_label_offset_seconds, spectrogram_id, spectrogram_sub_id,
                           spectrogram_label_offset_seconds, label_id, patient_id,
                           expert_consensus, seizure_vote, lpd_vote, gpd_vote, lrda_vote,
                           grda_vote, other_vote
    train_eegs/<eeg_id>.parquet   the recording: one column per electrode, 200 samples/s,
                           columns Fp1 F3 C3 P3 F7 T3 T5 O1 Fz Cz Pz Fp2 F4 C4 P4 F8 T4 T6
                           O2 EKG (referential; values taken as microvolts, which the
                           description does not state)

Facts and where they came from: the files, the columns of train.csv, "50 second long EEG
samples ... labeled the central 10 seconds", the vote columns, 200 samples per second,
the EKG column: the competition's data description (copy in michaelmikulec/Elektra
`diagrams/datasetDescription.md`); the 20 column names and their order: several
third-party loaders agree. What is *not* confirmed: the layout of the bdsp.io release
that CLIMB links (bdsp-sparcnet 1.1; BIOT loads IIIC as pre-arrayed X/Y from a request):
no public description was found, so that release is not read. CLIMB's numbers (134,450
segments, 1,950 patients) were not checked against this copy.

What `load` yields per train.csv row: the labelled central 10 s of the row's 50-s
subsample, [offset + 20 s, offset + 30 s), in the montage and rate the data ship: the 19
referential electrodes in file order (`signal`, reference as recorded) and the EKG lead
as its own role (`ekg`), both at the EEG standard (200 Hz already, p95 per channel).

Labels: `source_labels` keeps the six vote counts and `expert_consensus` verbatim. The
class is the majority vote (ties go to the first class in the order SZ, LPD, GPD, LRDA,
GRDA, Other, and `vote_tie` says so); `meta` holds the votes, the number of raters and the
vote-derived soft label (votes / raters).

Split: no official split in this copy; keyed hash of `patient_id`, 60/20/20 train/val/test
(CLIMB's proportions, by patient).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from medshard.schemas import License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import Source
from medshard.sources.splits import hash_split

RATE_HZ = 200.0
SUBSAMPLE_S, LABELLED_FROM_S, LABELLED_S = 50.0, 20.0, 10.0
ELECTRODES = ["Fp1", "F3", "C3", "P3", "F7", "T3", "T5", "O1", "Fz", "Cz", "Pz", "Fp2", "F4",
              "C4", "P4", "F8", "T4", "T6", "O2"]
VOTE_COLUMNS = {"seizure_vote": "SZ", "lpd_vote": "LPD", "gpd_vote": "GPD",
                "lrda_vote": "LRDA", "grda_vote": "GRDA", "other_vote": "Other"}
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def majority(votes: dict[str, int]) -> tuple[str, bool]:
    """(class with the most votes, whether another class has as many), in VOTE_COLUMNS order."""
    best = max(votes.values())
    winners = [cls for cls in VOTE_COLUMNS.values() if votes[cls] == best]
    return winners[0], len(winners) > 1


class IIIC(Source):
    payload_members = ("signal.npy", "ekg.npy")
    required_files = ("train.csv",)
    root_hint = "put the competition's train.csv and train_eegs/ there"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="iiic",
        title="IIIC patterns in ICU EEG (HMS Harmful Brain Activity Classification release)",
        version="hms-harmful-brain-activity-classification (2024)",
        modality="eeg",
        tasks=["classification"],
        license=License(name="Kaggle competition rules (HMS - Harmful Brain Activity "
                        "Classification)",
                        url="https://www.kaggle.com/competitions/"
                        "hms-harmful-brain-activity-classification/rules",
                        terms_version="not stated"),
        access="registration",
        homepage="https://www.kaggle.com/competitions/hms-harmful-brain-activity-classification",
        citation="Jing J, Ge W, Hong S, et al. Development of Expert-Level Classification of "
        "Seizures and Rhythmic and Periodic Patterns During EEG Interpretation. Neurology "
        "100(17):e1750-e1762 (2023).",
        label_space=list(VOTE_COLUMNS.values()),
        split_policy="keyed hash of patient_id, 60/20/20 train/val/test (CLIMB's proportions)",
        published_counts=PublishedCounts(
            unit="segments",
            reference="CLIMB gives no per-split counts: 60/20/20 % by patient of 134,450 "
            "segments from 1,950 patients"),
        release_notes={"0.1.0": "first medshard adapter: HMS release layout, central 10 s of "
                       "each labelled 50-s subsample, votes and soft label in meta"},
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="kaggle", competition="hms-harmful-brain-activity-classification",
        include=["train.csv", "train_eegs/*"], approx_bytes=30_000_000_000)
    fixture: ClassVar[str | None] = "medshard.sources.eeg.iiic_fixture:FIXTURE"

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        """One record per train.csv row; a malformed row is listed and quarantined at load."""
        self.check_root(root)
        with open(self.path(root, "train.csv"), newline="", encoding="utf-8") as f:
            for number, row in enumerate(csv.DictReader(f), start=2):
                label_id = (row.get("label_id") or "").strip()
                eeg_id = (row.get("eeg_id") or "").strip()
                patient = (row.get("patient_id") or "").strip()
                problem = ""
                votes: dict[str, int] = {}
                try:
                    votes = {cls: int(row[col]) for col, cls in VOTE_COLUMNS.items()}
                    offset = float(row["eeg_label_offset_seconds"])
                except (KeyError, TypeError, ValueError):
                    problem, offset = f"train.csv line {number}: malformed row", 0.0
                if not (label_id.isdigit() and eeg_id.isdigit() and patient):
                    problem = f"train.csv line {number}: missing label_id, eeg_id or patient_id"
                    label_id = label_id if label_id.isdigit() else f"line{number}"
                yield RawRecord(
                    record_id=label_id,
                    subject_id=patient or f"line{number}",
                    files=[f"train_eegs/{eeg_id}.parquet"] if eeg_id.isdigit() else [],
                    source_labels={"votes": votes,
                                   "expert_consensus": (row.get("expert_consensus") or "")},
                    split=hash_split(self.info.name, patient or f"line{number}",  # type: ignore[arg-type]
                                     SPLIT_FRACTIONS),
                    meta={"eeg_sub_id": row.get("eeg_sub_id", ""), "offset_s": offset,
                          **({"malformed": problem} if problem else {})},
                )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        """The labelled central 10 s of the record's 50-s subsample (see the module docstring)."""
        if record.meta.get("malformed"):
            raise RecordError(record.meta["malformed"])
        votes: dict[str, int] = record.source_labels["votes"]
        raters = sum(votes.values())
        if raters <= 0 or min(votes.values()) < 0:
            raise RecordError(f"label {record.record_id}: votes {votes} give no majority")
        path = self.path(root, record.files[0])
        if not path.is_file():
            raise RecordError(f"missing recording {record.files[0]}")
        import pyarrow.parquet as pq

        start = int(round((record.meta["offset_s"] + LABELLED_FROM_S) * RATE_HZ))
        n = int(LABELLED_S * RATE_HZ)
        try:
            table = pq.read_table(path, columns=[*ELECTRODES, "EKG"])
        except Exception as exc:  # pyarrow raises ArrowInvalid, KeyError, OSError
            raise RecordError(f"unreadable recording {record.files[0]}: {exc}") from None
        if start < 0 or start + n > table.num_rows:
            raise RecordError(f"{record.files[0]} has {table.num_rows / RATE_HZ:g} s; the "
                              f"labelled span ends at {(start + n) / RATE_HZ:g} s")
        part = table.slice(start, n)
        eeg = np.stack([part.column(c).to_numpy().astype(np.float64) for c in ELECTRODES])
        ekg = part.column("EKG").to_numpy().astype(np.float64)[None, :]
        if not (np.isfinite(eeg).all() and np.isfinite(ekg).all()):
            raise RecordError(f"{record.files[0]}: missing values in the labelled 10 s")
        cls, tie = majority(votes)
        meta: dict[str, Any] = {
            "eeg_sub_id": record.meta["eeg_sub_id"], "label_offset_s": record.meta["offset_s"],
            "labelled_span_s": [record.meta["offset_s"] + LABELLED_FROM_S,
                                record.meta["offset_s"] + LABELLED_FROM_S + LABELLED_S],
            "votes": votes, "raters": raters, "vote_tie": tie,
            "soft_label": {k: v / raters for k, v in votes.items()},
            "montage": "referential, 19 electrodes in file order (as shipped)",
        }
        yield Sample(
            classes=[cls],
            source_labels=dict(record.source_labels),
            payloads={
                "signal": Payload("signal", eeg, {"sampling_rate_hz": RATE_HZ,
                                                  "channels": ELECTRODES, "units": "uV"}),
                "ekg": Payload("signal", ekg, {"sampling_rate_hz": RATE_HZ, "channels": ["EKG"],
                                               "units": "uV", "standard": "eeg"}),
            },
            meta=meta,
            task="classification",
        )

    def estimate_output_bytes(self, record: RawRecord) -> int:
        return 20 * 2000 * 4 + 2048
