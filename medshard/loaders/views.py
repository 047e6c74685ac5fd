"""Views a loader can put on stored samples without rebuilding: ECG windows, label sets.

The build stores one standard (ECG: 12 leads, 500 Hz, 10 s, one amplitude factor per
record). Published models were trained on other cuts of the same data; a view gives a
model exactly that cut, computed from the stored tensor:

- `ecg_view="full"`: the stored signal (default).
- `ecg_view="climb-paper"`: the first 2,500 samples at 500 Hz (the CLIMB paper's text:
  "500 Hz, 2,500 timesteps"; its code keeps 5,000).
- `ecg_view="ecg-jepa"`: leads I, II, V1-V6, the whole 10 s resampled to 2,500 samples
  (250 Hz), as CLIMB's ECG-JEPA path feeds that encoder. Polyphase resampling with the
  same filter as `scipy.signal.resample_poly` (Kaiser window, beta 5, zero padding).

- `label_view="source"`: labels and mask as built (default).
- `label_view="climb"`: each derived concept of the vocabulary (`union_of`, e.g. CLIMB's
  "A. Fib/Aflutter" = atrial fibrillation or flutter) becomes positive when a member is,
  and is unmasked where a member was; its members are masked out. A model then sees
  CLIMB's class set.

NumPy only: `medshard.loaders` must not pull SciPy or the ETL stack.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np

ECG_VIEWS = ("full", "climb-paper", "ecg-jepa")
LABEL_VIEWS = ("source", "climb")

CLIMB_PAPER_SAMPLES = 2500
ECG_JEPA_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
ECG_JEPA_SAMPLES = 2500


@lru_cache(maxsize=32)
def _polyphase_filter(up: int, down: int) -> tuple[np.ndarray, int]:
    """(taps, half length) of resample_poly's default anti-aliasing FIR for up/down."""
    max_rate = max(up, down)
    half_len = 10 * max_rate
    n = np.arange(2 * half_len + 1) - half_len
    cutoff = 1.0 / max_rate
    taps = cutoff * np.sinc(cutoff * n) * np.kaiser(2 * half_len + 1, 5.0)
    taps /= taps.sum()  # unit gain at DC, as firwin scales it
    return taps * up, half_len


def resample_poly_np(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample the last axis by up/down like scipy.signal.resample_poly (constant padding)."""
    taps, half_len = _polyphase_filter(up, down)
    n_in = x.shape[-1]
    n_out = -(-n_in * up // down)
    stuffed = np.zeros(x.shape[:-1] + (n_in * up,), dtype=np.float64)
    stuffed[..., ::up] = x
    rows = stuffed.reshape(-1, stuffed.shape[-1])
    out = np.empty((rows.shape[0], n_out), dtype=np.float64)
    picks = np.arange(n_out) * down + half_len
    for i, row in enumerate(rows):
        out[i] = np.convolve(row, taps)[picks]
    return out.reshape(x.shape[:-1] + (n_out,))


def ecg_view(signal: np.ndarray, descriptor: dict[str, Any], view: str) -> tuple[np.ndarray, dict]:
    """The `view` of a stored C x T ECG and its updated descriptor (see the module docstring)."""
    if view == "full":
        return signal, descriptor
    desc = dict(descriptor)
    desc["view"] = view
    rate = float(descriptor["sampling_rate_hz"])
    if view == "climb-paper":
        if rate != 500.0:
            raise ValueError(f"ecg_view='climb-paper' needs a 500 Hz build, this one is {rate:g} Hz")
        out = signal[:, :CLIMB_PAPER_SAMPLES]
        if out.shape[1] < CLIMB_PAPER_SAMPLES:
            out = np.pad(out, ((0, 0), (0, CLIMB_PAPER_SAMPLES - out.shape[1])))
    elif view == "ecg-jepa":
        names = list(descriptor["channels"])
        missing = [lead for lead in ECG_JEPA_LEADS if lead not in names]
        if missing:
            raise ValueError(f"ecg_view='ecg-jepa' needs leads {', '.join(missing)}")
        picked = signal[[names.index(lead) for lead in ECG_JEPA_LEADS]]
        ratio = Fraction(ECG_JEPA_SAMPLES, picked.shape[1])
        out = resample_poly_np(picked, ratio.numerator, ratio.denominator)
        desc["channels"] = list(ECG_JEPA_LEADS)
        desc["sampling_rate_hz"] = rate * ECG_JEPA_SAMPLES / picked.shape[1]
        desc["scale"] = [descriptor["scale"][names.index(lead)] for lead in ECG_JEPA_LEADS]
        if descriptor.get("valid_samples") is not None:
            desc["valid_samples"] = int(descriptor["valid_samples"] * ratio)
    else:
        raise ValueError(f"ecg_view={view!r} is not one of {', '.join(ECG_VIEWS)}")
    desc["n_samples"] = int(out.shape[1])
    if view == "climb-paper" and descriptor.get("valid_samples") is not None:
        desc["valid_samples"] = min(int(descriptor["valid_samples"]), CLIMB_PAPER_SAMPLES)
    return np.ascontiguousarray(out, dtype=np.float32), desc


def union_view(
    labels: np.ndarray, mask: np.ndarray, index: dict[str, int], unions: dict[str, list[str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and mask with each derived concept filled from its members, members masked."""
    labels, mask = labels.copy(), mask.copy()
    for union, members in unions.items():
        rows = [index[m] for m in members]
        if mask[rows].any():
            labels[index[union]] = labels[rows].max()
            mask[index[union]] = 1.0
            mask[rows] = 0.0
            labels[rows] = 0.0
    return labels, mask
