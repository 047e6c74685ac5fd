"""Real torch.distributed (gloo on 127.0.0.1): 2 ranks x 2 DataLoader workers."""

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
        result["head"], _ = _epoch(loader, stop_after=3)
        state = loader.state_dict()
        resumed_ds = ShardDataset(root, split="train", seed=7)
        resumed = ShardLoader(resumed_ds, batch_size=BATCH, num_workers=WORKERS)
        resumed.load_state_dict(json.loads(json.dumps(state)))
        result["rest"], result["rest_batches"] = _epoch(resumed)
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


def test_resume_after_state_dict_yields_exactly_the_rest(ddp_results):
    build, results = ddp_results
    head = [k for r in results for k in r["head"]]
    rest = [k for r in results for k in r["rest"]]
    assert len(head) == WORLD * 3 * BATCH
    assert len(head + rest) == len(set(head + rest))
    assert set(head + rest) == set(build.split_keys("train"))
    assert len({r["rest_batches"] for r in results}) == 1
