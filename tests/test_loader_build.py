"""The loader over a build made by the real pipeline (PTB-XL and CheXpert demo miniatures)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import torch

from medshard.loaders import ShardDataset, ShardLoader
from medshard.pipeline.build import BuildConfig, run_build
from medshard.schemas.vocabulary import load_vocabulary


@pytest.fixture(scope="module")
def built(demo_raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("loader-build")
    run_build(BuildConfig(sources=["ptb-xl", "chexpert"], data_root=demo_raw, out=out,
                          formats=("webdataset", "parquet"), shard_size=400_000, progress=False))
    return out


def test_every_split_reads_back_in_both_formats(built):
    index = pq.read_table(built / "index.parquet").to_pylist()
    manifest = json.loads((built / "manifest.json").read_text())
    for split in ("train", "val", "test"):
        want = sorted(r["key"] for r in index if r["split"] == split)
        if not want:
            continue
        for fmt in ("webdataset", "parquet"):
            got = [s["__key__"] for s in ShardDataset(str(built), split=split, format=fmt, decode=False)]
            assert sorted(got) == want, (split, fmt)
    assert sum(s["samples"] for s in manifest["shards"] if s["format"] == "webdataset") == len(index)


def test_decoded_samples_of_a_real_build(built):
    vocab = load_vocabulary()
    index = {r["key"]: r for r in pq.read_table(built / "index.parquet").to_pylist()}
    ds = ShardDataset(str(built), split=None)
    seen = set()
    for s in ds:
        seen.add(s["modality"])
        assert torch.equal(s["labels"], torch.from_numpy(vocab.multi_hot(index[s["key"]]["labels"])))
        assert torch.equal(s["label_mask"], torch.from_numpy(vocab.mask(s["source"])))
        if s["modality"] == "ecg":
            sig = s["meta"]["payloads"]["signal"]
            assert s["signal"].dtype == torch.float32
            assert tuple(s["signal"].shape) == (len(sig["channels"]), sig["n_samples"])
        else:
            img = s["meta"]["payloads"]["image"]
            assert s["image"].shape[-2:] == (img["height"], img["width"])
    assert seen == {"ecg", "chest-xray"}


def test_loader_with_workers_over_a_real_build(built):
    ds = ShardDataset(str(built), split=None, weights={"ptb-xl": 1.0, "chexpert": 1.0})
    loader = ShardLoader(ds, batch_size=3, num_workers=2)
    keys = [k for batch in loader for k in batch["key"]]
    assert sorted(keys) == sorted(r["key"] for r in pq.read_table(built / "index.parquet").to_pylist())


def test_label_and_row_filters_use_the_real_index(built):
    index = pq.read_table(built / "index.parquet").to_pylist()
    concept = next(c for r in index for c in r["labels"])
    want = sorted(r["key"] for r in index if concept in r["labels"])
    got = [s["__key__"] for s in ShardDataset(str(built), split=None, labels=concept, decode=False)]
    assert sorted(got) == want
    picky = ShardDataset(str(built), split=None, decode=False, format="parquet",
                         filter=lambda row: row["source"] == "chexpert")
    assert sorted(s["__key__"] for s in picky) == sorted(
        r["key"] for r in index if r["source"] == "chexpert")
