"""The streaming loader over a real build directory (see loader_fixtures.py)."""

from __future__ import annotations

import collections
import io
import itertools
import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch

from medshard.loaders import Collate, ShardDataset, ShardLoader, collate
from medshard.loaders.assign import Layout, consumed_per_worker
from medshard.loaders.decode import image_tensor, iter_tar_buffer, iter_tar_groups, npy_tensor
from medshard.schemas.vocabulary import load_vocabulary
from tests.loader_fixtures import jpeg_bytes, make_build


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return make_build(tmp_path_factory.mktemp("build"))


def keys_of(samples) -> list[str]:
    return [s["key"] if "key" in s else s["__key__"] for s in samples]


def slot_keys(ds: ShardDataset, rank: int, worker: int, workers: int) -> list[str]:
    raws, _ = ds._raw_stream(rank, worker, workers)
    return [r["__key__"] for r in raws]


def test_import_pulls_no_etl_stack():
    code = (
        "import sys, medshard.loaders, medshard;"
        "heavy = {'apache_beam', 'pydicom', 'mne', 'SimpleITK', 'nibabel', 'wfdb', 'PIL'};"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_each_sample_once_per_epoch_in_both_formats(build, fmt):
    ds = ShardDataset(str(build.root), split="train", format=fmt)
    got = keys_of(ds)
    assert sorted(got) == sorted(build.split_keys("train"))
    assert len(ds) == len(got) == 48


def test_decoded_sample_matches_what_was_written(build):
    vocab = load_vocabulary()
    by_key = {s["key"]: s for s in ShardDataset(str(build.root), split="train", shuffle=False)}
    ecg = by_key["ptbxl_train_0001"]
    assert ecg["signal"].dtype == torch.float32 and ecg["signal"].shape == (12, 2500)
    assert ecg["modality"] == "ecg" and ecg["meta"]["payloads"]["signal"]["sampling_rate_hz"] == 250.0
    assert torch.equal(ecg["label_mask"], torch.from_numpy(vocab.mask("ptb-xl")))
    want = torch.from_numpy(vocab.multi_hot(build.labels["ptbxl_train_0001"]))
    assert torch.equal(ecg["labels"], want) and want.sum() == 1
    img8 = by_key["chexpert_train_0001"]["image"]
    assert img8.dtype == torch.uint8 and img8.shape == (1, 47, 65)
    img16 = by_key["chexpert_train_0003"]
    assert img16["image"].dtype == torch.int32 and img16["meta"]["payloads"]["image"]["bit_depth"] == 16
    assert img16["image"].max() > 255  # 16-bit values survive
    eeg = by_key["toyeeg_train_0000"]
    assert eeg["label_mask"].sum() == 0  # a source the vocabulary cannot speak for
    assert "members" not in eeg["meta"] and eeg["meta"]["age"] == 40
    assert "meta" not in eeg["meta"]  # the source's metadata is flat


def test_jpeg_and_npy_members_decode():
    gray = (np.arange(48 * 64) % 251).astype(np.uint8).reshape(48, 64)
    t = image_tensor(jpeg_bytes(gray))
    assert t.shape == (1, 48, 64) and t.dtype == torch.uint8
    rgb = np.stack([gray] * 3, axis=-1)
    assert image_tensor(jpeg_bytes(rgb)).shape == (3, 48, 64)
    from medshard.sharding.members import npy_bytes

    arr = np.arange(24, dtype=">u2").reshape(2, 3, 4)
    out = npy_tensor(npy_bytes(arr))
    assert out.dtype == torch.int32 and out.tolist() == arr.astype(np.int32).tolist()


def test_decode_threads_keep_order_and_content(build):
    plain = list(ShardDataset(str(build.root), split="train", seed=1))
    threaded = list(ShardDataset(str(build.root), split="train", seed=1, decode_threads=2))
    assert keys_of(plain) == keys_of(threaded)
    for a, b in zip(plain, threaded, strict=True):
        payload = "signal" if "signal" in a else "image"
        assert torch.equal(a[payload], b[payload])


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_tar_parser_agrees_with_tarfile(fmt):
    names = ["a/k1.json", "a/k1.signal.npy", "b" * 120 + "/k2.json", "c/" + "d" * 90 + ".image.png"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for i, name in enumerate(names):
            if fmt == tarfile.USTAR_FORMAT and len(name) > 100 and "/" not in name[-100:]:
                continue
            data = bytes([i]) * (100 + 700 * i)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        want = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    assert [(n, bytes(v)) for n, v in iter_tar_buffer(raw)] == want
    groups = [(k, [e for e, _ in ms]) for k, ms in iter_tar_groups(raw)]
    assert groups[0] == ("a/k1", ["json", "signal.npy"])
    with pytest.raises(ValueError, match="past the end|inside a header"):
        list(iter_tar_buffer(raw[:1100]))


def test_same_seed_and_epoch_same_order_else_different(build):
    def order(seed, epoch):
        ds = ShardDataset(str(build.root), split="train", seed=seed, decode=False)
        ds.set_epoch(epoch)
        return keys_of(ds)

    a = order(0, 0)
    assert a == order(0, 0)
    assert a != order(0, 1) and sorted(a) == sorted(order(0, 1))
    assert a != order(1, 0)


@pytest.mark.parametrize("equalize", ["drop", "repeat"])
def test_every_layout_covers_the_split_with_equal_ranks(build, equalize):
    everything = set(build.split_keys("train"))
    for world in (1, 2, 3, 5):
        for workers in (1, 2, 3):
            ds = ShardDataset(
                str(build.root), split="train", decode=False, world_size=world, rank=0,
                equalize=equalize, buffer_size=4,
            )
            per_rank = [
                [k for w in range(workers) for k in slot_keys(ds, r, w, workers)]
                for r in range(world)
            ]
            sizes = {len(p) for p in per_rank}
            assert len(sizes) == 1, (world, workers, sizes)
            flat = [k for p in per_rank for k in p]
            if equalize == "drop":
                assert len(set(flat)) == len(flat)  # nothing twice
                assert len(everything - set(flat)) == 48 % world
            else:
                assert set(flat) == everything
                assert len(flat) - len(everything) == (-48) % world


def test_resume_in_process_yields_exactly_the_rest(build):
    ds = ShardDataset(str(build.root), split="train", seed=3, decode=False)
    ds.set_epoch(2)
    it = iter(ds)
    first = [next(it)["__key__"] for _ in range(17)]
    state = json.loads(json.dumps(ds.state_dict()))
    fresh = ShardDataset(str(build.root), split="train", seed=3, decode=False)
    fresh.load_state_dict(state)
    rest = keys_of(fresh)
    assert len(rest) == 48 - 17
    assert sorted(first + rest) == sorted(build.split_keys("train"))


def test_loader_resume_with_workers_then_elastic(build):
    """2 workers, stop after 3 batches; resume the rest on 3 ranks x 2 workers."""
    ds = ShardDataset(str(build.root), split="train", decode=False, seed=5)
    loader = ShardLoader(ds, batch_size=4, num_workers=2, collate_fn=lambda b: [r["__key__"] for r in b])
    seen: list[str] = []
    for i, batch in enumerate(loader):
        seen += batch
        if i == 2:
            state = loader.state_dict()
            break
    assert len(seen) == 12
    assert len(loader) == 12  # 48 samples: 24 per worker, 6 batches each
    rest: list[str] = []
    counts = []
    for rank in range(3):
        ds2 = ShardDataset(str(build.root), split="train", decode=False, seed=5, rank=rank, world_size=3)
        ds2.load_state_dict(state)
        mine = [k for w in range(2) for k in slot_keys(ds2, rank, w, 2)]
        counts.append(len(mine))
        rest += mine
    assert len(set(counts)) == 1
    assert len(set(rest)) == len(rest) and not set(rest) & set(seen)
    assert len(set(build.split_keys("train")) - set(seen) - set(rest)) == 36 % 3


def test_consumed_per_worker_follows_round_robin():
    assert consumed_per_worker([5, 5], 2, 3, False) == [4, 2]
    assert consumed_per_worker([5, 4], 2, 5, False) == [5, 4]  # 3 + 2 batches: all of them
    assert consumed_per_worker([3, 2], 2, 3, False) == [3, 2]
    assert consumed_per_worker([3, 2], 2, 2, True) == [2, 2]
    assert Layout(48, 5, 2).worker_sizes == [5, 4]
    assert Layout(48, 5, 2, "repeat").per_rank == 10


def test_mixing_with_replacement_follows_weights(build):
    ds = ShardDataset(
        str(build.root), split="train", weights={"ptb-xl": 1.0, "chexpert": 3.0},
        replacement=True, samples_per_epoch=2000, decode=False,
    )
    got = collections.Counter(k.split("_")[0] for k in keys_of(ds))
    assert sum(got.values()) == 2000 and set(got) == {"ptbxl", "chexpert"}
    assert abs(got["chexpert"] / 2000 - 0.75) < 0.04  # ~4 standard deviations


def test_mixing_with_replacement_resumes_exactly(build):
    kw = dict(split="train", weights={"ptb-xl": 1.0, "toy-eeg": 1.0}, replacement=True,
              samples_per_epoch=60, decode=False)
    ds = ShardDataset(str(build.root), **kw)
    full = keys_of(ds)
    it = iter(ds)
    for _ in range(25):
        next(it)
    resumed = ShardDataset(str(build.root), **kw)
    resumed.load_state_dict(ds.state_dict())
    assert keys_of(resumed) == full[25:]


def test_weights_without_replacement_keep_each_sample_once(build):
    ds = ShardDataset(str(build.root), split="train", weights={"ptb-xl": 1.0, "chexpert": 4.0},
                      decode=False)
    got = keys_of(ds)
    assert sorted(got) == sorted(build.split_keys("train", ["ptb-xl", "chexpert"]))
    head = collections.Counter(k.split("_")[0] for k in got[:12])
    assert head["chexpert"] > head["ptbxl"]  # the heavy source comes first


def test_filters_by_split_source_modality_label(build):
    root = str(build.root)
    assert sorted(keys_of(ShardDataset(root, split="val", decode=False))) == sorted(
        build.split_keys("val"))
    assert {k.split("_")[0] for k in keys_of(ShardDataset(root, modalities="ecg", decode=False))} == {"ptbxl"}
    assert {k.split("_")[0] for k in keys_of(ShardDataset(root, sources=["toy-eeg"], decode=False))} == {"toyeeg"}
    ds = ShardDataset(root, split="train", labels=["ecg.normal", "cxr.edema"], decode=False,
                      world_size=2, rank=1)
    want = {k for k in build.split_keys("train")
            if {"ecg.normal", "cxr.edema"} & set(build.labels[k])}
    got = [k for w in range(2) for r in range(2) for k in slot_keys(ds, r, w, 2)]
    assert len(got) == len(set(got)) and set(got) <= want and len(want - set(got)) == len(want) % 2
    picky = ShardDataset(root, split="train", filter=lambda row: row["key"].endswith("1"), decode=False)
    assert sorted(keys_of(picky)) == sorted(k for k in build.split_keys("train") if k.endswith("1"))


def test_collate_stacks_lists_pads_and_crops(build):
    samples = list(ShardDataset(str(build.root), split="train", sources="chexpert", shuffle=False))
    batch = collate(samples[:4])
    assert isinstance(batch["image"], list) and batch["labels"].shape == (4, len(load_vocabulary()))
    padded = Collate(pad=True)(samples[:4])
    assert padded["image"].shape[0] == 4 and padded["image_shape"].shape == (4, 3)
    h, w = samples[0]["image"].shape[1:]
    assert torch.equal(padded["image"][0, :, :h, :w], samples[0]["image"])
    fixed = Collate(size={"image": (32, 48)})(samples[:4])
    assert fixed["image"].shape == (4, 1, 32, 48)
    ecg = list(ShardDataset(str(build.root), split="val", sources="ptb-xl"))
    assert collate(ecg)["signal"].shape == (len(ecg), 12, 2500)
    mixed = collate([ecg[0], samples[0]])
    assert mixed["signal"][1] is None and mixed["image"][0] is None


def test_unknown_source_and_missing_build_are_clear_errors(build, tmp_path):
    from medshard.errors import UserError

    with pytest.raises(UserError, match="not in this build"):
        ShardDataset(str(build.root), sources=["nope"])
    with pytest.raises(UserError, match="no medshard manifest"):
        ShardDataset(str(tmp_path))


def test_resume_twice_then_on_two_ranks(build):
    def make(**kw):
        return ShardDataset(str(build.root), split="train", decode=False, seed=2, **kw)

    ds = make()
    ds.set_epoch(4)
    it = iter(ds)
    first = [next(it)["__key__"] for _ in range(10)]
    again = make()
    again.load_state_dict(json.loads(json.dumps(ds.state_dict())))
    it = iter(again)
    second = [next(it)["__key__"] for _ in range(13)]
    state = again.state_dict()
    ranks = []
    for rank in range(2):
        last = make(world_size=2, rank=rank)
        last.load_state_dict(state)
        ranks.append(keys_of(last))
    seen = first + second + ranks[0] + ranks[1]
    assert len(ranks[0]) == len(ranks[1]) == 12  # 25 left, one dropped to equalize
    assert len(seen) == len(set(seen)) == 47


def test_replacement_resume_twice_continues_the_same_sequence(build):
    kw = dict(split="train", weights={"ptb-xl": 1.0, "chexpert": 2.0}, replacement=True,
              samples_per_epoch=50, decode=False)
    full = keys_of(ShardDataset(str(build.root), **kw))
    got: list[str] = []
    state = None
    for take in (7, 9, None):
        ds = ShardDataset(str(build.root), **kw)
        if state is not None:
            ds.load_state_dict(state)
        it = iter(ds)
        got += [s["__key__"] for s in (it if take is None else itertools.islice(it, take))]
        state = ds.state_dict()
    assert got == full


def test_weights_without_replacement_must_cover_every_source(build):
    from medshard.errors import UserError

    with pytest.raises(UserError, match="needs a weight > 0"):
        ShardDataset(str(build.root), sources=["ptb-xl", "chexpert"], weights={"ptb-xl": 1.0})
