"""PROTEINS (TUDataset): 1,113 protein graphs, enzyme or not (Borgwardt et al. 2005).

Raw layout (the TUDataset release `PROTEINS.zip`, unpacked as `PROTEINS/`, or its files
directly in the source folder): the TU text format (medshard/formats/tu_dataset.py)

    PROTEINS_A.txt                `row, col` per line, 1-based node ids, each undirected
                                  edge in both directions
    PROTEINS_graph_indicator.txt  graph id of node i on line i
    PROTEINS_graph_labels.txt     class of graph i on line i (1 or 2)
    PROTEINS_node_labels.txt      label of node i (secondary-structure element type)
    PROTEINS_node_attributes.txt  attribute(s) of node i, comma-separated

Facts and where they came from: the file names and their meaning, the 1-based ids and the
both-directions convention: the TUDataset format page (chrsmrrs.github.io/datasets/docs/
format). Nodes are secondary-structure elements, edges join elements that are neighbours
in the amino-acid sequence or in space (Borgwardt et al. 2005, Dobson & Doig 2003's
proteins). Raw graph label 1 = enzyme, 2 = not an enzyme: **inferred, not published
with the files**: PROTEINS has 663 graphs of label 1 and 450 of label 2 and the paper's
set is 59% enzymes; third-party loaders agree. CLIMB has no PROTEINS loader (its
protein folder downloads OGB sets); its table gives 890 / 223 graphs, a random 80/20.

What `load` yields: one sample per graph, a `graph` payload (`graph.npz`):
`edge_index` int64 2 x E in 0-based node positions within the graph, the union of the
listed pairs and their reverses (an edge listed one way only is completed and counted in
`meta.edges_listed_one_way`), sorted by (source, target) with duplicates removed (counted
in `meta.duplicate_edge_lines`), self-loops kept as listed; `node_features` float32
N x F: the node label (as a number, column `node_label`) then the node attributes
(`attribute_1`, ...), whichever files the release has. The same layout as PyTorch
Geometric's `Data.edge_index` / `Data.x` before its one-hot encoding of node labels.

Split: no official split; keyed hash of the graph (each graph is one protein; the
dataset carries no other identity). Broken records: a graph-label line that is not an
integer or not 1/2 (a bad row at listing), graph ids in the indicator without a
graph-label line (a bad row each), a graph with no nodes, nodes of a graph that are not
contiguous, an adjacency line that is malformed (the graph it names is quarantined) or
that joins two graphs, and node label / attribute lines missing or malformed: each
quarantines the graph it touches, with the file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from medshard.formats import tu_dataset as tu
from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source

NAME = "PROTEINS"
CLASSES = {1: "Enzyme", 2: "Not enzyme"}  # raw TU label -> class (see the docstring)


def tu_file(folder: str, suffix: str) -> str:
    return f"{folder}{NAME}_{suffix}.txt"


@lru_cache(maxsize=4)
def _cached_edges(path: str, size: int, mtime_ns: int) -> tu.EdgeList:
    """The adjacency file, parsed once per worker (every graph of the release shares it)."""
    return tu.read_edges(Path(path))


@lru_cache(maxsize=4)
def _cached_ints(path: str, size: int, mtime_ns: int) -> tu.IntColumn:
    return tu.read_int_column(Path(path))


@lru_cache(maxsize=4)
def _cached_floats(path: str, size: int, mtime_ns: int) -> tu.FloatRows:
    return tu.read_float_rows(Path(path))


def _parsed(reader: Any, path: Path) -> Any:
    st = path.stat()
    return reader(str(path), st.st_size, st.st_mtime_ns)


def graph_edges(pairs: np.ndarray, first: int, n: int) -> tuple[np.ndarray, dict[str, int]]:
    """(2 x E local edge_index, counts) of the graph on nodes first..first+n-1 (1-based)."""
    inside = (pairs >= first) & (pairs < first + n)
    mine = inside.any(axis=1)
    crossing = mine & ~inside.all(axis=1)
    if crossing.any():
        a, b = pairs[np.argmax(crossing)]
        raise RecordError(f"{int(crossing.sum())} adjacency line(s) join this graph to "
                          f"another (first: {a}, {b})")
    local = pairs[mine] - first
    listed = np.unique(local, axis=0)
    both = np.unique(np.concatenate([listed, listed[:, ::-1]]), axis=0)
    counts = {"edge_lines": int(len(local)), "duplicate_edge_lines": int(len(local) - len(listed)),
              "edges_listed_one_way": int(len(both) - len(listed))}
    return both.T.astype(np.int64).reshape(2, -1), counts


class Proteins(Source):
    payload_members = ("graph.npz",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="proteins",
        title="PROTEINS (TUDataset): protein graphs, enzyme vs non-enzyme",
        version="TUDataset PROTEINS.zip",
        modality="graph",
        tasks=["graph classification"],
        license=License(name="none stated (the dataset 'does not have a license')",
                        url="https://chrsmrrs.github.io/datasets/docs/datasets/",
                        terms_version="not stated"),
        access="open",
        homepage="https://chrsmrrs.github.io/datasets/docs/datasets/",
        citation="Borgwardt KM, Ong CS, Schoenauer S, Vishwanathan SVN, Smola AJ, Kriegel HP. "
        "Protein function prediction via graph kernels. Bioinformatics 21(suppl 1):i47-i56, "
        "2005. Morris C et al. TUDataset: a collection of benchmark datasets for learning "
        "with graphs. ICML GRL+ workshop, 2020.",
        label_space=list(CLASSES.values()),
        split_policy="no official split: keyed hash of the graph (each graph is one protein)",
        split_unit="graph",
        published_counts=PublishedCounts(
            train=890, test=223, unit="graphs",
            reference="CLIMB A.2 (a random 80/20 split of the 1,113 graphs)"),
        release_notes={"0.1.0": "first medshard adapter: one graph per sample, edges "
                       "symmetrized, sorted and deduplicated (counts in meta)"},
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="https",
        files=[FileSpec(path="PROTEINS.zip",
                        url="https://www.chrsmrrs.com/graphkerneldatasets/PROTEINS.zip",
                        extract=True)],
        approx_bytes=3_000_000,
    )
    fixture: ClassVar[str | None] = "medshard.sources.graphs.proteins_fixture:FIXTURE"

    def folder(self, root: Path) -> str:
        """'' or 'PROTEINS/': where the TU files lie under the root."""
        for folder in ("", f"{NAME}/"):
            if (root / tu_file(folder, "graph_labels")).is_file():
                return folder
        raise MissingRawData(f"proteins: no {NAME}_graph_labels.txt in {root} or "
                             f"{root}/{NAME}; unpack PROTEINS.zip there")

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        folder = self.folder(root)
        for suffix in ("A", "graph_indicator"):
            if not (root / tu_file(folder, suffix)).is_file():
                raise MissingRawData(f"proteins: {tu_file(folder, suffix)} is missing under "
                                     f"{root}; unpack the whole PROTEINS.zip")

    def label_files(self, root: Path) -> list[str]:
        folder = self.folder(root)
        return [tu_file(folder, "graph_labels"), tu_file(folder, "graph_indicator")]

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per graph-label line; the indicator gives each graph's node range."""
        self.check_root(root)
        folder = self.folder(root)
        labels_rel, indicator_rel = self.label_files(root)
        labels = tu.read_int_column(self.path(root, labels_rel))
        indicator = tu.read_int_column(self.path(root, indicator_rel))
        for line, reason in sorted(indicator.bad.items()):
            yield BadRow(indicator_rel, line, reason, "ValueError")
        n_graphs = len(labels.values)
        good = np.ones(len(indicator.values), dtype=bool)
        good[[line - 1 for line in indicator.bad]] = False
        ids = indicator.values
        orphans = sorted(set(ids[good & ((ids < 1) | (ids > n_graphs))].tolist()))
        for gid in orphans:
            line = int(np.argmax(good & (ids == gid))) + 1
            yield BadRow(indicator_rel, line, f"graph id {gid} has no line in {labels_rel} "
                         f"({n_graphs} graphs)", "KeyError")
        node_files = [tu_file(folder, "A")] + [
            tu_file(folder, s) for s in ("node_labels", "node_attributes")
            if (root / tu_file(folder, s)).is_file()]
        order = np.argsort(np.where(good, ids, 0), kind="stable")
        sorted_ids = np.where(good, ids, 0)[order]
        for gid in range(1, n_graphs + 1):
            line = gid
            if line in labels.bad:
                yield BadRow(labels_rel, line, labels.bad[line], "ValueError")
                continue
            raw = int(labels.values[gid - 1])
            if raw not in CLASSES:
                yield BadRow(labels_rel, line, f"graph label {raw} is not 1 or 2", "ValueError")
                continue
            lo, hi = np.searchsorted(sorted_ids, [gid, gid + 1])
            nodes = np.sort(order[lo:hi]) + 1  # 1-based node ids
            contiguous = bool(len(nodes) == 0 or nodes[-1] - nodes[0] + 1 == len(nodes))
            yield RawRecord(
                record_id=f"{gid:04d}",
                subject_id=f"{gid:04d}",
                files=node_files,
                source_labels={"graph_label": raw},
                size_bytes=max(64, 40 * len(nodes)),
                meta={"graph_id": gid, "first_node": int(nodes[0]) if len(nodes) else 0,
                      "n_nodes": int(len(nodes)), "contiguous": contiguous},
            )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        meta = record.meta
        first, n = int(meta["first_node"]), int(meta["n_nodes"])
        if n == 0:
            raise RecordError(f"graph {meta['graph_id']} has no nodes in the graph indicator")
        if not meta["contiguous"]:
            raise RecordError(f"the nodes of graph {meta['graph_id']} are not consecutive "
                              "lines of the graph indicator; the TU files are out of order")
        a_rel = record.files[0]
        edges = _parsed(_cached_edges, self.path(root, a_rel))
        for line, (reason, nodes) in sorted(edges.bad.items()):
            if any(first <= v < first + n for v in nodes):
                raise RecordError(f"{a_rel} line {line}: {reason}")
        edge_index, counts = graph_edges(edges.pairs, first, n)
        columns: list[np.ndarray] = []
        names: list[str] = []
        for rel in record.files[1:]:
            path = self.path(root, rel)
            parsed = _parsed(_cached_ints if rel.endswith("node_labels.txt") else _cached_floats,
                             path)
            total = len(parsed.values)
            if total < first + n - 1:
                raise RecordError(f"{rel} has {total} lines; graph {meta['graph_id']} needs "
                                  f"lines {first}..{first + n - 1} (file truncated?)")
            for line in range(first, first + n):
                if line in parsed.bad:
                    raise RecordError(f"{rel} line {line}: {parsed.bad[line]}")
            block = parsed.values[first - 1 : first - 1 + n]
            if block.ndim == 1:
                columns.append(block[:, None].astype(np.float64))
                names.append("node_label")
            else:
                columns.append(block)
                names += [f"attribute_{k + 1}" for k in range(block.shape[1])]
        features = np.hstack(columns).astype(np.float32) if columns else None
        yield Sample(
            classes=[CLASSES[record.source_labels["graph_label"]]],
            source_labels=dict(record.source_labels),
            payloads={"graph": Payload("graph", {
                "edge_index": edge_index, "node_features": features,
            }, {"directed": False, "n_nodes": n, "node_feature_names": names or None,
                "edge_weight_meaning": None})},
            meta={"graph_id": meta["graph_id"], "first_node": first, **counts},
            task="graph classification",
        )
