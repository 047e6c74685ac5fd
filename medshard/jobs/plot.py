"""A run's plot as a standalone SVG (no plotting library needed on training nodes):
the training loss per step (left) and the AUC per source on the last evaluated split (right)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

_W, _H, _PAD = 420, 260, 40


def _polyline(values: Sequence[float], x0: float) -> str:
    """The loss curve scaled into one panel (at most 500 points, by averaging)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    stride = max(1, math.ceil(len(values) / 500))
    points = [sum(values[i:i + stride]) / len(values[i:i + stride]) for i in range(0, len(values), stride)]
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    step = (_W - 2 * _PAD) / max(len(points) - 1, 1)
    xy = " ".join(
        f"{x0 + _PAD + i * step:.1f},{_H - _PAD - (v - lo) / span * (_H - 2 * _PAD):.1f}"
        for i, v in enumerate(points)
    )
    labels = (f'<text x="{x0 + 4}" y="{_PAD}" font-size="10">{hi:.3g}</text>'
              f'<text x="{x0 + 4}" y="{_H - _PAD}" font-size="10">{lo:.3g}</text>')
    return f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{xy}"/>{labels}'


def _bars(auc: Mapping[str, float], x0: float) -> str:
    names = list(auc)
    if not names:
        return f'<text x="{x0 + _PAD}" y="{_H / 2}" font-size="12">no AUC (no evaluated label)</text>'
    width = (_W - 2 * _PAD) / len(names)
    parts = []
    for i, name in enumerate(names):
        v = auc[name]
        x = x0 + _PAD + i * width
        if v is not None and math.isfinite(v):
            h = v * (_H - 2 * _PAD)
            parts.append(f'<rect x="{x + 4:.1f}" y="{_H - _PAD - h:.1f}" width="{width - 8:.1f}" '
                         f'height="{h:.1f}" fill="#ff7f0e"/>')
            parts.append(f'<text x="{x + 4:.1f}" y="{_H - _PAD - h - 3:.1f}" font-size="10">{v:.3f}</text>')
        else:
            parts.append(f'<text x="{x + 4:.1f}" y="{_H - _PAD - 3}" font-size="10">n/a</text>')
        parts.append(f'<text x="{x + 4:.1f}" y="{_H - _PAD + 14}" font-size="10">{escape(name)}</text>')
    return "".join(parts)


def write_run_svg(path: Path, losses: Sequence[float], auc: Mapping[str, float], title: str) -> None:
    """Write the two-panel plot of one run to `path`."""
    axes = "".join(
        f'<rect x="{x0 + _PAD}" y="{_PAD}" width="{_W - 2 * _PAD}" height="{_H - 2 * _PAD}" '
        f'fill="none" stroke="#999"/>'
        for x0 in (0, _W)
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * _W}" height="{_H + 20}" '
        f'font-family="sans-serif">'
        f'<text x="10" y="16" font-size="13">{escape(title)}</text>{axes}'
        f'<text x="{_PAD}" y="{_H + 12}" font-size="11">training loss per step</text>'
        f'<text x="{_W + _PAD}" y="{_H + 12}" font-size="11">AUC per source (0 to 1)</text>'
        f'{_polyline(list(losses), 0)}{_bars(auc, _W)}</svg>\n'
    )
    path.write_text(svg)
