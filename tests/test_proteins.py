"""PROTEINS: every written graph equals an independent parse of the raw TU files (numpy's
text readers + networkx), in the tar, in the Parquet shard and through the loader; raw
label 1 is Enzyme; broken graphs are quarantined with the file and line."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import networkx as nx
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from medshard.loaders import ShardDataset
from medshard.pipeline.build import BuildConfig, run_build
from medshard.sources import get_source
from medshard.sources.graphs.proteins_fixture import (
    BAD_EDGE_GRAPH,
    CHAINS,
    EMPTY_GRAPH,
    TRUNCATED_GRAPH,
    write_fixture,
)

TU = "PROTEINS"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    write_fixture(raw / "proteins")
    out = tmp_path_factory.mktemp("out")
    run_build(BuildConfig(sources=["proteins"], data_root=raw, out=out,
                          formats=("webdataset", "parquet"), progress=False))
    return raw / "proteins" / TU, out


def independent_graphs(base: Path) -> dict[int, tuple[nx.Graph, np.ndarray, int]]:
    """graph id -> (networkx graph on 0-based local nodes, node label + attribute columns,
    raw graph label), read with numpy and networkx only."""
    indicator = np.loadtxt(base / f"{TU}_graph_indicator.txt", dtype=np.int64)
    labels = np.loadtxt(base / f"{TU}_graph_labels.txt", dtype=np.int64)
    with pytest.warns(UserWarning):  # the garbled line of graph BAD_EDGE_GRAPH is skipped
        pairs = np.genfromtxt(base / f"{TU}_A.txt", delimiter=",", dtype=np.int64,
                              invalid_raise=False)
    node_labels = np.loadtxt(base / f"{TU}_node_labels.txt")
    attrs = np.genfromtxt(base / f"{TU}_node_attributes.txt")
    out = {}
    for gid in range(1, len(labels) + 1):
        nodes = np.flatnonzero(indicator == gid)  # 0-based global rows
        if len(nodes) == 0 or nodes[-1] >= len(attrs):
            continue
        g = nx.Graph()
        g.add_nodes_from(range(len(nodes)))
        for a, b in pairs:
            if indicator[a - 1] == gid:
                g.add_edge(a - 1 - nodes[0], b - 1 - nodes[0])
        feats = np.column_stack([node_labels[nodes], attrs[nodes]])
        out[gid] = (g, feats, int(labels[gid - 1]))
    return out


def both_directions(g: nx.Graph) -> np.ndarray:
    edges = {(u, v) for u, v in g.edges} | {(v, u) for u, v in g.edges}
    return np.array(sorted(edges), dtype=np.int64).T


def _samples(out: Path) -> dict[str, dict[str, dict]]:
    manifest = json.loads((out / "manifest.json").read_text())
    stored: dict[str, dict[str, bytes]] = {"webdataset": {}, "parquet": {}}
    for shard in manifest["shards"]:
        path = out / shard["path"]
        if shard["format"] == "webdataset":
            with tarfile.open(path) as tar:
                for m in tar.getmembers():
                    if m.name.endswith(".graph.npz"):
                        stored["webdataset"][m.name.split(".")[0]] = tar.extractfile(m).read()
        else:
            table = pq.read_table(path).to_pydict()
            col = next(c for c in table if "graph" in c and "npz" in c)
            for key, data in zip(table["key"], table[col], strict=True):
                stored["parquet"][key] = data
    return stored


def test_graphs_equal_networkx_parse_in_tar_parquet_and_loader(built) -> None:
    base, out = built
    expected = independent_graphs(base)
    stored = _samples(out)
    keys = sorted(stored["webdataset"])
    assert keys == sorted(stored["parquet"])
    assert len(keys) == len(CHAINS) - 2  # the garbled and the cut-off graph are quarantined
    loaded = {fmt: {s["key"]: s for s in ShardDataset(str(out), split=None, shuffle=False,
                                                       format=fmt)}
              for fmt in ("webdataset", "parquet")}
    for key in keys:
        gid = int(key.rsplit("_", 1)[1])
        g, feats, raw_label = expected[gid]
        want = both_directions(g)
        for fmt in ("webdataset", "parquet"):
            with np.load(io.BytesIO(stored[fmt][key]), allow_pickle=False) as npz:
                np.testing.assert_array_equal(npz["edge_index"], want)
                np.testing.assert_array_equal(npz["node_features"], feats.astype(np.float32))
            s = loaded[fmt][key]
            assert torch.equal(s["graph"]["edge_index"], torch.from_numpy(want))  # PyG layout
            assert s["graph"]["node_features"].shape == (g.number_of_nodes(), 2)
            desc = s["meta"]["payloads"]["graph"]
            assert desc["node_feature_names"] == ["node_label", "attribute_1"]
            assert (desc["n_nodes"], desc["n_edges"], desc["directed"]) == (
                g.number_of_nodes(), want.shape[1], False)
            assert s["meta"]["source_labels"]["graph_label"] == raw_label


def test_raw_label_one_is_enzyme_and_chains_with_an_ec_number_are_enzymes(built) -> None:
    base, _ = built
    src = get_source("proteins")
    records = [r for r in src.list_records(base.parent) if hasattr(r, "record_id")]
    by_id = {r.record_id: r for r in records}
    for gid, (_, chain) in enumerate(CHAINS, start=1):
        record = by_id[f"{gid:04d}"]
        if gid in (BAD_EDGE_GRAPH, TRUNCATED_GRAPH):
            continue
        (sample,) = src.load(record, base.parent)
        enzyme = chain in ("D", "E", "F") and gid in (3, 5, 7)  # 7CTH entity 2 has EC numbers
        assert sample.classes == (["Enzyme"] if enzyme else ["Not enzyme"])
        assert sample.source_labels["graph_label"] == (1 if enzyme else 2)


def test_broken_graphs_are_quarantined_with_file_and_line(built) -> None:
    _, out = built
    lines = [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]
    by_id = {q["record_id"]: q["message"] for q in lines}
    assert set(by_id) == {f"{g:04d}" for g in (BAD_EDGE_GRAPH, TRUNCATED_GRAPH, EMPTY_GRAPH)}
    assert "PROTEINS_A.txt line" in by_id[f"{BAD_EDGE_GRAPH:04d}"]
    assert "not 'row, col'" in by_id[f"{BAD_EDGE_GRAPH:04d}"]
    assert "truncated" in by_id[f"{TRUNCATED_GRAPH:04d}"]
    assert "no nodes" in by_id[f"{EMPTY_GRAPH:04d}"]


def test_one_way_and_duplicate_edge_lines_are_completed_and_counted(tmp_path) -> None:
    from medshard.sources.graphs.proteins import graph_edges

    pairs = np.array([[1, 2], [2, 1], [2, 3], [2, 3], [3, 3], [9, 10]])
    edge_index, counts = graph_edges(pairs, first=1, n=3)
    np.testing.assert_array_equal(edge_index, [[0, 1, 1, 2, 2], [1, 0, 2, 1, 2]])
    assert counts == {"edge_lines": 5, "duplicate_edge_lines": 1, "edges_listed_one_way": 1}
    with pytest.raises(Exception, match="join this graph to another"):
        graph_edges(np.array([[1, 2], [3, 4]]), first=1, n=3)
