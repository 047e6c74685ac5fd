"""Reading TUH EEG corpus EDF files and building the bipolar TCP montage (shared by TUAB, TUEV).

TUH sessions are referential EDF recordings with channels labelled like
`EEG FP1-REF` (average reference, montage folder `01_tcp_ar`) or `EEG FP1-LE`
(linked ears, `02_tcp_le`). Models trained on TUAB/TUEV (BIOT, CLIMB) use 16
channels of the ACNS temporal-central-parasagittal (TCP) bipolar montage, each
channel the difference of two referential electrodes.

`TUHSession` opens one EDF lazily with pyedflib and reads any sample range of
the montage on demand, so a two-hour session is never held whole in memory:
only the requested span of the 16 electrodes is decoded.

The EDF itself is read through `medshard.formats.edf.EdfFile`, which makes pyedflib safe
in Beam's threaded workers (one process-wide lock, one shared reader per file).

What leaves this module is signal data, the sampling rate, the duration and
channel labels. EDF header identity fields (patient name/code, birthdate, sex,
recording start date, technician, equipment, admin code) are never read into
any returned value.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import TracebackType
from typing import ClassVar

import numpy as np

from medshard.formats.edf import EdfFile, microvolts_per_unit
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import License
from medshard.schemas.sample import RecordError
from medshard.sources.base import CarveValOptions, MissingRawData, Source

# The 22-channel ACNS TCP montage in the channel numbering of TUEV's .rec files
# (TUEV AAREADME): (bipolar name, anode electrode, cathode electrode).
TCP_MONTAGE_22: tuple[tuple[str, str, str], ...] = (
    ("FP1-F7", "FP1", "F7"),
    ("F7-T3", "F7", "T3"),
    ("T3-T5", "T3", "T5"),
    ("T5-O1", "T5", "O1"),
    ("FP2-F8", "FP2", "F8"),
    ("F8-T4", "F8", "T4"),
    ("T4-T6", "T4", "T6"),
    ("T6-O2", "T6", "O2"),
    ("A1-T3", "A1", "T3"),
    ("T3-C3", "T3", "C3"),
    ("C3-CZ", "C3", "CZ"),
    ("CZ-C4", "CZ", "C4"),
    ("C4-T4", "C4", "T4"),
    ("T4-A2", "T4", "A2"),
    ("FP1-F3", "FP1", "F3"),
    ("F3-C3", "F3", "C3"),
    ("C3-P3", "C3", "P3"),
    ("P3-O1", "P3", "O1"),
    ("FP2-F4", "FP2", "F4"),
    ("F4-C4", "F4", "C4"),
    ("C4-P4", "C4", "P4"),
    ("P4-O2", "P4", "O2"),
)

# BIOT / CLIMB keep TCP channels 0-7 and 14-21: the chains that need no ear electrodes.
MONTAGE_16: tuple[tuple[str, str, str], ...] = TCP_MONTAGE_22[0:8] + TCP_MONTAGE_22[14:22]
MONTAGE_16_NAME = "tcp-bipolar-16"
MONTAGE_16_CHANNELS: list[str] = [name for name, _, _ in MONTAGE_16]

# "EEG FP1-REF", "eeg fp1 - le", "EEG FP1" -> electrode FP1, reference REF / LE / "".
_ELECTRODE_LABEL = re.compile(r"^\s*EEG\s+([A-Z0-9]+)\s*(?:-\s*(REF|LE)\s*)?$", re.IGNORECASE)


def parse_electrode(label: str) -> tuple[str, str] | None:
    """(electrode, reference) for a TUH referential EEG label, None for anything else.

    `EEG FP1-REF` -> ("FP1", "REF"), ` eeg fp1-le ` -> ("FP1", "LE"); channels such
    as `EEG EKG1-REF` parse too but are simply not used by the montage; labels that
    are not `EEG <electrode>[-REF|-LE]` (e.g. `PHOTIC-REF`, `EDF Annotations`) give None.
    """
    m = _ELECTRODE_LABEL.match(label)
    if m is None:
        return None
    return m.group(1).upper(), (m.group(2) or "").upper()


TUH_LICENSE = License(
    name="TUH EEG data sharing agreement",
    url="https://isip.piconepress.com/projects/nedc/html/tuh_eeg/",
    terms_version="not stated",  # the request form on the homepage carries no version
    credentialed=True,
)


def tuh_download(corpus: str, version: str) -> DownloadSpec:
    """How a TUH EEG corpus is fetched: by hand, after a signed request; `medshard download`
    prints these steps and then checks the copy with the source's own `check_root`."""
    return DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://isip.piconepress.com/projects/nedc/html/tuh_eeg/",
        steps=[
            "Request access to the TUH EEG corpora with the form on the page above (sign it "
            "and e-mail it as the page says); you receive a user name and password.",
            f"Copy {corpus}/{version}/ with the rsync command given in that e-mail into the "
            "folder named below, keeping its edf/ tree.",
        ],
    ))


_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


def record_id_for(path: Path) -> str:
    """A record id from an EDF file name: the stem, with characters outside [A-Za-z0-9_-] as '-'."""
    return _SAFE_ID.sub("-", path.stem)


# The TUH corpora ship edf/train and edf/eval: eval is the official test set.
OFFICIAL_SPLITS: dict[str, str | None] = {"train": None, "eval": "test"}


