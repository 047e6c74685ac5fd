"""`medshard fewshot`: k-shot subsets per class, patient-disjoint from the test split,
deterministic per seed; the loader's `keys=` filter reads them."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from medshard.cli import main
from medshard.errors import UserError
from medshard.jobs.fewshot import write_fewshot
from medshard.loaders import ShardDataset
from medshard.schemas.vocabulary import load_vocabulary
from tests.loader_fixtures import make_build


@pytest.fixture(scope="module")
def overlap_build(tmp_path_factory):
    """The loader test build: train sample i and val sample i share a subject."""
    root = tmp_path_factory.mktemp("fewshot-build")
    make_build(root, formats=("webdataset",))
    return root


def _index(build):
    return {r["key"]: r for r in pq.read_table(build / "index.parquet").to_pylist()}


def _subjects(build):
    # the fixture build's index has no subject column; its sample JSON has it
    out = {}
    for src in ShardDataset(str(build), split=None, sources=["ptb-xl"], decode=False):
        meta = json.loads(src["json"])
        out[meta["key"]] = meta["subject"]
    return out


def _pool(build, test_split):
    index, subjects = _index(build), _subjects(build)
    test = {subjects[k] for k, r in index.items() if r["split"] == test_split and k in subjects}
    return {k: r for k, r in index.items()
            if r["source"] == "ptb-xl" and r["split"] == "train" and subjects[k] not in test}


def test_k_per_class_patient_disjoint_and_deterministic(overlap_build, tmp_path, monkeypatch):
    import medshard.jobs.fewshot as fewshot

    subjects = _subjects(overlap_build)

    def read_index(build):  # the fixture's index lacks `subject`: add it from the samples
        rows = pq.read_table(overlap_build / "index.parquet").to_pylist()
        return [{**r, "subject": subjects.get(r["key"], r["key"])} for r in rows], "h"

    monkeypatch.setattr(fewshot, "read_index", read_index)
    args = dict(shots=[1, 2, 4], seeds=[0, 1, 2], sources=["ptb-xl"], test_split="val")
    listing = write_fewshot(str(overlap_build), out=tmp_path / "a", **args)
    write_fewshot(str(overlap_build), out=tmp_path / "b", **args)
    pool = _pool(overlap_build, "val")
    index = _index(overlap_build)
    assert len(pool) < sum(1 for r in index.values() if r["split"] == "train" and r["source"] == "ptb-xl")
    classes = load_vocabulary().source_concepts("ptb-xl")
    by_seed: dict[tuple[int, int], list[str]] = {}
    for entry in listing:
        path = tmp_path / "a" / entry["path"]
        m = json.loads(path.read_text())
        assert path.read_bytes() == (tmp_path / "b" / entry["path"]).read_bytes()  # rerun: same
        assert set(m["classes"]) == set(classes)
        for cls, keys in m["classes"].items():
            positives = [k for k, r in pool.items() if cls in r["labels"]]
            assert len(keys) == min(m["shots"], len(positives))
            assert set(keys) <= set(positives)  # positives of that class, from the pool only
            assert m["shortfall"].get(cls, 0) == m["shots"] - len(keys)
        assert m["keys"] == sorted({k for ks in m["classes"].values() for k in ks})
        by_seed[(m["shots"], m["seed"])] = m["keys"]
    for k in (1, 2):
        assert len({tuple(by_seed[(k, s)]) for s in (0, 1, 2)}) > 1  # seeds differ
        for s in (0, 1, 2):
            assert set(by_seed[(k, s)]) <= set(by_seed[(4, s)])  # nested within a seed


def test_fewshot_cli_on_a_real_build_and_the_loader_filter(demo_build, tmp_path, capsys):
    out = tmp_path / "fs"
    assert main(["fewshot", str(demo_build), "--shots", "1", "2", "--seeds", "0", "1",
                 "--out", str(out)]) == 0
    assert "8 manifests" in capsys.readouterr().out
    index = _index(demo_build)
    test_subjects = {r["subject"] for r in index.values() if r["split"] == "test"}
    manifest = out / "ptb-xl" / "2shot-seed1.json"
    keys = json.loads(manifest.read_text())["keys"]
    assert keys and all(index[k]["split"] == "train" for k in keys)
    assert not {index[k]["subject"] for k in keys} & test_subjects
    got = [s["__key__"] for s in ShardDataset(str(demo_build), split="train", keys=str(manifest),
                                             decode=False)]
    assert sorted(got) == keys
    with pytest.raises(UserError, match="not in the selected shards"):
        ShardDataset(str(demo_build), split="test", keys=str(manifest))


def test_fewshot_user_errors_are_one_line(demo_build, tmp_path, capsys):
    assert main(["fewshot", str(demo_build), "--shots", "1", "--out", str(tmp_path),
                 "--sources", "tuab"]) == 2
    err = capsys.readouterr().err
    assert "not in" in err and err.count("\n") == 1
    assert main(["fewshot", str(tmp_path / "nothing"), "--shots", "1", "--out", str(tmp_path)]) == 2
