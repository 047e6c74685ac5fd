"""A small EEG source outside medshard's built-ins, and four ways to break it, for the kit's tests.

Raw layout: `labels.csv` (record, subject, split, label, comment) and
`recordings/<record>.csv` (a header of channel names, then one row per sample at 128 Hz).
The signal is the real EEG trace pyedflib ships (`real_eeg_at`), offset per channel.
The `comment` column holds a planted identity that must never leave the source.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from medshard.schemas import License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.sources.base import MissingRawData, Source
from medshard.testing import Fixture

MARKER = "Wilberforce_Tumbleweed_MRN4471"
CHANNELS = ("Fp1", "Fp2", "C3", "C4")
RATE = 128.0
RECORDS = [  # record, subject, official split, label
    ("r01", "s1", "train", "normal"), ("r02", "s1", "train", "abnormal"),
    ("r03", "s2", "train", "normal"), ("r04", "s3", "test", "abnormal"),
    ("r05", "s4", "test", "normal"),
]


def write_toy(root: Path) -> Path:
    from medshard.sources.eeg.tuab_fixture import real_eeg_at

    trace = real_eeg_at(RATE)
    (root / "recordings").mkdir(parents=True, exist_ok=True)
    for i, (record, *_rest) in enumerate(RECORDS):
        n = int(24 * RATE)  # 24 s: a recording file past the kit's 64 KiB header allowance
        rows = np.stack([np.resize(trace[(i * 97 + c * 31) % 500:], n)
                         for c in range(len(CHANNELS))], 1)
        with open(root / "recordings" / f"{record}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CHANNELS)
            w.writerows(np.round(rows, 3).tolist())
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["record", "subject", "split", "label", "comment"])
        for record, subject, split, label in RECORDS:
            w.writerow([record, subject, split, label, MARKER])
        w.writerow(["r99", "s5", "test", "normal", MARKER])  # no recording file: broken
    return root


TOY_FIXTURE = Fixture(
    write=write_toy,
    samples={"train": 3, "test": 2},
    quarantined={"r99": "load"},
    phi_markers=(MARKER,),
    real="pyedflib's real EEG trace",
    illustrative="channels are offsets of one trace; labels; one listed record has no file",
)


class ToyEEG(Source):
    payload_members = ("signal.npy",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="toy-eeg", title="A toy EEG dataset for the conformance kit", version="1",
        modality="eeg", tasks=["classification"], access="open",
        homepage="https://example.org/toy-eeg", citation="-",
        label_space=["normal", "abnormal"], split_policy="official train/test",
        license=License(name="CC0 1.0", spdx="CC0-1.0", terms_version="1"),
    )
    fixture: ClassVar[str | None] = "tests.conformance_toy:TOY_FIXTURE"
    vocabulary_map: ClassVar[dict[str, list[str]] | None] = {
        "normal": ["eeg.normal"], "abnormal": ["eeg.abnormal"],
    }

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not (root / "labels.csv").is_file():
            raise MissingRawData(f"{self.info.name}: labels.csv not found in {root}")

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        self.check_root(root)
        with open(root / "labels.csv", newline="") as f:
            for row in csv.DictReader(f):
                yield RawRecord(
                    record_id=row["record"], subject_id=row["subject"],
                    files=[f"recordings/{row['record']}.csv"],
                    source_labels={"label": row["label"]}, split=self.split_of(row),
                    meta=self.record_meta(row),
                )

    def split_of(self, row: dict[str, str]) -> Any:
        return row["split"]

    def record_meta(self, row: dict[str, str]) -> dict[str, Any]:
        return {}  # the comment column is free text with identities: it stays in the CSV

    def classes_of(self, record: RawRecord) -> list[str]:
        return [record.source_labels["label"]]

    def read_signal(self, record: RawRecord, root: Path) -> np.ndarray:
        path = self.path(root, record.files[0])  # confined to the root, symlinks checked
        if not path.is_file():
            raise RecordError(f"missing file {record.files[0]}")
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        return np.asarray(rows[1:], dtype=np.float64).T

    def sample_meta(self, record: RawRecord) -> dict[str, Any]:
        return {}

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        data = self.read_signal(record, root)
        yield Sample(
            classes=self.classes_of(record),
            source_labels=record.source_labels,
            payloads={"signal": Payload("signal", data, {"sampling_rate_hz": RATE,
                                                         "channels": list(CHANNELS),
                                                         "units": "uV"})},
            meta=self.sample_meta(record), task="classification",
        )


def _named(name: str) -> SourceInfo:
    return ToyEEG.info.model_copy(update={"name": name})


class ReadsOutsideRoot(ToyEEG):
    """Follows a path in the raw data that leads out of the source root."""

    info = _named("toy-reads-outside")

    def read_signal(self, record: RawRecord, root: Path) -> np.ndarray:
        outside = root.parent.parent / "outside-secret.txt"
        outside.write_text("not part of the dataset")
        with open(outside) as f:
            f.read()
        return super().read_signal(record, root)


class LeaksMarker(ToyEEG):
    """Copies the free-text comment (a planted identity) into the sample's meta."""

    info = _named("toy-leaks-marker")

    def record_meta(self, row: dict[str, str]) -> dict[str, Any]:
        return {"comment": row["comment"]}

    def sample_meta(self, record: RawRecord) -> dict[str, Any]:
        return dict(record.meta)


