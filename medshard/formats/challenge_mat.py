"""PhysioNet/CinC Challenge 2020/2021 ECG records: `<id>.hea` (WFDB header) + `<id>.mat` (`val`).

The Challenge ships each recording as a WFDB header and a MATLAB file whose one variable
`val` is the n_signals x n_samples integer matrix; the header's signal lines name the
`.mat` with format `16+24` (16-bit samples after the 24-byte MATLAB v4 preamble), so WFDB
tools read the same file. Physical values follow the WFDB spec: (digital - baseline) / gain.
The comment lines carry `#Age:`, `#Sex:`, `#Dx:` (comma-separated SNOMED CT codes), `#Rx:`,
`#Hx:`, `#Sx:` (Challenge 2020 README, example header `A0001.hea`). The signal is read with
`scipy.io.loadmat`, as the Challenge's own example code does.

Only the fields a caller asks for leave this module; the recording date and time on the
header's first line are parsed by nobody.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_GAIN = re.compile(r"^(?P<gain>[-+0-9.eE]+)(?:\((?P<baseline>[-+0-9]+)\))?(?:/(?P<units>\S+))?$")


class ChallengeFormatError(Exception):
    """A header or `.mat` file that does not match the Challenge format."""


@dataclass
class ChallengeHeader:
    """What a Challenge `.hea` says about its record (no recording date or time)."""

    record: str
    n_signals: int
    fs: float
    n_samples: int
    signal_file: str
    gains: list[float]
    baselines: list[int]
    units: list[str]
    leads: list[str]
    comments: dict[str, str] = field(default_factory=dict)


def parse_comments(text: str) -> dict[str, str]:
    """`#Key: value` comment lines as {Key: value} (first occurrence wins); tolerant, for listing."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#") and ":" in line:
            key, _, value = line[1:].partition(":")
            out.setdefault(key.strip(), value.strip())
    return out


def dx_codes(comments: dict[str, str]) -> list[str]:
    """The `#Dx:` SNOMED CT codes, verbatim, in header order (empty list when absent)."""
    return [c.strip() for c in comments.get("Dx", "").split(",") if c.strip()]


def parse_header(text: str, name: str = "header") -> ChallengeHeader:
    """Parse a Challenge `.hea`; raises ChallengeFormatError naming what is wrong."""
    lines = [ln.strip() for ln in text.splitlines()]
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    if not body:
        raise ChallengeFormatError(f"{name}: no record line")
    rec = body[0].split()
    try:
        record, n_sig, fs, n_samples = rec[0], int(rec[1]), float(rec[2]), int(rec[3])
    except (IndexError, ValueError):
        raise ChallengeFormatError(f"{name}: bad record line {body[0][:60]!r}") from None
    if len(body) < 1 + n_sig:
        raise ChallengeFormatError(f"{name}: declares {n_sig} signals, has {len(body) - 1} lines")
    files, gains, baselines, units, leads = set(), [], [], [], []
    for line in body[1 : 1 + n_sig]:
        parts = line.split()
        if len(parts) < 9:
            raise ChallengeFormatError(f"{name}: short signal line {line[:60]!r}")
        files.add(parts[0])
        if parts[1].split("+")[0] != "16":
            raise ChallengeFormatError(f"{name}: signal format {parts[1]!r}, expected 16 or 16+24")
        m = _GAIN.match(parts[2])
        if m is None:
            raise ChallengeFormatError(f"{name}: bad gain field {parts[2]!r}")
        gain = float(m.group("gain"))
        if gain == 0:
            raise ChallengeFormatError(f"{name}: gain 0 for lead {parts[-1]}")
        gains.append(gain)
        # WFDB: the baseline defaults to the ADC zero (field 5) when the gain field omits it
        baselines.append(int(m.group("baseline") if m.group("baseline") else parts[4]))
        units.append(m.group("units") or "mV")
        leads.append(parts[8])
    if len(files) != 1:
        raise ChallengeFormatError(f"{name}: signals in {len(files)} files, expected one .mat")
    return ChallengeHeader(record, n_sig, fs, n_samples, files.pop(), gains, baselines, units,
                           leads, parse_comments(text))


def read_record(
    hea: Path, resolve: Callable[[Path], Path] | None = None
) -> tuple[np.ndarray, ChallengeHeader]:
    """(n_signals x n_samples float64 in physical units, header) of the record at `hea`.

    `resolve` maps the signal file the header names to the path to open (the caller
    confines it to its root; a header may name any path). Raises FileNotFoundError when
    the `.mat` is missing and ChallengeFormatError when it is unreadable, lacks `val`, or
    disagrees with the header's shape.
    """
    from scipy.io import loadmat

    header = parse_header(hea.read_text(errors="replace"), hea.name)
    mat = hea.parent / header.signal_file
    if resolve is not None:
        mat = resolve(mat)
    if not mat.is_file():
        raise FileNotFoundError(2, "missing signal file", str(mat))
    try:
        val = loadmat(str(mat))["val"]
    except KeyError:
        raise ChallengeFormatError(f"{mat.name}: no variable 'val'") from None
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError for broken files
        raise ChallengeFormatError(f"{mat.name}: unreadable MATLAB file ({exc})") from None
    if val.shape != (header.n_signals, header.n_samples):
        raise ChallengeFormatError(
            f"{mat.name}: val is {val.shape[0]} x {val.shape[1]}, the header says "
            f"{header.n_signals} x {header.n_samples}"
        )
    if not np.issubdtype(val.dtype, np.integer) and not np.array_equal(val, np.round(val)):
        raise ChallengeFormatError(f"{mat.name}: val holds non-integer samples ({val.dtype})")
    base = np.asarray(header.baselines, dtype=np.float64)[:, None]
    gain = np.asarray(header.gains, dtype=np.float64)[:, None]
    return (val.astype(np.float64) - base) / gain, header
