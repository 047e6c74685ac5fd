"""Readers of the TU graph-dataset text format (Morris et al., TUDataset).

The format (chrsmrrs.github.io/datasets/docs/format, the TUDataset collection's own page):
for a dataset DS with n nodes, m edges and N graphs, plain-text files

    DS_A.txt               m lines `row, col`: the sparse adjacency of the block-diagonal
                           matrix of all graphs, 1-based node ids (undirected graphs list
                           each edge in both directions)
    DS_graph_indicator.txt n lines: line i is the graph id (1-based) of node i
    DS_graph_labels.txt    N lines: line i is the class label of graph i
    DS_node_labels.txt     n lines: line i is the label of node i (optional)
    DS_node_attributes.txt n lines: line i is the comma-separated attributes of node i
                           (optional; also DS_edge_labels / _edge_attributes /
                           _graph_attributes, which medshard does not read)

Each reader returns what parsed and the lines that did not, by line number, so a source
can quarantine the graphs a bad line touches instead of failing the whole dataset.
The readers know nothing of any one dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class IntColumn:
    """One integer per line; `bad` maps line number -> reason for lines that did not parse."""

    values: np.ndarray  # int64, len = number of lines; bad lines hold 0
    bad: dict[int, str] = field(default_factory=dict)


@dataclass
class EdgeList:
    """`row, col` pairs (1-based node ids as in the file); `bad` lines by number with the
    node ids they did name (for attributing a broken line to its graph), maybe none."""

    pairs: np.ndarray  # int64 m x 2, good lines only, in file order
    bad: dict[int, tuple[str, list[int]]] = field(default_factory=dict)


@dataclass
class FloatRows:
    """Comma-separated numbers per line; `bad` lines (wrong width, not numbers) by number."""

    values: np.ndarray  # float64 lines x width; bad lines hold NaN
    bad: dict[int, str] = field(default_factory=dict)


def _lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="strict") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_int_column(path: Path) -> IntColumn:
    """A one-integer-per-line file (graph indicator, graph labels, node labels)."""
    lines = _lines(path)
    values = np.zeros(len(lines), dtype=np.int64)
    bad: dict[int, str] = {}
    for i, line in enumerate(lines):
        try:
            values[i] = int(line.strip())
        except ValueError:
            bad[i + 1] = f"{line.strip()[:30]!r} is not an integer"
    return IntColumn(values, bad)


def _ints_in(text: str) -> list[int]:
    out = []
    for part in text.replace(",", " ").split():
        try:
            out.append(int(part))
        except ValueError:
            continue
    return out


def read_edges(path: Path) -> EdgeList:
    """`DS_A.txt`: one `row, col` pair per line."""
    pairs: list[tuple[int, int]] = []
    bad: dict[int, tuple[str, list[int]]] = {}
    for i, line in enumerate(_lines(path)):
        parts = [p.strip() for p in line.split(",")]
        try:
            if len(parts) != 2:
                raise ValueError
            a, b = int(parts[0]), int(parts[1])
            if a < 1 or b < 1:
                raise ValueError
        except ValueError:
            bad[i + 1] = (f"{line.strip()[:30]!r} is not 'row, col' with node ids >= 1",
                          [v for v in _ints_in(line) if v >= 1])
            continue
        pairs.append((a, b))
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return EdgeList(arr, bad)


def read_float_rows(path: Path) -> FloatRows:
    """`DS_node_attributes.txt`: comma-separated numbers, the same count on every line."""
    lines = _lines(path)
    parsed: list[list[float] | None] = []
    widths: dict[int, int] = {}
    bad: dict[int, str] = {}
    for i, line in enumerate(lines):
        try:
            row = [float(p) for p in line.split(",")]
            if not all(np.isfinite(row)):
                raise ValueError
        except ValueError:
            bad[i + 1] = f"{line.strip()[:30]!r} is not comma-separated finite numbers"
            parsed.append(None)
            continue
        parsed.append(row)
        widths[len(row)] = widths.get(len(row), 0) + 1
    width = max(widths, key=lambda w: (widths[w], -w)) if widths else 0
    values = np.full((len(lines), width), np.nan)
    for i, row in enumerate(parsed):
        if row is None:
            continue
        if len(row) != width:
            bad[i + 1] = f"{len(row)} values, the file's rows have {width}"
            continue
        values[i] = row
    return FloatRows(values, bad)
