"""Signal standardization: channel order, polyphase resampling, fixed length, amplitude scale."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from medshard.schemas.sample import Filtered, RecordError

ECG_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@dataclass(frozen=True)
class SignalSpec:
    """How one modality's signals are standardized. Part of the build config."""

    sampling_rate_hz: float
    n_samples: int | None = None  # None keeps the resampled length
    channels: tuple[str, ...] | None = None  # None keeps the source's channel order
    normalization: str = "range"  # "range" | "p95" | "none"
    zero_prefix_filter: int = 0  # drop when the first N samples (at target rate) are all zero

    def as_config(self) -> dict[str, Any]:
        return {
            "sampling_rate_hz": self.sampling_rate_hz,
            "n_samples": self.n_samples,
            "channels": list(self.channels) if self.channels else None,
            "normalization": self.normalization,
            "zero_prefix_filter": self.zero_prefix_filter,
        }


ECG_SPEC = SignalSpec(500.0, 2500, tuple(ECG_LEADS), "range", 15)
EEG_SPEC = SignalSpec(200.0, None, None, "p95", 0)


def _canonical_lead(name: str) -> str:
    n = name.strip().upper().replace("LEAD ", "").replace(" (EINTHOVEN)", "")
    for lead in ECG_LEADS:
        if n == lead.upper():
            return lead
    return name.strip()


def reorder_channels(data: np.ndarray, names: list[str], wanted: tuple[str, ...]) -> np.ndarray:
    """Rows of `data` in the order of `wanted`; missing channels are an error naming them."""
    lookup = {_canonical_lead(n): i for i, n in enumerate(names)}
    missing = [w for w in wanted if w not in lookup]
    if missing:
        raise RecordError(f"missing channel(s) {', '.join(missing)} (has {', '.join(names)})")
    return data[[lookup[w] for w in wanted]]


def resample_signal(data: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Polyphase resampling along the last axis by the exact rational rate_out / rate_in."""
    if rate_in == rate_out:
        return data
    ratio = Fraction(rate_out / rate_in).limit_denominator(1000)
    return resample_poly(data, ratio.numerator, ratio.denominator, axis=-1)


def fix_length(data: np.ndarray, n: int) -> np.ndarray:
    """Crop the end or zero-pad the end to exactly n samples."""
    t = data.shape[-1]
    if t >= n:
        return data[..., :n]
    return np.pad(data, [(0, 0)] * (data.ndim - 1) + [(0, n - t)])


def amplitude_scale(data: np.ndarray, method: str) -> np.ndarray:
    """Per-channel divisor; a flat channel gets 1 so it stays all zero."""
    if method == "none":
        return np.ones(data.shape[0])
    if method == "range":
        scale = data.max(axis=-1) - data.min(axis=-1)
    elif method == "p95":
        # BIOT / CLIMB: x / (quantile(|x|, 0.95) + 1e-8)
        scale = np.quantile(np.abs(data), 0.95, axis=-1) + 1e-8
    else:
        raise ValueError(f"unknown normalization {method!r}")
    return np.where(scale > 0, scale, 1.0)


def standardize_signal(
    data: np.ndarray, descriptor: dict[str, Any], spec: SignalSpec
) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply `spec` to a C x T signal in physical units; returns float32 data + SignalDescriptor dict.

    Raises Filtered for rule-based exclusions (leading zeros) and RecordError for bad input.
    """
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] == 0:
        raise RecordError(f"signal must be channels x samples, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise RecordError("signal contains NaN or infinite values")
    rate_in = float(descriptor["sampling_rate_hz"])
    names = list(descriptor["channels"])
    if len(names) != data.shape[0]:
        raise RecordError(f"{len(names)} channel names for {data.shape[0]} channels")
    if spec.channels is not None:
        data = reorder_channels(data, names, spec.channels)
        names = list(spec.channels)
    if spec.zero_prefix_filter:
        # CLIMB's rule is stated at the target rate; judge it on the same span of raw time
        span = max(1, int(np.ceil(spec.zero_prefix_filter * rate_in / spec.sampling_rate_hz)))
        if not data[:, :span].any():
            raise Filtered(f"first {spec.zero_prefix_filter} samples zero on all channels")
    data = resample_signal(data, rate_in, spec.sampling_rate_hz)
    if spec.n_samples is not None:
        data = fix_length(data, spec.n_samples)
    scale = amplitude_scale(data, spec.normalization)
    out = (data / scale[:, None]).astype(np.float32)
    desc = {
        "sampling_rate_hz": spec.sampling_rate_hz,
        "channels": names,
        "units": descriptor["units"],
        "n_samples": int(out.shape[1]),
        "original_sampling_rate_hz": rate_in,
        "scale": [float(s) for s in scale],
        "normalization": spec.normalization,
        "dtype": "float32",
    }
    return out, desc