class SplitsASubject(ToyEEG):
    """Splits by record, so subject s1's two records land in train and test."""

    info = _named("toy-splits-subject")

    def split_of(self, row: dict[str, str]) -> Any:
        return "test" if row["record"] == "r02" else row["split"]


class LabelOutsideSpace(ToyEEG):
    """Returns a class its label space does not declare."""

    info = _named("toy-label-outside")

    def classes_of(self, record: RawRecord) -> list[str]:
        return [*super().classes_of(record), "seizure"]


class FollowsSymlinks(ToyEEG):
    """Opens `root / file` as given: a symlink out of the root is followed."""

    info = _named("toy-follows-symlinks")

    def read_signal(self, record: RawRecord, root: Path) -> np.ndarray:
        with open(root / record.files[0], newline="") as f:
            rows = list(csv.reader(f))
        return np.asarray(rows[1:], dtype=np.float64).T


class Misnamed(ToyEEG):
    """Registered under one name, declares another."""

    info = _named("toy-other-name")


class MapDiffers(ToyEEG):
    """Declares a class its vocabulary map does not know."""

    info = ToyEEG.info.model_copy(update={"name": "toy-map-differs",
                                          "label_space": ["normal", "abnormal", "spiky"]})


class SwallowsOptions(ToyEEG):
    """Accepts any option silently."""

    info = _named("toy-swallows-options")

    def __init__(self, **options: Any) -> None:
        super().__init__()


class QuietOnEmptyRoot(ToyEEG):
    """Lists nothing, without a word, from a root that holds no data."""

    info = _named("toy-quiet-root")

    def check_root(self, root: Path) -> None:
        pass

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        if (root / "labels.csv").is_file():
            yield from super().list_records(root)


class ReadsPayloadWhileListing(ToyEEG):
    """Decodes every recording while listing, to find its length."""

    info = _named("toy-listing-reads")

    def record_meta(self, row: dict[str, str]) -> dict[str, Any]:
        path = self._root / "recordings" / f"{row['record']}.csv"
        return {"n_bytes": len(path.read_bytes()) if path.is_file() else 0}

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        self._root = root
        yield from super().list_records(root)


class DuplicateIds(ToyEEG):
    """Lists one record twice."""

    info = _named("toy-duplicate-ids")

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        records = list(super().list_records(root))
        yield from [*records, records[0]]


class ExtraBrokenRecord(ToyEEG):
    """Fails on a record its fixture does not declare broken."""

    info = _named("toy-extra-broken")

    def read_signal(self, record: RawRecord, root: Path) -> np.ndarray:
        if record.record_id == "r03":
            raise RecordError("r03 cannot be read")
        return super().read_signal(record, root)


class UndeclaredFilter(ToyEEG):
    """Filters a record by a rule its fixture does not declare."""

    info = _named("toy-undeclared-filter")

    def read_signal(self, record: RawRecord, root: Path) -> np.ndarray:
        from medshard.schemas.sample import Filtered

        if record.record_id == "r05":
            raise Filtered("too short")
        return super().read_signal(record, root)


WRONG_COUNTS = Fixture(write=write_toy, samples={"train": 4, "test": 2},
                       quarantined={"r99": "load"}, phi_markers=(MARKER,))


class WrongCounts(ToyEEG):
    """Its fixture declares a sample the data does not hold."""

    info = _named("toy-wrong-counts")
    fixture = "tests.conformance_toy:WRONG_COUNTS"


class NotDeterministic(ToyEEG):
    """Writes the time of the build into each sample."""

    info = _named("toy-not-deterministic")

    def sample_meta(self, record: RawRecord) -> dict[str, Any]:
        import time

        return {"built_at_ns": time.perf_counter_ns()}


class UnstableJson(ToyEEG):
    """Gives some samples a metadata key that others lack (HF datasets refuses such a source)."""

    info = _named("toy-unstable-json")

    def sample_meta(self, record: RawRecord) -> dict[str, Any]:
        return {"montage": "bipolar"} if record.record_id == "r01" else {}


# slug -> (class, the check that must catch it, whether the check needs a build)
BROKEN: dict[str, tuple[type[ToyEEG], str, bool]] = {
    "toy-misnamed": (Misnamed, "registered", False),
    "toy-map-differs": (MapDiffers, "label_space", False),
    "toy-swallows-options": (SwallowsOptions, "options", False),
    "toy-quiet-root": (QuietOnEmptyRoot, "missing_root", False),
    "toy-listing-reads": (ReadsPayloadWhileListing, "listing_reads_no_payload", False),
    "toy-duplicate-ids": (DuplicateIds, "unique_ids", False),
    "toy-reads-outside": (ReadsOutsideRoot, "reads_inside_root", False),
    "toy-label-outside": (LabelOutsideSpace, "labels_in_label_space", False),
    "toy-wrong-counts": (WrongCounts, "split_counts", True),
    "toy-extra-broken": (ExtraBrokenRecord, "quarantine", True),
    "toy-undeclared-filter": (UndeclaredFilter, "filters", True),
    "toy-splits-subject": (SplitsASubject, "subject_in_one_split", True),
    "toy-not-deterministic": (NotDeterministic, "rebuild_identical", True),
    "toy-leaks-marker": (LeaksMarker, "no_phi", True),
    "toy-unstable-json": (UnstableJson, "stable_json", True),
}
