"""EDF / EDF+ recordings read with pyedflib, safely from many threads, and without identity fields.

pyedflib is not thread-safe: its C library (EDFlib) keeps every open file in one
process-wide table, refuses a file another thread has open ("file has already been
opened") and, read from two threads at once, returns short reads and samples of the
other thread's file (measured: two builds in two threads wrote different TUAB windows).
Beam's workers run several bundles of one process in threads, so every pyedflib call
here runs under one process-wide lock, and `EdfFile`s of one path share one reader
(opened once: EDFlib parses a file's annotations on every open, so reopening per block
would read a two-hour file again for every minute of it).

Two pyedflib defects are contained here (pyedflib 0.1.42, measured):
- a reader whose open fails (a truncated or garbled file) keeps handle 0, and freeing it
  closes EDFlib's handle 0, which by then belongs to another open file: that file's
  reads then fail. Such half-opened readers are kept alive (`_Reader`), so they are
  never freed; they hold no file.
- a read that fails returns zeros (and prints "read -1, less than n requested"): every
  read fills a NaN-initialized buffer and refuses one that still holds a NaN, since
  EDF physical values are always finite.

What leaves this module is per-signal label, sampling rate, sample count and physical
dimension, and physical sample values. The EDF header's identity fields (patient
name/code, birthdate, sex, recording start date, technician, equipment, admin code) are
never read into any returned value.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pyedflib

from medshard.schemas.sample import RecordError

# every pyedflib call of the process (see the module docstring)
_LOCK = threading.Lock()
# the files open in this process: path -> (reader, EdfFiles using it); EDFlib refuses to
# open a file twice, so EdfFiles of one path share one reader
_OPEN: dict[str, tuple[pyedflib.EdfReader, int]] = {}

# readers whose open failed: kept so that they are never freed (see the module docstring)
_UNOPENED: list[pyedflib.EdfReader] = []


class _Reader(pyedflib.EdfReader):
    """pyedflib's reader, except that one whose open fails is never freed."""

    def __init__(self, path: str) -> None:
        try:
            super().__init__(path)
        except BaseException:
            _UNOPENED.append(self)
            raise


# physical dimension (lower case) -> factor to microvolts
_TO_MICROVOLTS = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3}


def microvolts_per_unit(unit: str) -> float | None:
    """The factor from an EDF physical dimension ("uV", "mV", "V", ...) to microvolts;
    None when the dimension is not a voltage."""
    return _TO_MICROVOLTS.get(unit.strip().lower())


@dataclass(frozen=True)
class EdfSignal:
    """One signal of the file, as its header describes it."""

    index: int
    label: str
    rate_hz: float
    n_samples: int
    unit: str


class EdfFile:
    """One EDF file, opened now through the process's shared reader; a context manager.

    Raises RecordError when pyedflib cannot read the file. `signals` is read once, at
    opening; `read` decodes a span of one signal in physical units (float64).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        key = str(path)
        with _LOCK:
            if key in _OPEN:
                reader, users = _OPEN[key]
            else:
                try:
                    reader = _Reader(key)
                except OSError as exc:  # pyedflib raises OSError for unreadable / non-EDF files
                    raise RecordError(f"cannot read EDF {path.name}: {exc}; re-download the "
                                      "file") from exc
                users = 0
            _OPEN[key] = (reader, users + 1)
            self._reader: pyedflib.EdfReader | None = reader
            try:
                n_samples = reader.getNSamples()
                self.signals: list[EdfSignal] = [
                    EdfSignal(index=i, label=label, rate_hz=float(reader.getSampleFrequency(i)),
                              n_samples=int(n_samples[i]),
                              unit=reader.getPhysicalDimension(i).strip())
                    for i, label in enumerate(reader.getSignalLabels())
                ]
            except BaseException:
                self._release()
                raise

    def read(self, index: int, start: int, n: int) -> np.ndarray:
        """Samples [start, start + n) of signal `index`, physical units, float64."""
        if self._reader is None:
            raise ValueError(f"EDF {self.path.name} was closed")
        if not 0 <= index < len(self.signals) or start < 0 or n < 0 or \
                start + n > self.signals[index].n_samples:
            raise ValueError(f"EDF {self.path.name}: no samples {start}..{start + n} in "
                             f"signal {index}")
        out = np.full(n, np.nan)
        with _LOCK:  # one pyedflib call at a time in the process
            self._reader.readsignal(index, start, n, out)
        if np.isnan(out).any():
            raise RecordError(f"EDF {self.path.name}: reading samples {start}..{start + n} of "
                              f"signal {index} failed (the file is shorter than its header "
                              "says, or unreadable); re-download it")
        return out

    def _release(self) -> None:
        # with _LOCK held
        key = str(self.path)
        reader, users = _OPEN[key]
        if users > 1:
            _OPEN[key] = (reader, users - 1)
        else:
            del _OPEN[key]
            reader.close()
        self._reader = None

    def close(self) -> None:
        """Release this file's share of the reader (closed when no EdfFile uses it)."""
        if self._reader is not None:
            with _LOCK:
                self._release()

    def __enter__(self) -> EdfFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_count() -> int:
    """How many files the process holds open (for tests of release on every path)."""
    with _LOCK:
        return len(_OPEN)
