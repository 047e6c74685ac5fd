"""MultiMed's motor-imagery EEG, starting with BNCI 2014-001 (BCI Competition IV, data set 2a).

Raw layout (the competition's release, www.bbci.de/competition/iv/ "Data sets 2a"):

    BCICIV_2a_gdf/A0<s>T.gdf   session T ("training"), subject s = 1..9, GDF
    BCICIV_2a_gdf/A0<s>E.gdf   session E ("evaluation"), recorded on another day
    true_labels/A0<s>E.mat     `classlabel`: 288 x 1 class (1-4) per trial, in trial order,
                               published with the results (A0<s>T.mat repeats the T cues)

Any folder names work: a record is any `A0<s><T|E>.gdf` under the root; its label file is
the `.mat` of the same stem anywhere under the root.

Facts and where they came from. Each GDF holds 22 EEG channels (`EEG-Fz`, `EEG-0` ...
`EEG-16`) and 3 EOG channels (`EOG-left`, `EOG-central`, `EOG-right`) at 250 Hz,
referenced to the left mastoid; 6 runs of 48 trials, 288 per session (competition
description `desc_2a.pdf`, quoted in MOABB's BNCI2014_001 documentation). Event codes:
768 trial start, 769/770/771/772 cue left hand / right hand / feet / tongue (classes 1-4),
783 cue unknown (session E), 1023 rejected trial, 1072 eye movements, 276/277 idle eyes
open/closed, 32766 new run (desc_2a.pdf Table 2, as third-party loaders list it; the
channel labels as braindecode's loader asserts them). The 10-20 names of the 22 EEG
channels (Fz, FC3, FC1, FCz, FC2, FC4, C5, C3, C1, Cz, C2, C4, C6, CP3, CP1, CPz, CP2,
CP4, P1, Pz, P2, POz) follow the montage figure in desc_2a.pdf as MOABB and other loaders
name it; they agree with the labels that carry a name (Fz, C3, Cz, C4, Pz). The paradigm:
fixation at t = 0, cue at t = 2 s (1.25 s on screen), imagery until t = 6 s. The true
labels' variable `classlabel`: third-party loaders (braindecode). The GDF version of the
release and its data type are not confirmed here; MNE reads GDF 1.x and 2.x alike.

What `load` yields: one sample per cue, cut at the cue as the competition defines the
trial: [cue, cue + 4 s) (MOABB's interval [2, 6] s after the trial start), read with MNE.
Session T labels come from the cue codes; session E cues are 783 and take `classlabel`
in order (a count mismatch quarantines the session). Roles: `signal` = the 22 EEG
channels, `eog` = the 3 EOG channels (named, kept apart from the EEG), both in microvolts
and both standardized to the EEG standard (200 Hz, p95 per channel). A trial the experts
marked with 1023 is kept with `rejected_by_experts: true` in meta (the competition keeps
those trials in the data too).

Split: the competition's own: session T is train, session E is test. Every subject is in
both, so the unit a split keeps whole is the *session* (subject_id is `A01T`, `A01E`; the
participant is `participant` in meta). MultiMed's exact MOABB subset is unconfirmed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from medshard.errors import UserError
from medshard.formats.gdf import GDFError, GDFRecording
from medshard.schemas import License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source

CLASSES = ("left hand", "right hand", "feet", "tongue")  # class 1..4
CUE_CLASS = {769: 1, 770: 2, 771: 3, 772: 4}
UNKNOWN_CUE, TRIAL_START, REJECTED = 783, 768, 1023
TRIAL_S = 4.0
EEG_LABELS = [
    "EEG-Fz", "EEG-0", "EEG-1", "EEG-2", "EEG-3", "EEG-4", "EEG-5", "EEG-C3", "EEG-6", "EEG-Cz",
    "EEG-7", "EEG-C4", "EEG-8", "EEG-9", "EEG-10", "EEG-11", "EEG-12", "EEG-13", "EEG-14",
    "EEG-Pz", "EEG-15", "EEG-16",
]
EEG_NAMES = [
    "Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3",
    "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz",
]
EOG_LABELS = ["EOG-left", "EOG-central", "EOG-right"]
_SESSION_FILE = re.compile(r"^(A0[1-9])([TE])$")


class BCICompetitionIV2a(Source):
    """BNCI 2014-001 / BCI Competition IV 2a: 4-class motor imagery, one sample per trial."""
    payload_members = ("signal.npy", "eog.npy")

    info: ClassVar[SourceInfo] = SourceInfo(
        name="moabb-mi",
        title="MOABB motor imagery: BNCI 2014-001 (BCI Competition IV data set 2a)",
        version="BCI Competition IV (2008), data set 2a",
        modality="eeg",
        tasks=["motor-imagery classification"],
        license=License(
            name="BCI Competition IV terms: free for research; publications cite the data "
            "set description",
            url="https://www.bbci.de/competition/iv/",
            terms_version="not stated",
        ),
        access="registration",
        homepage="https://www.bbci.de/competition/iv/",
        citation=(
            "Brunner C, Leeb R, Mueller-Putz GR, Schloegl A, Pfurtscheller G. BCI Competition "
            "2008 - Graz data set A. Graz University of Technology (2008). Aristimunha B, et al. "
            "Mother of all BCI Benchmarks (MOABB). Zenodo (2023)."
        ),
        label_space=list(CLASSES),
        split_policy="the competition's sessions: T (training day) is train, E (evaluation "
        "day) is test; no val",
        split_unit="session",
        published_counts=PublishedCounts(
            train=2592, test=2592, unit="trials",
            reference="BCI Competition IV 2a description: 9 subjects, 288 trials per session "
            "(T train, E test); MultiMed publishes no per-split counts"),
        release_notes={"0.1.0": "first medshard adapter: BNCI 2014-001 GDF sessions, trials "
                       "[cue, cue + 4 s), EOG as its own role"},
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://www.bbci.de/competition/iv/#download",
        steps=[
            "Fill in the download form on the page above (name and e-mail; the data are free "
            "for research) and download 'Data sets 2a: GDF files' (BCICIV_2a_gdf.zip).",
            "From the results page (https://www.bbci.de/competition/iv/results/) download the "
            "true labels of data set 2a (A01E.mat ... A09E.mat, A01T.mat ... A09T.mat).",
            "Unpack both into the folder named below (BCICIV_2a_gdf/ and true_labels/).",
        ],
    ))
    fixture: ClassVar[str | None] = "medshard.sources.eeg.moabb_mi_fixture:FIXTURE"

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not any(_SESSION_FILE.match(p.stem) for p in root.rglob("*.gdf")):
            raise MissingRawData(f"moabb-mi: no A0<s>T.gdf / A0<s>E.gdf under {root}; unpack "
                                 "BCICIV_2a_gdf.zip there (see the manual download steps)")

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        """One record per session GDF, sorted; reads no file content."""
        self.check_root(root)
        labels = {p.stem: p for p in sorted(root.rglob("*.mat")) if _SESSION_FILE.match(p.stem)}
        seen: dict[str, str] = {}
        for gdf in sorted(root.rglob("*.gdf")):
            m = _SESSION_FILE.match(gdf.stem)
            if m is None:
                continue
            rel = gdf.relative_to(root).as_posix()
            if gdf.stem in seen:
                raise UserError(f"moabb-mi: {rel} and {seen[gdf.stem]} are both session "
                                f"{gdf.stem}; remove the duplicate copy")
            seen[gdf.stem] = rel
            files = [rel]
            if gdf.stem in labels:
                files.append(labels[gdf.stem].relative_to(root).as_posix())
            yield RawRecord(
                record_id=gdf.stem,
                subject_id=gdf.stem,  # the split keeps sessions whole (see the docstring)
                files=files,
                split="train" if m.group(2) == "T" else "test",
                size_bytes=gdf.stat().st_size,
                meta={"participant": m.group(1), "session": m.group(2)},
            )

    def _true_labels(self, record: RawRecord, root: Path) -> list[int] | None:
        if len(record.files) < 2:
            return None
        from scipy.io import loadmat

        try:
            values = loadmat(str(self.path(root, record.files[1])))["classlabel"]
        except KeyError:
            raise RecordError(f"{record.files[1]} has no variable 'classlabel'") from None
        except Exception as exc:  # scipy raises several types for a broken .mat
            raise RecordError(f"unreadable label file {record.files[1]}: {exc}") from None
        labels = [int(v) for v in np.asarray(values).ravel()]
        if any(v not in (1, 2, 3, 4) for v in labels):
            raise RecordError(f"{record.files[1]}: classlabel outside 1..4")
        return labels

    def trials(self, record: RawRecord, root: Path, events: list) -> list[tuple[int, int, bool]]:
        """(cue sample, class 1-4, rejected) per trial, in file order (see the docstring)."""
        evaluation = record.meta["session"] == "E"
        true = self._true_labels(record, root)
        cues = [e for e in events if e.code in CUE_CLASS or e.code == UNKNOWN_CUE]
        if not cues:
            raise RecordError(f"{record.files[0]}: no trial cue (769-772, 783) in the event table")
        if evaluation and true is None:
            raise RecordError(f"session {record.record_id}: its cues are 783 (unknown) and "
                              f"the true-label file {record.record_id}.mat is missing")
        if true is not None and len(true) != len(cues):
            raise RecordError(f"{record.files[1]} has {len(true)} labels for {len(cues)} cues")
        starts = [e.sample for e in events if e.code == TRIAL_START]
        rejected = {e.sample for e in events if e.code == REJECTED}
        out = []
        for i, cue in enumerate(cues):
            if cue.code == UNKNOWN_CUE:
                cls = true[i]  # type: ignore[index]
            else:
                cls = CUE_CLASS[cue.code]
                if true is not None and true[i] != cls:
                    raise RecordError(f"trial {i}: cue {cue.code} (class {cls}) but "
                                      f"{record.files[1]} says class {true[i]}")
            start = max((s for s in starts if s <= cue.sample), default=None)
            out.append((cue.sample, cls, start is not None and start in rejected))
        return out

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        """One sample per trial: EEG (`signal`) and EOG (`eog`) over [cue, cue + 4 s)."""
        try:
            with GDFRecording(self.path(root, record.files[0])) as rec:
                missing = [c for c in EEG_LABELS + EOG_LABELS if c not in rec.channels]
                if missing:
                    raise RecordError(f"{record.files[0]} lacks channel(s) {', '.join(missing)}")
                trials = self.trials(record, root, rec.events())
                fs = rec.sampling_rate_hz
                n = int(round(TRIAL_S * fs))
                for i, (cue, cls, rejected) in enumerate(trials):
                    eeg = rec.read_uv(EEG_LABELS, cue, cue + n)
                    eog = rec.read_uv(EOG_LABELS, cue, cue + n)
                    yield Sample(
                        key_suffix=f"t{i:03d}",
                        classes=[CLASSES[cls - 1]],
                        source_labels={"class": cls, "cue_code": (
                            UNKNOWN_CUE if record.meta["session"] == "E" else 768 + cls)},
                        payloads={
                            "signal": Payload("signal", eeg, {
                                "sampling_rate_hz": fs, "channels": EEG_NAMES, "units": "uV"}),
                            "eog": Payload("signal", eog, {
                                "sampling_rate_hz": fs, "channels": EOG_LABELS, "units": "uV",
                                "standard": "eeg"}),
                        },
                        meta={**record.meta, "trial_index": i, "cue_onset_s": cue / fs,
                              "trial_duration_s": TRIAL_S, "rejected_by_experts": rejected,
                              "source_channels": EEG_LABELS, "reference": "left mastoid"},
                        task="motor-imagery classification",
                    )
        except GDFError as exc:
            raise RecordError(str(exc)) from None

    def estimate_output_bytes(self, record: RawRecord) -> int:
        # ~1 trial per 8 s of a 25-channel int16 file at 250 Hz; each 25 x 800 float32 out
        trials = max(1, record.size_bytes // (25 * 2 * 250 * 8))
        return trials * (25 * 800 * 4 + 2048)
