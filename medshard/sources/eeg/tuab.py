"""TUH EEG Abnormal Corpus (TUAB): normal vs abnormal clinical EEG, one sample per 10-s window.

Raw layout (TUAB v3.0.1 AAREADME; BIOT `datasets/TUAB/process.py`):

    edf/{train,eval}/{normal,abnormal}/01_tcp_ar/<subject>_s<NNN>_t<NNN>.edf

One session is split into token files t000, t001, ...; each file is one record.
Channels are referential (`EEG FP1-REF`, ...); the native rate is read from each
EDF header (256 Hz in most files).

What `load` yields per record: the 16-channel bipolar TCP montage used by BIOT and
CLIMB, in microvolts at the native rate, cut into floor(duration / 10 s)
consecutive non-overlapping 10-s windows (the remainder is dropped). The pipeline
resamples each window to 200 Hz and divides each channel by the 95th percentile
of its absolute amplitude (BIOT), keeping that divisor as the channel's `scale`.
Because each window is resampled on its own, the few samples at window edges
differ slightly from resampling the whole recording first (BIOT's order).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medshard.errors import UserError
from medshard.schemas import RawRecord, Sample, SourceInfo
from medshard.schemas.models import PublishedCounts
from medshard.schemas.sample import Filtered, Payload, RecordError
from medshard.sources.eeg.tuh import (
    MONTAGE_16_NAME,
    OFFICIAL_SPLITS,
    TUH_LICENSE,
    TUHSession,
    TUHSource,
    record_id_for,
    tuh_download,
)

WINDOW_S = 10.0
_LABELS = ("normal", "abnormal")


class TUAB(TUHSource):
    """TUH EEG Abnormal Corpus: classes `normal` / `abnormal` from the folder a file is in."""

    layout_hint = "edf/train/normal/01_tcp_ar/*.edf"
    fixture = "medshard.sources.eeg.tuab_fixture:FIXTURE"
    download = tuh_download("tuh_eeg_abnormal", "v3.0.1")
    payload_members = ("signal.npy",)
    info = SourceInfo(
        name="tuab",
        title="TUH EEG Abnormal Corpus (TUAB)",
        version="3.0.1",
        modality="eeg",
        tasks=["abnormal-eeg-detection"],
        license=TUH_LICENSE,
        access="manual",
        homepage="https://isip.piconepress.com/projects/nedc/html/tuh_eeg/",
        citation=(
            "Lopez de Diego S. Automated Interpretation of Abnormal Adult "
            "Electroencephalograms. MS thesis, Temple University, 2017. "
            "Obeid I, Picone J. The Temple University Hospital EEG Data Corpus. "
            "Frontiers in Neuroscience 10:196, 2016."
        ),
        label_space=list(_LABELS),
        split_policy=(
            "official eval/ folder is test; train/ is split into train and val by "
            "HMAC-SHA256 of the subject id (key 'medshard-split:tuab'), a `val_fraction` "
            "of subjects (default 0.1) going to val"
        ),
        release_notes={
            "3.0.1": "EDF headers rewritten upstream; signals unchanged from 3.0.0 (AAREADME)",
        },
        published_counts=PublishedCounts(
            train=2717, test=276, unit="recordings",
            reference="CLIMB Table 8: recordings (files), not 10-s windows",
        ),
    )

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        """One record per EDF file, sorted by path; reads no EDF content."""
        self.check_root(root)
        seen: dict[str, str] = {}
        for split_dir, official in OFFICIAL_SPLITS.items():
            for label in _LABELS:
                base = root / "edf" / split_dir / label
                if not base.is_dir():
                    continue
                for path in sorted(base.rglob("*.edf")):
                    rel = path.relative_to(root).as_posix()
                    record_id = record_id_for(path)
                    if record_id in seen:
                        raise UserError(
                            f"tuab: {rel} and {seen[record_id]} have the same file name; "
                            "remove the duplicate copy from the raw tree"
                        )
                    seen[record_id] = rel
                    subject = path.stem.split("_")[0]
                    parts = path.relative_to(base).parts
                    yield RawRecord(
                        record_id=record_id,
                        subject_id=subject,
                        files=[rel],
                        source_labels={"folder": label},
                        split=self.carve_val(official or "train", subject),
                        size_bytes=path.stat().st_size,
                        meta={"montage_folder": parts[0] if len(parts) > 1 else ""},
                    )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        """floor(duration / 10 s) samples, each 16 montage channels x 10 s at the native rate (uV).

        Raises RecordError for an unreadable file or a missing montage electrode,
        Filtered for a file shorter than one window; both before yielding anything.
        """
        label = record.source_labels["folder"]
        with TUHSession(self.path(root, record.files[0])) as session:
            rate = session.sampling_rate_hz
            win = int(round(WINDOW_S * rate))
            if abs(win - WINDOW_S * rate) > 1e-6:
                raise RecordError(
                    f"sampling rate {rate} Hz gives no whole number of samples per 10-s window"
                )
            n_windows = session.n_samples // win
            if n_windows == 0:
                raise Filtered("recording shorter than one 10-s window")
            common = {
                "montage": MONTAGE_16_NAME,
                "reference": session.reference,
                "montage_folder": record.meta.get("montage_folder", ""),
                "source_channels": session.source_labels,
                "native_sampling_rate_hz": rate,
                "recording_duration_s": session.duration_s,
                "n_windows": n_windows,
                "window_duration_s": WINDOW_S,
            }
            for w in range(n_windows):
                data = session.read_montage(w * win, (w + 1) * win)
                yield Sample(
                    key_suffix=f"w{w:04d}",
                    classes=[label],
                    source_labels=dict(record.source_labels),
                    payloads={
                        "signal": Payload(
                            kind="signal",
                            data=data,
                            descriptor={
                                "sampling_rate_hz": rate,
                                "channels": session.channels,
                                "units": "uV",
                            },
                        )
                    },
                    meta={**common, "window_index": w, "window_start_s": w * WINDOW_S},
                    task="classification",
                )