class TUHSource(Source):
    """What TUAB and TUEV share: the edf/{train,eval} tree and the train/val carve-out.

    Subclasses set `layout_hint`, the files a correct copy has, for the error message.
    """

    layout_hint: ClassVar[str] = "edf/train/..."
    Options = CarveValOptions

    def check_root(self, root: Path) -> None:
        """Raise MissingRawData unless `root/edf/train` or `root/edf/eval` exists."""
        super().check_root(root)
        if not any((root / "edf" / s).is_dir() for s in OFFICIAL_SPLITS):
            raise MissingRawData(
                f"{self.info.name}: {root} has no edf/train or edf/eval folder; copy "
                f"{self.info.title} {self.info.version} so that {root}/{self.layout_hint} "
                "exist (see the source's manual download steps)"
            )


class TUHSession:
    """One TUH EDF file opened lazily, read as the 16-channel bipolar montage in microvolts.

    Use as a context manager. Opening decodes only the header; `read_montage` decodes
    a bounded block (BLOCK_S) from the requested span on. Raises RecordError when the
    file cannot be read, lacks an electrode the montage needs (naming the montage channels and
    electrodes), mixes sampling rates across those electrodes, or has units
    that are not a voltage.
    """

    def __init__(
        self, path: Path, montage: tuple[tuple[str, str, str], ...] = MONTAGE_16
    ) -> None:
        self.path = path
        self.montage = montage
        self._edf: EdfFile | None = EdfFile(path)
        try:
            self._index_channels(self._edf)
        except BaseException:
            self.close()
            raise

    def _index_channels(self, edf: EdfFile) -> None:
        signals = edf.signals
        labels = [sig.label for sig in signals]
        found: dict[str, int] = {}
        for i, label in enumerate(labels):
            parsed = parse_electrode(label)
            if parsed is not None and parsed[0] not in found:
                found[parsed[0]] = i
        needed = sorted({e for _, a, b in self.montage for e in (a, b)})
        missing = [e for e in needed if e not in found]
        if missing:
            lost = [name for name, a, b in self.montage if a in missing or b in missing]
            raise RecordError(
                f"missing montage channel(s) {', '.join(lost)}: EDF {self.path.name} has no "
                f"electrode {', '.join(missing)} (labels like 'EEG {missing[0]}-REF'); "
                "a session without the full montage cannot be used"
            )
        self._channel = {e: found[e] for e in needed}
        self.source_labels = [labels[self._channel[e]] for e in needed]
        rates = {signals[i].rate_hz for i in self._channel.values()}
        if len(rates) != 1:
            raise RecordError(
                f"EDF {self.path.name}: montage electrodes use different sampling rates "
                f"{sorted(rates)} Hz; medshard expects one rate per session"
            )
        self.sampling_rate_hz = rates.pop()
        self._block: dict[str, np.ndarray] = {}
        self._block_start, self._block_len = 0, 0
        self.n_samples = min(signals[i].n_samples for i in self._channel.values())
        self._to_uv = {}
        for e, i in self._channel.items():
            unit = signals[i].unit
            factor = microvolts_per_unit(unit)
            if factor is None:
                raise RecordError(
                    f"EDF {self.path.name}: channel {labels[i]!r} has unit {unit!r}, not a "
                    "voltage (uV, mV, V); the file is not a TUH EEG recording"
                )
            self._to_uv[e] = factor
        # which reference the montage electrodes use: "REF" (01_tcp_ar) or "LE" (02_tcp_le)
        used = {parse_electrode(label)[1] for label in self.source_labels}  # type: ignore[index]
        self.reference = "+".join(sorted(r for r in used if r)) or "unlabelled"

    @property
    def duration_s(self) -> float:
        """Signal duration of the montage electrodes in seconds."""
        return self.n_samples / self.sampling_rate_hz

    @property
    def channels(self) -> list[str]:
        """Bipolar channel names in output row order."""
        return [name for name, _, _ in self.montage]

    BLOCK_S = 60.0  # seconds of every montage electrode decoded per read

    def read_montage(self, start: int, stop: int) -> np.ndarray:
        """Montage rows x samples [start, stop) in microvolts, float64.

        The referential electrodes are decoded a block (BLOCK_S, or the span if longer) at a
        time from `start`: memory stays bounded by one block whatever the session's length.
        """
        if not 0 <= start < stop <= self.n_samples:
            raise ValueError(f"span [{start}, {stop}) outside 0..{self.n_samples}")
        n = stop - start
        lo = self._block_start
        if not (lo <= start and stop <= lo + self._block_len):
            # read ahead: one pyedflib call per electrode per block, not per window (each
            # call costs ~0.2 ms of Python whatever its length); a block is >= 60 s
            lo = start
            length = min(max(n, int(self.BLOCK_S * self.sampling_rate_hz)), self.n_samples - lo)
            if self._edf is None:
                raise ValueError(f"EDF {self.path.name} was closed")
            raw = {e: self._edf.read(i, lo, length) for e, i in self._channel.items()}
            self._block = {e: block * self._to_uv[e] for e, block in raw.items()}
            self._block_start, self._block_len = lo, length
        ref = {e: block[start - lo:stop - lo] for e, block in self._block.items()}
        out = np.empty((len(self.montage), n), dtype=np.float64)
        for row, (_, anode, cathode) in enumerate(self.montage):
            np.subtract(ref[anode], ref[cathode], out=out[row])
        return out

    def close(self) -> None:
        """Release this session's share of the file handle."""
        self._block = {}
        if self._edf is not None:
            self._edf.close()
            self._edf = None

    def __enter__(self) -> TUHSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
