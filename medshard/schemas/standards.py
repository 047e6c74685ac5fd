"""The signal standard of each modality (ECG, EEG, IMU, vitals): pure data, no SciPy.

A standard says what every signal of a modality is made into: sampling rate, length,
channel order, amplitude normalization, CLIMB's leading-zero filter. The build's config
records the standards (they enter its hash); `--standard MODALITY.FIELD=VALUE` changes one
field for a build; `medshard info SOURCE` prints the default for the source's modality.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

ECG_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]

NORMALIZATIONS = ("record-range", "lead-range", "p95", "none")


@dataclass(frozen=True)
class SignalSpec:
    """How one modality's signals are standardized. Part of the build config.

    `normalization`:
      - "record-range": the whole record divided by one factor, max - min over all
        channels (CLIMB's code), so ratios between leads (the voltage criteria of
        hypertrophy) survive and mV = stored * scale;
      - "lead-range": each channel divided by its own max - min (loses inter-lead ratios);
      - "p95": each channel divided by its 95th percentile of |x| (BIOT / CLIMB for EEG);
      - "none": physical units as recorded.
    """

    sampling_rate_hz: float
    n_samples: int | None = None  # None keeps the resampled length
    channels: tuple[str, ...] | None = None  # None keeps the source's channel order
    normalization: str = "record-range"
    zero_prefix_filter: int = 0  # drop when the first N samples (at target rate) are all zero

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization {self.normalization!r} is not one of {', '.join(NORMALIZATIONS)}"
            )
        if self.sampling_rate_hz <= 0:
            raise ValueError(f"sampling rate must be positive, not {self.sampling_rate_hz}")
        if self.n_samples is not None and self.n_samples < 1:
            raise ValueError(f"signal length must be at least 1 sample, not {self.n_samples}")

    def as_config(self) -> dict[str, Any]:
        return {
            "sampling_rate_hz": self.sampling_rate_hz,
            "n_samples": self.n_samples,
            "channels": list(self.channels) if self.channels else None,
            "normalization": self.normalization,
            "zero_prefix_filter": self.zero_prefix_filter,
        }


# 10 s at 500 Hz: a PTB-XL record whole (its labels describe all 10 s). CLIMB's paper says
# "500 Hz, 2,500 timesteps" but its code keeps 5,000; the paper's view is a loader option.
ECG_SPEC = SignalSpec(500.0, 5000, tuple(ECG_LEADS), "record-range", 15)
EEG_SPEC = SignalSpec(200.0, None, None, "p95", 0)


@dataclass(frozen=True)
class WindowSpec:
    """How a source cuts a continuous recording into fixed windows (seconds of raw time).

    A source that windows reads its modality's entry as the default of its own window
    options; the signal standard's `n_samples` is `length_s` at the standard's rate.
    """

    length_s: float
    hop_s: float

    def __post_init__(self) -> None:
        if self.length_s <= 0 or self.hop_s <= 0:
            raise ValueError(f"window length and hop must be positive, not {self.length_s}, "
                             f"{self.hop_s}")


# IMU (HuGaDB): 2-s windows every 1 s (50 % overlap, the usual activity-recognition cut),
# at 100 Hz: 200 samples per window.
IMU_WINDOW = WindowSpec(length_s=2.0, hop_s=1.0)
WINDOW_STANDARDS: dict[str, WindowSpec] = {"imu": IMU_WINDOW}

# The signal standard of each modality: what every signal of that modality is made into.
# `--standard MODALITY.FIELD=VALUE` changes one field for a build (it enters the config hash).
SIGNAL_STANDARDS: dict[str, SignalSpec] = {
    "ecg": ECG_SPEC,
    "eeg": EEG_SPEC,
    # IMU (accelerometer/gyroscope): 100 Hz, one window (IMU_WINDOW: 2 s = 200 samples),
    # units kept; bedside vitals: a common rate, physical units kept
    "imu": SignalSpec(100.0, 200, None, "none", 0),
    "vitals": SignalSpec(1.0, None, None, "none", 0),
}
STANDARD_FIELDS = {"rate": "sampling_rate_hz", "length": "n_samples",
                   "normalization": "normalization", "zero_prefix_filter": "zero_prefix_filter"}


def parse_standards(
    pairs: list[str], base: dict[str, SignalSpec] | None = None
) -> dict[str, SignalSpec]:
    """The standards with `MODALITY.FIELD=VALUE` changes applied (e.g. `ecg.rate=250`).

    Fields: rate (Hz), length (samples; `none` keeps the resampled length), normalization
    (record-range, lead-range, p95, none), zero_prefix_filter (samples). Raises ValueError
    with one line naming what is wrong.
    """
    out = dict(SIGNAL_STANDARDS if base is None else base)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        modality, _, field = name.strip().partition(".")
        if not sep or modality not in out or field not in STANDARD_FIELDS:
            raise ValueError(
                f"--standard takes MODALITY.FIELD=VALUE with MODALITY one of "
                f"{', '.join(sorted(out))} and FIELD one of {', '.join(STANDARD_FIELDS)}; "
                f"got {pair!r}"
            )
        value = value.strip()
        parsed: Any
        if field == "rate":
            parsed = float(value)
        elif field == "normalization":
            parsed = value
        elif value.lower() == "none" and field == "length":
            parsed = None
        else:
            parsed = int(value)
        out[modality] = replace(out[modality], **{STANDARD_FIELDS[field]: parsed})
    return out


def describe_standard(spec: SignalSpec) -> str:
    """One line: `500 Hz, 5000 samples, 12 channels (I ... V6), record-range`."""
    length = f"{spec.n_samples} samples" if spec.n_samples else "length kept"
    chans = (f"{len(spec.channels)} channels ({spec.channels[0]} ... {spec.channels[-1]})"
             if spec.channels else "the source's channels")
    zero = f", drops records whose first {spec.zero_prefix_filter} samples are zero" \
        if spec.zero_prefix_filter else ""
    return f"{spec.sampling_rate_hz:g} Hz, {length}, {chans}, {spec.normalization}{zero}"


# zlib level of the PNGs medshard writes (`medshard build --png-level`). 3, not zlib's 6:
# on the real radiographs, CT, MR and fundus images of benchmarks/png_level.py it encodes
# 2.4x faster for 5% more bytes (level 1: 3.6x faster, 8% more); the encode is most of a
# DICOM image source's build time. Every level is lossless: the pixels are the same.
DEFAULT_PNG_LEVEL = 3
