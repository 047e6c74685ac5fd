"""Connectomes as graphs: Pearson connectivity of ROI time series, and the graph a
connectivity matrix gives (the step the three brain-network sources share).

What it promises:
- `pearson_connectivity(series)` is the Pearson correlation of the columns of a T x N
  series (one column per ROI), computed from z-scored columns in float64; a column with
  zero variance (a constant ROI: no voxel of the parcel had signal, or all were
  identical) has no defined correlation and is reported by index, its row and column
  left NaN for the caller to decide (`constant_roi`).
- `connectome_graph(matrix, roi_ids, opts)` turns an N x N connectivity matrix into the
  graph payload: edges are the non-zero entries (each undirected pair listed once per
  direction, `directed=false`), edge weights their value, node features each ROI's row
  of the matrix (the "connection profile" that BrainGB, BrainNetworkTransformer and
  CLIMB's `models/graphs/brain_datasets.py` feed their GNNs), node ids the atlas's ROI
  labels. Defaults follow CLIMB: every non-zero entry is an edge, the unit diagonal
  included (CLIMB takes `np.nonzero(adj)`), no Fisher z, no threshold.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from medshard.schemas import RecordError
from medshard.sources.base import SourceOptions

FISHER_CLIP = 1.0 - 1e-7  # arctanh(+-1) is infinite: off-diagonal |r| is clipped below 1


class ConnectomeOptions(SourceOptions):
    """How a connectivity matrix becomes a graph (shared by abide, abcd and ppmi)."""

    fisher_z: bool = Field(False, description="store arctanh(r) for off-diagonal entries "
                           "(|r| clipped to 1 - 1e-7; the unit diagonal stays 1); CLIMB: off")
    abs_threshold: float = Field(0.0, ge=0.0, le=1.0, description="keep only edges with "
                                 "|weight| >= this (0: every non-zero entry, CLIMB's graph)")
    self_loops: bool = Field(True, description="keep the diagonal (a ROI with itself) as "
                             "edges; CLIMB keeps it (every non-zero entry is an edge)")
    node_features: Literal["connection_profile", "none"] = Field(
        "connection_profile", description="connection_profile: each ROI's row of the "
        "stored matrix (BrainGB / CLIMB); none: no node features")
    constant_roi: Literal["zero", "quarantine"] = Field(
        "zero", description="a ROI whose series is constant (or a NaN row in a shipped "
        "matrix): its correlations set to 0 and listed in meta `constant_rois` (zero), or "
        "the subject quarantined")


def pearson_connectivity(series: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """(N x N Pearson correlation of the columns of `series` (T x N), constant columns).

    Rows and columns of constant columns are NaN; the diagonal of the others is 1."""
    x = np.asarray(series, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3:
        raise RecordError(f"a ROI time series needs at least 3 time points, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise RecordError("the ROI time series holds NaN or infinite values")
    centred = x - x.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    constant = [int(i) for i in np.flatnonzero(norms <= 1e-12 * max(1.0, float(np.abs(x).max())))]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = centred / norms
    r = np.clip(z.T @ z, -1.0, 1.0)
    np.fill_diagonal(r, 1.0)
    r[constant, :] = np.nan
    r[:, constant] = np.nan
    return r, constant


def nan_rois(matrix: np.ndarray) -> list[int]:
    """ROIs whose whole off-diagonal row of a shipped matrix is NaN (a constant ROI
    upstream: its row and column are NaN, so every other row has NaN only there). Other
    NaN entries are left for `connectome_graph` to refuse."""
    m = np.asarray(matrix, dtype=np.float64)
    bad = ~np.isfinite(m)
    np.fill_diagonal(bad, True)
    return [int(i) for i in np.flatnonzero(bad.all(axis=1))] if m.shape[0] > 1 else []


def connectome_graph(matrix: np.ndarray, roi_ids: list[str], opts: dict[str, Any],
                     constant: list[int], meaning: str) -> tuple[dict[str, Any], dict[str, Any],
                                                                 dict[str, Any]]:
    """(graph data, graph descriptor, meta fields) of an N x N connectivity matrix.

    `constant`: ROIs without a defined connectivity (see `ConnectomeOptions.constant_roi`);
    `meaning`: what an entry of `matrix` measures, before the options' transforms."""
    m = np.array(matrix, dtype=np.float64)
    n = m.shape[0]
    if m.ndim != 2 or m.shape != (n, n) or n == 0:
        raise RecordError(f"a connectivity matrix must be square, got shape {m.shape}")
    if len(roi_ids) != n:
        raise RecordError(f"{len(roi_ids)} ROI labels for a {n} x {n} matrix")
    if constant and opts["constant_roi"] == "quarantine":
        raise RecordError(f"{len(constant)} ROI(s) without connectivity (constant series): "
                          f"{', '.join(roi_ids[i] for i in constant[:5])}; build with "
                          "constant_roi=zero to keep the subject with them zeroed")
    m[constant, :] = 0.0
    m[:, constant] = 0.0
    if not np.isfinite(m).all():
        raise RecordError("the connectivity matrix holds NaN or infinite values outside "
                          "constant ROIs")
    off = ~np.eye(n, dtype=bool)
    if opts["fisher_z"]:
        m[off] = np.arctanh(np.clip(m[off], -FISHER_CLIP, FISHER_CLIP))
    keep = (m != 0) & (np.abs(m) >= opts["abs_threshold"])
    if not opts["self_loops"]:
        keep &= off
    rows, cols = np.nonzero(keep)  # row-major: deterministic order
    data: dict[str, Any] = {
        "edge_index": np.stack([rows, cols]).astype(np.int64),
        "edge_weight": m[rows, cols].astype(np.float32),
        "node_ids": list(roi_ids),
    }
    desc: dict[str, Any] = {
        "directed": False, "n_nodes": n,
        "edge_weight_meaning": ("Fisher z (arctanh) of " if opts["fisher_z"] else "") + meaning,
    }
    if opts["node_features"] == "connection_profile":
        data["node_features"] = m.astype(np.float32)
        desc["node_feature_names"] = [f"connectivity_to_{r}" for r in roi_ids]
    meta = {
        "connectivity": {
            "measure": meaning, "fisher_z": bool(opts["fisher_z"]),
            "abs_threshold": float(opts["abs_threshold"]), "self_loops": bool(opts["self_loops"]),
            "node_features": opts["node_features"], "constant_roi": opts["constant_roi"],
        },
        "n_rois": n,
        "constant_rois": [roi_ids[i] for i in constant],
    }
    return data, desc, meta
