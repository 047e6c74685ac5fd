"""PPI: each graph equals the induced subgraph networkx cuts from the split's node-link JSON
(as PyG's and DGL's PPI readers cut it), with its feature and target rows, in the tar, the
Parquet shard and through the loader; the split is the official one by graph id."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
from networkx.readwrite import json_graph

from medshard.loaders import ShardDataset
from medshard.pipeline.build import BuildConfig, run_build
from medshard.sources import get_source
from medshard.sources.graphs.ppi import induced_edges
from medshard.sources.graphs.ppi_fixture import GRAPHS, NAN_GRAPH, TRUNCATED_GRAPH, write_fixture

OFFICIAL = {"train": "train", "valid": "val", "test": "test"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    write_fixture(raw / "ppi")
    out = tmp_path_factory.mktemp("out")
    run_build(BuildConfig(sources=["ppi"], data_root=raw, out=out,
                          formats=("webdataset", "parquet"), progress=False))
    return raw / "ppi" / "ppi", out


def expected(base: Path) -> dict[int, tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """graph id -> (split, edge_index, features, targets) with networkx and numpy only."""
    out = {}
    for prefix, split in OFFICIAL.items():
        g = nx.DiGraph(json_graph.node_link_graph(
            json.loads((base / f"{prefix}_graph.json").read_text()), edges="links"))
        ids = np.load(base / f"{prefix}_graph_id.npy")
        feats, labels = np.load(base / f"{prefix}_feats.npy"), np.load(base / f"{prefix}_labels.npy")
        for gid in np.unique(ids):
            nodes = np.flatnonzero(ids == gid)
            if gid in (NAN_GRAPH, TRUNCATED_GRAPH):
                continue
            sub = g.subgraph(nodes.tolist())
            edges = np.array(sorted(sub.edges), dtype=np.int64).T - nodes[0]
            out[int(gid)] = (split, edges, feats[nodes], labels[nodes])
    return out


def test_graphs_and_targets_equal_networkx_cut_everywhere(built) -> None:
    base, out = built
    want = expected(base)
    for fmt in ("webdataset", "parquet"):
        samples = {s["key"]: s for s in ShardDataset(str(out), split=None, shuffle=False,
                                                     format=fmt)}
        assert sorted(samples) == [f"ppi_{g:02d}" for g in sorted(want)]
        for gid, (split, edges, feats, targets) in want.items():
            s = samples[f"ppi_{gid:02d}"]
            assert s["split"] == split
            assert torch.equal(s["graph"]["edge_index"], torch.from_numpy(edges))
            assert torch.equal(s["graph"]["node_features"],
                               torch.from_numpy(feats.astype(np.float32)))
            assert torch.equal(s["node_targets"], torch.from_numpy(targets.astype(np.uint8)))
            assert s["node_targets"].shape == (len(feats), 121)
            assert s["labels"].sum() == 0  # node-level task: no graph class


def test_split_is_the_official_one_by_graph_id(built) -> None:
    base, _ = built
    records = list(get_source("ppi").list_records(base.parent))
    got = {r.meta["graph_id"]: r.split for r in records}
    assert got == {gid: OFFICIAL[prefix] for prefix, graphs in GRAPHS.items()
                   for gid, *_ in graphs}


def test_broken_graphs_are_quarantined(built) -> None:
    _, out = built
    lines = [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]
    by_id = {q["record_id"]: q["message"] for q in lines}
    assert "NaN" in by_id[f"{NAN_GRAPH:02d}"]
    assert "truncated" in by_id[f"{TRUNCATED_GRAPH:02d}"]
    assert len(by_id) == 2


def test_a_link_across_graphs_is_refused_and_self_loops_counted() -> None:
    edges, loops = induced_edges(np.array([[4, 5], [5, 5], [5, 6]]), np.array([4, 5, 6]))
    np.testing.assert_array_equal(edges, [[0, 1, 1, 1, 2], [1, 0, 1, 2, 1]])
    assert loops == 1
    with pytest.raises(Exception, match="join this graph to another"):
        induced_edges(np.array([[4, 9]]), np.array([4, 5]))


def test_graphsage_release_without_graph_ids_is_named(tmp_path) -> None:
    (tmp_path / "ppi-G.json").write_text("{}")
    with pytest.raises(Exception, match="no graph id per node"):
        list(get_source("ppi").list_records(tmp_path))
