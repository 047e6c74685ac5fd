"""Real torch.distributed (gloo on 127.0.0.1): 2 ranks x 2 DataLoader workers.

Resume (issue 19): each rank stops after k batches for several k, saves the loader's
state, and a fresh loader resumes it; per rank, the batches before and after the stop
must be the uninterrupted epoch's, in order, with and without replacement.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from medshard.loaders import ShardDataset, ShardLoader
from tests.loader_fixtures import make_build

WORLD = 2
WORKERS = 2
BATCH = 4
# 3 batches of 4: worker 1 delivers next, worker 0 stopped 8 samples into its 24 (mid-shard);
# more stopping points run in test_loader_resume.py (one process, 2 workers)
STOPS = {"exact": (3,), "replacement": (3,)}
REPLACEMENT = dict(weights={"ptb-xl": 1.0, "chexpert": 2.0}, replacement=True,
                   samples_per_epoch=40, buffer_size=8)


def _keys(batch: list[dict]) -> dict:
    return {"key": [r["__key__"] for r in batch]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _epoch(loader: ShardLoader, stop_after: int | None = None) -> tuple[list[str], int]:
    keys: list[str] = []
    batches = 0
    for batch in loader:
        keys += batch["key"]
        batches += 1
        step = torch.ones(1)
        dist.all_reduce(step)  # a DDP step: hangs if ranks disagree on batch counts
        if stop_after is not None and batches == stop_after:
            break
    return keys, batches


def _rank_main(rank: int, root: str, port: int, out: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        result: dict = {}
        ds = ShardDataset(root, split="train", seed=7)
        loader = ShardLoader(ds, batch_size=BATCH, num_workers=WORKERS)
        result["len"] = len(loader)
        for epoch in (0, 1):
            ds.set_epoch(epoch)
            result[f"epoch{epoch}"], result[f"batches{epoch}"] = _epoch(loader)
        ds.set_epoch(2)
        result["epoch2"], _ = _epoch(loader)
        # resume: raw samples (the order is what is tested; decoding was covered above)
        kws = {"exact": dict(decode=False), "replacement": dict(decode=False, **REPLACEMENT)}
        for mode, kw in kws.items():
            def make_loader(kw=kw):
                ds = ShardDataset(root, split="train", seed=7, **kw)
                ds.set_epoch(2)
                return ShardLoader(ds, batch_size=BATCH, num_workers=WORKERS, collate_fn=_keys)

            if mode == "replacement":
                result["replacement"], _ = _epoch(make_loader())
            for stop in STOPS[mode]:
                loader = make_loader()
                head, _ = _epoch(loader, stop_after=stop)
                state = loader.state_dict()
                resumed = make_loader()
                resumed.load_state_dict(json.loads(json.dumps(state)))
                rest, rest_batches = _epoch(resumed)
                result[f"{mode}-{stop}"] = {"head": head, "rest": rest,
                                            "rest_batches": rest_batches}
        Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    build = make_build(tmp_path_factory.mktemp("ddp-build"))
    out = tmp_path_factory.mktemp("ddp-out")
    mp.spawn(_rank_main, args=(str(build.root), _free_port(), str(out)), nprocs=WORLD, join=True)
    results = [json.loads(Path(out, f"rank{r}.json").read_text()) for r in range(WORLD)]
    return build, results


def test_each_epoch_yields_each_sample_once_across_ranks(ddp_results):
    build, results = ddp_results
    everything = set(build.split_keys("train"))  # 48 samples: divisible by 2, none dropped
    for epoch in (0, 1):
        keys = [k for r in results for k in r[f"epoch{epoch}"]]
        assert len(keys) == len(set(keys)) and set(keys) == everything
        assert len({len(r[f"epoch{epoch}"]) for r in results}) == 1
        assert {r[f"batches{epoch}"] for r in results} == {results[0]["len"]}


def test_epochs_differ_in_order(ddp_results):
    _, results = ddp_results
    assert results[0]["epoch0"] != results[0]["epoch1"]


@pytest.mark.parametrize("stop", STOPS["exact"])
def test_resume_continues_the_uninterrupted_epoch_on_every_rank(ddp_results, stop):
    build, results = ddp_results
    for r in results:
        got = r[f"exact-{stop}"]
        assert len(got["head"]) == stop * BATCH
        assert got["head"] + got["rest"] == r["epoch2"]
    rest = [k for r in results for k in r[f"exact-{stop}"]["rest"]]
    head = [k for r in results for k in r[f"exact-{stop}"]["head"]]
    assert set(head + rest) == set(build.split_keys("train")) and len(head + rest) == 48
    assert len({r[f"exact-{stop}"]["rest_batches"] for r in results}) == 1


@pytest.mark.parametrize("stop", STOPS["replacement"])
def test_replacement_resume_continues_the_uninterrupted_epoch(ddp_results, stop):
    _, results = ddp_results
    for r in results:
        got = r[f"replacement-{stop}"]
        assert got["head"] + got["rest"] == r["replacement"]
        assert len(r["replacement"]) == 40 // WORLD
    assert results[0]["replacement"] != results[1]["replacement"]
