"""PPI: 24 human tissue protein-protein interaction graphs, 121 gene-ontology targets per node.

Raw layout (the preprocessed release that DGL distributes as `ppi.zip` and that PyTorch
Geometric's and DGL's `PPI` classes read; made from GraphSAGE's PPI data), per split
`train`, `valid`, `test`:

    <split>_graph.json     the split's graphs as one networkx node-link JSON
                           ({"directed", "multigraph", "graph", "nodes": [{"id"}, ...],
                           "links": [{"source", "target"}, ...]}), node ids = row numbers
    <split>_feats.npy      float, nodes x 50 (positional gene sets, motif gene sets,
                           immunological signatures)
    <split>_labels.npy     0/1, nodes x 121 (gene-ontology sets; multi-label)
    <split>_graph_id.npy   int, the graph of each node: train 1..20, valid 21..22,
                           test 23..24

Facts and where they came from: the four files per split, their shapes, the 24 graphs
and the 20 / 2 / 2 split: PyG's `torch_geometric.datasets.PPI.process` and DGL's
`PPIDataset` (which read these files, subtract the split's smallest graph id, and cut the
split's graph into per-graph induced subgraphs); the meaning of features and labels:
Zitnik & Leskovec 2017 and Hamilton et al. 2017 (GraphSAGE, whose own `ppi.zip` holds
`ppi-G.json` with `val`/`test` flags per node, `ppi-feats.npy`, `ppi-class_map.json`,
`ppi-id_map.json`: that release carries **no graph id per node**, so the 24 graphs cannot
be recovered from it, and this adapter does not read it).

What `load` yields: one sample per graph, two roles. `graph` (`graph.npz`): `edge_index`
int64 2 x E over the graph's nodes in row order (0-based), both directions of every
link (the JSON is undirected), sorted by (source, target), duplicates removed, self-loops
kept as listed (PyG removes them; their number is in `meta.self_loops`); `node_features`
float32 N x 50. `node_targets` (`node_targets.npy`): uint8 N x 121, row i the targets of
node i of the graph: the node-level multi-label task; the graph has no class of its own,
so `classes` is empty and the vocabulary maps nothing (docs/vocabulary.md).
Split: the official one, by graph (`train`, `valid` -> val, `test`).
Broken records: a node-link JSON that does not parse (every graph of its split), a link
naming a node that does not exist or joining two graphs, feature or label rows missing
(a truncated `.npy`) or not finite: each quarantines the graph it touches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np

from medshard.schemas import License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source

SPLITS = {"train": "train", "valid": "val", "test": "test"}  # file prefix -> medshard split
N_FEATURES, N_TARGETS = 50, 121


@lru_cache(maxsize=2)
def _links(path: str, size: int, mtime_ns: int) -> tuple[np.ndarray, int] | str:
    """(links as 0-based row pairs m x 2, nodes) of a node-link JSON, or why it is broken."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        ids = [node["id"] for node in data["nodes"]]
        row = {node_id: i for i, node_id in enumerate(ids)}
        if len(row) != len(ids):
            return "node ids are not unique"
        pairs = np.array([(row[link["source"]], row[link["target"]]) for link in data["links"]],
                         dtype=np.int64).reshape(-1, 2)
    except (ValueError, KeyError, TypeError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return pairs, len(ids)


@lru_cache(maxsize=4)
def _array(path: str, size: int, mtime_ns: int) -> np.ndarray | str:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:120]}"


