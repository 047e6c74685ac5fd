"""TUH EEG Events Corpus (TUEV): six EEG event classes, one sample per annotated event.

Raw layout (v2.0.x; BIOT `datasets/TUEV/process.py`, PyHealth `TUEVDataset`):

    edf/train/<subject>/<subject>_<NNNNNNNN>.edf   e.g. edf/train/00002275/00002275_00000001.edf
    edf/eval/<NNN>/<class>_<NNN>_a_[k].edf         e.g. edf/eval/032/bckg_032_a_.edf

with a same-stem `.rec` beside each EDF: one event per line, `channel,start,stop,label`
(seconds; `channel` numbers the 22-channel TCP montage, `label` 1 spsw, 2 gped,
3 pled, 4 eyem, 5 artf, 6 bckg). The subject is the folder under train/ or eval/
(in eval/ it is TUH's eval index, not a patient number).

What `load` yields: one sample per `.rec` row, in file order, as BIOT builds them:
the window [start - 2 s, stop + 2 s] (5 s for the usual 1-s event) of the
16-channel bipolar montage, in microvolts at the native rate. Where the window
runs past either end of the recording it is padded by `edge_padding`:
  - "wrap" (default, BIOT): the recording is treated as circular, so samples come
    from the other end (BIOT tiles the signal three times and cuts);
  - "reflect": mirrored about the edge sample (no repeated edge).
The number of padded samples is in the sample meta. Several rows annotating the
same span on different channels give samples with the same signal and different
`event_channel`, as in BIOT. The pipeline resamples to 200 Hz and applies the
per-channel 95th-percentile normalization.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from medshard.errors import UserError
from medshard.schemas import RawRecord, Sample, SourceInfo
from medshard.schemas.models import PublishedCounts
from medshard.schemas.sample import Filtered, Payload, RecordError
from medshard.sources.base import CarveValOptions
from medshard.sources.eeg.tuh import (
    MONTAGE_16_CHANNELS,
    MONTAGE_16_NAME,
    OFFICIAL_SPLITS,
    TCP_MONTAGE_22,
    TUH_LICENSE,
    TUHSession,
    TUHSource,
    record_id_for,
    tuh_download,
)

PAD_S = 2.0
# .rec label code -> class name in the label space (TUEV AAREADME order).
CLASSES: dict[int, str] = {1: "SPSW", 2: "GPED", 3: "PLED", 4: "EYEM", 5: "ARTF", 6: "BCKG"}


@dataclass(frozen=True)
class Event:
    """One row of a `.rec` file."""

    row: int
    channel: int
    start_s: float
    stop_s: float
    code: int


def parse_rec(text: str, name: str) -> list[Event]:
    """Events of a `.rec` file (`channel,start,stop,label` per line); RecordError on a bad line."""
    events = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        try:
            if len(fields) != 4:
                raise ValueError("expected 4 fields")
            channel_f, start, stop, code_f = (float(f) for f in fields)
            channel, code = int(channel_f), int(code_f)
            if channel != channel_f or code != code_f:
                raise ValueError("channel and label must be integers")
        except ValueError as exc:
            raise RecordError(
                f"{name} line {lineno}: {exc}; expected 'channel,start,stop,label'"
            ) from exc
        if not 0 <= channel < len(TCP_MONTAGE_22):
            raise RecordError(f"{name} line {lineno}: channel {channel} is not a TCP channel 0-21")
        if code not in CLASSES:
            raise RecordError(f"{name} line {lineno}: label {code} is not a TUEV code 1-6")
        if not (math.isfinite(start) and math.isfinite(stop) and 0 <= start < stop):
            raise RecordError(f"{name} line {lineno}: event times {start}..{stop} s are invalid")
        events.append(Event(len(events), channel, start, stop, code))
    return events


def event_span(event: Event, rate_hz: float) -> tuple[int, int]:
    """Sample span [i0, i1) of an event's window at `rate_hz`, possibly outside the recording.

    As BIOT: the event starts at the first sample at or after `start` (likewise `stop`),
    and the window adds 2 s on each side.
    """
    pad = int(round(PAD_S * rate_hz))
    first = math.ceil(event.start_s * rate_hz - 1e-6)
    last = math.ceil(event.stop_s * rate_hz - 1e-6)
    return first - pad, last + pad


def read_padded(session: TUHSession, i0: int, i1: int, mode: str) -> np.ndarray:
    """Montage samples [i0, i1), padding beyond the recording by `mode` ("wrap" or "reflect")."""
    n = session.n_samples
    core = session.read_montage(max(i0, 0), min(i1, n))
    before, after = max(0, -i0), max(0, i1 - n)
    if not before and not after:
        return core
    if mode == "reflect":
        return np.pad(core, ((0, 0), (before, after)), mode="reflect")
    parts = []
    if before:
        parts.append(session.read_montage(n - before, n))
    parts.append(core)
    if after:
        parts.append(session.read_montage(0, after))
    return np.concatenate(parts, axis=1)


class TUEVOptions(CarveValOptions):
    edge_padding: Literal["wrap", "reflect"] = Field(
        "wrap", description="how an event window past the recording's edge is filled: "
        "wrap (BIOT) or reflect",
    )


class TUEV(TUHSource):
    """TUH EEG Events Corpus: classes SPSW, GPED, PLED, EYEM, ARTF, BCKG from `.rec` codes 1-6."""

    layout_hint = "edf/train/<subject>/*.edf and .rec files"
    payload_members = ("signal.npy",)
    info = SourceInfo(
        name="tuev",
        title="TUH EEG Events Corpus (TUEV)",
        version="2.0.1",
        modality="eeg",
        tasks=["eeg-event-classification"],
        license=TUH_LICENSE,
        access="manual",
        homepage="https://isip.piconepress.com/projects/nedc/html/tuh_eeg/",
        citation=(
            "Harati A, Golmohammadi M, Lopez S, Obeid I, Picone J. Improved EEG Event "
            "Classification Using Differential Energy. IEEE Signal Processing in Medicine "
            "and Biology Symposium, 2015. Obeid I, Picone J. The Temple University Hospital "
            "EEG Data Corpus. Frontiers in Neuroscience 10:196, 2016."
        ),
        label_space=list(CLASSES.values()),
        split_policy=(
            "official eval/ folder is test; train/ is split into train and val by "
            "HMAC-SHA256 of the subject id (key 'medshard-split:tuev'), a `val_fraction` "
            "of subjects (default 0.1) going to val"
        ),
        release_notes={
            "2.0.1": "same edf/{train,eval} tree and .rec format as 2.0.0 (used by BIOT)",
        },
        published_counts=PublishedCounts(
            unit="sessions",
            reference="CLIMB gives no counts: 518 sessions, 290 train / 78 eval patients",
        ),
    )

    Options = TUEVOptions
    fixture = "medshard.sources.eeg.tuev_fixture:FIXTURE"
    download = tuh_download("tuh_eeg_events", "v2.0.1")

    @property
    def edge_padding(self) -> str:
        return self._options["edge_padding"]

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        """One record per EDF file (with its .rec), sorted by path; reads no file content."""
        self.check_root(root)
        seen: dict[str, str] = {}
        for split_dir, official in OFFICIAL_SPLITS.items():
            base = root / "edf" / split_dir
            if not base.is_dir():
                continue
            for path in sorted(base.rglob("*.edf")):
                rel = path.relative_to(root).as_posix()
                record_id = record_id_for(path)
                if record_id in seen:
                    raise UserError(
                        f"tuev: {rel} and {seen[record_id]} have the same file name; "
                        "remove the duplicate copy from the raw tree"
                    )
                seen[record_id] = rel
                parts = path.relative_to(base).parts
                subject = parts[0] if len(parts) > 1 else path.stem.split("_")[0]
                rec = path.with_suffix(".rec")
                files = [rel]
                if rec.is_file():
                    files.append(rec.relative_to(root).as_posix())
                yield RawRecord(
                    record_id=record_id,
                    subject_id=subject,
                    files=files,
                    split=self.carve_val(official or "train", subject),
                    size_bytes=sum((root / f).stat().st_size for f in files if (root / f).is_file()),
                )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        """One sample per `.rec` row: 16 montage channels x (stop - start + 4 s) at the native rate.

        Every row is checked before anything is yielded: RecordError for a missing or
        malformed `.rec`, an event past the recording's end, an unreadable EDF or a
        missing montage electrode; Filtered for a `.rec` with no events.
        """
        edf = self.path(root, record.files[0])
        if len(record.files) < 2:
            raise RecordError(
                f"no annotation file {edf.with_suffix('.rec').name} beside {edf.name}; "
                "copy the .rec files of the release too"
            )
        rec_name = Path(record.files[1]).name
        try:
            text = self.path(root, record.files[1]).read_text(encoding="ascii")
        except UnicodeDecodeError as exc:
            raise RecordError(f"{rec_name} is not a text .rec file: {exc.reason}") from exc
        events = parse_rec(text, rec_name)
        if not events:
            raise Filtered("no annotated events in .rec")
        with TUHSession(edf) as session:
            rate, n = session.sampling_rate_hz, session.n_samples
            spans = []
            for ev in events:
                if ev.stop_s > session.duration_s + 1e-6:
                    raise RecordError(
                        f"{rec_name} row {ev.row + 1}: event ends at {ev.stop_s} s, after the "
                        f"recording ({session.duration_s:.3f} s)"
                    )
                i0, i1 = event_span(ev, rate)
                if i1 - i0 > n or (self.edge_padding == "reflect" and max(-i0, i1 - n) >= n):
                    raise RecordError(
                        f"{rec_name} row {ev.row + 1}: event window of {(i1 - i0) / rate:.1f} s "
                        f"is longer than the recording ({session.duration_s:.1f} s)"
                    )
                spans.append((i0, i1))
            common = {
                "montage": MONTAGE_16_NAME,
                "reference": session.reference,
                "source_channels": session.source_labels,
                "native_sampling_rate_hz": rate,
                "recording_duration_s": session.duration_s,
                "edge_padding": self.edge_padding,
            }
            for ev, (i0, i1) in zip(events, spans, strict=True):
                tcp_name = TCP_MONTAGE_22[ev.channel][0]
                yield Sample(
                    key_suffix=f"e{ev.row:04d}",
                    classes=[CLASSES[ev.code]],
                    source_labels={"label_code": ev.code, "channel": ev.channel},
                    payloads={
                        "signal": Payload(
                            kind="signal",
                            data=read_padded(session, i0, i1, self.edge_padding),
                            descriptor={
                                "sampling_rate_hz": rate,
                                "channels": session.channels,
                                "units": "uV",
                            },
                        )
                    },
                    meta={
                        **common,
                        "event_index": ev.row,
                        "event_channel": tcp_name,
                        "event_channel_index": ev.channel,
                        "event_channel_in_montage": tcp_name in MONTAGE_16_CHANNELS,
                        "event_start_s": ev.start_s,
                        "event_stop_s": ev.stop_s,
                        "window_start_s": i0 / rate,
                        "window_stop_s": i1 / rate,
                        "padded_samples_before": max(0, -i0),
                        "padded_samples_after": max(0, i1 - n),
                    },
                    task="classification",
                )
