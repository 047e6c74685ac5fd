"""A fast reader for single-file WFDB records in format 16 (PTB-XL's), with wfdb as fallback.

wfdb's `rdsamp` spends ~90% of a PTB-XL record's time parsing the 13-line header
with pandas; this parser reads the same header fields directly and the signal with
one read. Anything it does not handle exactly (other formats, several
signal files, byte offsets, skew) goes to `wfdb.rdsamp`. Physical values follow the
WFDB spec: (digital - baseline) / gain, with the format's invalid-sample value as NaN.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_GAIN = re.compile(r"^(?P<gain>[-+0-9.eE]+)?(?:\((?P<baseline>[-+0-9]+)\))?(?:/(?P<units>\S+))?$")
FORMAT16_INVALID = -32768


class WFDBError(Exception):
    """A header or signal file that does not match the WFDB format."""


@dataclass
class WFDBHeader:
    name: str
    n_signals: int
    fs: float
    n_samples: int
    files: list[str]
    formats: list[str]
    gains: list[float]
    baselines: list[int]
    units: list[str]
    names: list[str]
    simple: bool  # one format-16 file, no skew / offset: the fast path applies


def parse_header(path: Path) -> WFDBHeader:
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise WFDBError(f"empty WFDB header {path.name}")
    rec = lines[0].split()
    try:
        name, n_sig = rec[0], int(rec[1])
        fs = float(rec[2].split("/")[0]) if len(rec) > 2 else 250.0
        n_samples = int(rec[3]) if len(rec) > 3 else 0
    except (IndexError, ValueError):
        raise WFDBError(f"bad record line in {path.name}: {lines[0][:80]!r}") from None
    if "/" in name:  # multi-segment records are not single-file
        raise WFDBError(f"multi-segment record {name}")
    if len(lines) < 1 + n_sig:
        raise WFDBError(f"{path.name} declares {n_sig} signals but has {len(lines) - 1} lines")
    files, formats, gains, baselines, units, names = [], [], [], [], [], []
    simple = n_samples > 0
    for line in lines[1 : 1 + n_sig]:
        parts = line.split()
        if len(parts) < 2:
            raise WFDBError(f"bad signal line in {path.name}: {line[:80]!r}")
        files.append(parts[0])
        fmt = parts[1]
        formats.append(fmt)
        if fmt != "16":  # skew 'x', offset '+', other formats: leave to wfdb
            simple = False
        gain, baseline, unit = 200.0, None, "mV"
        if len(parts) > 2:
            m = _GAIN.match(parts[2])
            if not m:
                raise WFDBError(f"bad gain field {parts[2]!r} in {path.name}")
            gain = float(m.group("gain") or 200.0) or 200.0
            baseline = int(m.group("baseline")) if m.group("baseline") else None
            unit = m.group("units") or "mV"
        adc_zero = int(parts[4]) if len(parts) > 4 else 0
        gains.append(gain)
        baselines.append(adc_zero if baseline is None else baseline)
        units.append(unit)
        names.append(" ".join(parts[8:]) if len(parts) > 8 else f"ch{len(names)}")
    if len(set(files)) != 1:
        simple = False
    return WFDBHeader(name, n_sig, fs, n_samples, files, formats, gains, baselines, units,
                      names, simple)


def read_record(
    base: Path, resolve: Callable[[Path], Path] | None = None
) -> tuple[np.ndarray, dict]:
    """(samples x channels float64 in physical units, fields like wfdb.rdsamp's).

    `resolve` maps each signal file the header names to the path to open (the caller
    confines it to its root: `medshard.formats.confine`), and raises for one it refuses.
    """
    header = parse_header(base.with_suffix(".hea"))
    for name in dict.fromkeys(header.files):
        if resolve is not None:  # wfdb's fallback opens these itself: check them all first
            resolve(base.parent / name)
    if not header.simple:
        import wfdb

        signal, fields = wfdb.rdsamp(str(base))
        return signal, fields
    dat = resolve(base.parent / header.files[0]) if resolve else base.parent / header.files[0]
    expected = header.n_samples * header.n_signals * 2
    size = dat.stat().st_size
    if size < expected:
        raise WFDBError(
            f"{dat.name} has {size // (2 * header.n_signals)} samples, header says "
            f"{header.n_samples}"
        )
    with open(dat, "rb") as f:  # Python's open: readers can be traced and confined to a root
        digital = np.frombuffer(f.read(expected), dtype="<i2")
    digital = digital.reshape(header.n_samples, header.n_signals)
    signal = (digital - np.asarray(header.baselines, dtype=np.float64)) / np.asarray(
        header.gains, dtype=np.float64)
    signal[digital == FORMAT16_INVALID] = np.nan
    fields = {
        "fs": header.fs,
        "sig_len": header.n_samples,
        "n_sig": header.n_signals,
        "units": header.units,
        "sig_name": header.names,
    }
    return signal, fields