def _stat(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def induced_edges(pairs: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, int]:
    """(2 x E local edge_index, self-loops) of the links among `nodes` (sorted row numbers
    of one graph); a link with one end outside is a RecordError."""
    inside = np.isin(pairs, nodes)
    mine = inside.any(axis=1)
    crossing = mine & ~inside.all(axis=1)
    if crossing.any():
        a, b = pairs[np.argmax(crossing)]
        raise RecordError(f"{int(crossing.sum())} link(s) join this graph to another "
                          f"(first: rows {a}, {b})")
    local = np.searchsorted(nodes, pairs[mine])
    both = np.unique(np.concatenate([local, local[:, ::-1]]), axis=0)
    return both.T.reshape(2, -1).astype(np.int64), int((local[:, 0] == local[:, 1]).sum())


class PPI(Source):
    payload_members = ("graph.npz", "node_targets.npy")
    info: ClassVar[SourceInfo] = SourceInfo(
        name="ppi",
        title="PPI: protein-protein interaction graphs of human tissues (GraphSAGE)",
        version="ppi.zip (GraphSAGE 2017 data, per-split graph ids)",
        modality="graph",
        tasks=["node multi-label classification (121 gene-ontology sets)"],
        license=License(name="MIT (as CLIMB lists it; the data derive from BioGRID, MSigDB)",
                        url="https://snap.stanford.edu/graphsage/#datasets",
                        terms_version="not stated"),
        access="open",
        homepage="https://snap.stanford.edu/graphsage/#datasets",
        citation="Hamilton WL, Ying R, Leskovec J. Inductive representation learning on large "
        "graphs. NeurIPS 2017. Zitnik M, Leskovec J. Predicting multicellular function "
        "through multi-layer tissue networks. Bioinformatics 33(14):i190-i198, 2017.",
        label_space=[],
        split_policy="official: 20 training, 2 validation and 2 test graphs (by graph id)",
        split_unit="graph",
        published_counts=PublishedCounts(
            train=20, val=2, test=2, unit="graphs",
            reference="the official split; CLIMB A.2 counts nodes instead: 45,555 / 11,389 "
            "(56,944 nodes, an 80/20 split of nodes across graphs)"),
        release_notes={"0.1.0": "first medshard adapter: one graph per sample with its "
                       "node targets as a second role"},
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="https",
        files=[FileSpec(path="ppi.zip", url="https://data.dgl.ai/dataset/ppi.zip",
                        extract=True)],
        approx_bytes=60_000_000,
    )
    fixture: ClassVar[str | None] = "medshard.sources.graphs.ppi_fixture:FIXTURE"

    def folder(self, root: Path) -> str:
        for folder in ("", "ppi/", "PPI/"):
            if (root / f"{folder}train_graph_id.npy").is_file():
                return folder
        if (root / "ppi-G.json").is_file() or (root / "ppi" / "ppi-G.json").is_file():
            raise MissingRawData("ppi: this is GraphSAGE's ppi.zip (ppi-G.json), which has no "
                                 "graph id per node; download the per-split release "
                                 "(train_graph_id.npy, ...) with `medshard download ppi`")
        raise MissingRawData(f"ppi: no train_graph_id.npy in {root} (or ppi/ under it); "
                             "unpack ppi.zip there")

    def label_files(self, root: Path) -> list[str]:
        folder = self.folder(root)
        return [f"{folder}{split}_graph_id.npy" for split in SPLITS
                if (root / f"{folder}{split}_graph_id.npy").is_file()]

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        self.folder(root)

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        """One record per graph id of each split's `<split>_graph_id.npy`."""
        self.check_root(root)
        folder = self.folder(root)
        for prefix, split in SPLITS.items():
            ids_rel = f"{folder}{prefix}_graph_id.npy"
            if not (root / ids_rel).is_file():
                continue
            ids = np.load(self.path(root, ids_rel), allow_pickle=False)
            for gid in np.unique(ids).tolist():
                n = int((ids == gid).sum())
                yield RawRecord(
                    record_id=f"{int(gid):02d}",
                    subject_id=f"{int(gid):02d}",
                    files=[f"{folder}{prefix}_{part}" for part in
                           ("graph.json", "feats.npy", "labels.npy")],
                    split=split,
                    size_bytes=n * (N_FEATURES * 4 + N_TARGETS + 64),
                    meta={"graph_id": int(gid), "split_file": prefix, "n_nodes": n},
                )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        graph_rel, feats_rel, labels_rel = record.files
        prefix = record.meta["split_file"]
        ids_rel = graph_rel.replace("_graph.json", "_graph_id.npy")
        ids = np.load(self.path(root, ids_rel), allow_pickle=False)
        nodes = np.flatnonzero(ids == record.meta["graph_id"])
        links = _links(*_stat(self.path(root, graph_rel)))
        if isinstance(links, str):
            raise RecordError(f"{graph_rel} does not parse as node-link JSON ({links})")
        pairs, n_rows = links
        if n_rows != len(ids):
            raise RecordError(f"{graph_rel} has {n_rows} nodes, {ids_rel} {len(ids)}")
        edge_index, self_loops = induced_edges(pairs, nodes)
        arrays = {}
        for rel, width in ((feats_rel, N_FEATURES), (labels_rel, N_TARGETS)):
            arr = _array(*_stat(self.path(root, rel)))
            if isinstance(arr, str):
                raise RecordError(f"{rel} does not load ({arr}); the file is broken")
            if arr.ndim != 2 or arr.shape[1] != width:
                raise RecordError(f"{rel} is {arr.shape}, expected nodes x {width}")
            if arr.shape[0] <= nodes[-1]:
                raise RecordError(f"{rel} has {arr.shape[0]} rows; graph "
                                  f"{record.meta['graph_id']} needs rows up to {nodes[-1]} "
                                  "(file truncated?)")
            block = np.asarray(arr[nodes])
            if not np.all(np.isfinite(block)):
                raise RecordError(f"{rel}: rows of graph {record.meta['graph_id']} hold "
                                  "NaN or infinite values")
            arrays[rel] = block
        targets = arrays[labels_rel]
        if not np.isin(targets, (0, 1)).all():
            raise RecordError(f"{labels_rel}: targets of graph {record.meta['graph_id']} are "
                              "not 0/1")
        yield Sample(
            classes=[],
            source_labels={"graph_id": record.meta["graph_id"], "split_file": prefix},
            payloads={
                "graph": Payload("graph", {
                    "edge_index": edge_index,
                    "node_features": arrays[feats_rel].astype(np.float32),
                }, {"directed": False, "node_feature_names": [
                    f"feature_{k + 1}" for k in range(N_FEATURES)],
                    "edge_weight_meaning": None}),
                "node_targets": Payload("array", targets.astype(np.uint8), {}),
            },
            meta={"graph_id": record.meta["graph_id"], "first_row": int(nodes[0]),
                  "self_loops": self_loops,
                  "positive_targets": int(targets.sum()),
                  "node_targets": f"uint8 {len(nodes)} x {N_TARGETS}, row i = node i of "
                  "the graph (gene-ontology sets, multi-label)"},
            task="node multi-label classification",
        )
