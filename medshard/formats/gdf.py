"""GDF (General Data Format for biosignals) recordings read with MNE: signal spans and the event table.

GDF 1.x/2.x files keep their events in a table after the data (position, type code,
channel, duration); MNE turns each event into an annotation whose description is the
type code as text (`"769"`) and whose onset is the position in seconds. This module
opens a file lazily (`preload=False`), so a one-hour session is never held whole: only
the requested span of the requested channels is decoded.

What leaves this module is signal data in microvolts, the sampling rate, channel labels
and events. The GDF header's patient and recording identity fields are never returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np


class GDFError(Exception):
    """A file MNE cannot read as GDF, or a span outside the recording."""


@dataclass(frozen=True)
class GDFEvent:
    """One entry of the GDF event table, at the signal's sampling rate."""

    sample: int
    code: int
    duration_samples: int


class GDFRecording:
    """One GDF file opened with MNE (no preload); use as a context manager."""

    def __init__(self, path: Path) -> None:
        import mne

        self.path = path
        try:
            self._raw = mne.io.read_raw_gdf(str(path), preload=False, verbose="error")
        except Exception as exc:  # MNE raises ValueError, OSError, IndexError on broken files
            raise GDFError(f"MNE cannot read {path.name} as GDF: {exc}") from None
        self.sampling_rate_hz = float(self._raw.info["sfreq"])
        self.channels: list[str] = list(self._raw.ch_names)
        self.n_samples = int(self._raw.n_times)

    def events(self) -> list[GDFEvent]:
        """The event table in file order; descriptions that are not integer codes are skipped."""
        out = []
        fs = self.sampling_rate_hz
        first = self._raw.first_samp
        for onset, duration, desc in zip(self._raw.annotations.onset,
                                         self._raw.annotations.duration,
                                         self._raw.annotations.description, strict=True):
            try:
                code = int(desc)
            except ValueError:
                continue
            out.append(GDFEvent(int(round(onset * fs)) - first, code, int(round(duration * fs))))
        return out

    def read_uv(self, channels: list[str], start: int, stop: int) -> np.ndarray:
        """channels x [start, stop) in microvolts (MNE gives volts), float64."""
        if not 0 <= start < stop <= self.n_samples:
            raise GDFError(f"{self.path.name}: span [{start}, {stop}) outside 0..{self.n_samples}")
        try:
            data = self._raw.get_data(picks=channels, start=start, stop=stop)
        except Exception as exc:  # a file shorter than its header says fails here
            raise GDFError(f"{self.path.name}: cannot read samples {start}..{stop}: {exc}") from None
        return data * 1e6

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> GDFRecording:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
