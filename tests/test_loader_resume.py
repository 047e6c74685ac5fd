"""Deterministic resume (issue 19): a run resumed after k samples continues the sequence of
the run that never stopped, in the same order, shuffle buffer and weighted draws included.

Shards hold 3-9 samples and the shuffle buffer 8, so the stopping points below fall
mid-shard and with a part-filled or full buffer; the real-DDP case is in
test_loader_ddp.py.
"""

from __future__ import annotations

import itertools
import json

import pytest

from medshard.loaders import ShardDataset, ShardLoader
from medshard.loaders.assign import round_robin
from medshard.loaders.options import DecodeOptions, SamplingOptions
from tests.loader_fixtures import make_build

MODES = {
    "exact": dict(buffer_size=8),
    "exact-mixing": dict(buffer_size=8, weights={"ptb-xl": 1.0, "chexpert": 3.0, "toy-eeg": 1.0}),
    "replacement": dict(buffer_size=8, weights={"ptb-xl": 1.0, "chexpert": 2.0},
                        replacement=True, samples_per_epoch=50),
}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return make_build(tmp_path_factory.mktemp("build"), formats=("webdataset",))


def make(build, mode: str, **kw) -> ShardDataset:
    ds = ShardDataset(str(build.root), split="train", decode=False, seed=11, **MODES[mode], **kw)
    ds.set_epoch(3)
    return ds


def keys(samples) -> list[str]:
    return [s["__key__"] for s in samples]


@pytest.mark.filterwarnings("ignore:ShardDataset.state_dict.. counts samples")  # k = 0
@pytest.mark.parametrize("mode", sorted(MODES))
def test_resume_after_k_samples_continues_the_uninterrupted_sequence(build, mode):
    full = keys(make(build, mode))
    assert len(full) == (50 if mode == "replacement" else 48)
    for k in (0, 1, 3, 8, 13, 26, len(full) - 1, len(full)):
        ds = make(build, mode)
        head = keys(itertools.islice(iter(ds), k))
        resumed = make(build, mode)
        resumed.set_epoch(0)  # the state names its epoch
        resumed.load_state_dict(json.loads(json.dumps(ds.state_dict())))
        assert head + keys(resumed) == full, k


@pytest.mark.parametrize("mode", sorted(MODES))
def test_resume_twice_continues_the_same_sequence(build, mode):
    full = keys(make(build, mode))
    got: list[str] = []
    state = None
    for take in (5, 11, None):
        ds = make(build, mode)
        if state is not None:
            ds.load_state_dict(state)
        it = iter(ds)
        got += keys(it if take is None else itertools.islice(it, take))
        state = json.loads(json.dumps(ds.state_dict()))
    assert got == full


def test_resume_reads_only_the_samples_not_yet_delivered(build):
    """Delivered samples still in the replayed order are placeholders: never read again."""
    ds = make(build, "exact")
    head = keys(itertools.islice(iter(ds), 19))
    resumed = make(build, "exact")
    resumed.load_state_dict(ds.state_dict())
    read: list[str] = []
    plain = resumed._read

    def spy(part):
        for pos, raw in plain(part):
            read.append(raw["__key__"])
            yield pos, raw

    resumed._read = spy  # type: ignore[method-assign]
    rest = keys(resumed)
    assert sorted(read) == sorted(rest) and not set(read) & set(head)


@pytest.mark.parametrize("mode", ["exact", "replacement"])
@pytest.mark.parametrize("batch_size", [4, 5])
def test_loader_with_workers_resumes_the_same_batches(build, mode, batch_size):
    """2 worker processes: the resumed loader yields the uninterrupted run's batches, in
    order, although the next batch may come from worker 1 (the round-robin's place)."""
    def loader(ds):
        return ShardLoader(ds, batch_size=batch_size, num_workers=2,
                           collate_fn=lambda b: [r["__key__"] for r in b])

    full = list(loader(make(build, mode)))
    for stop in (1, 2, 5, len(full) - 1):
        ld = loader(make(build, mode))
        head = list(itertools.islice(iter(ld), stop))
        state = json.loads(json.dumps(ld.state_dict()))
        again = loader(make(build, mode))
        again.load_state_dict(state)
        assert len(again) == len(full) - stop
        assert head + list(again) == full, stop


def test_elastic_resume_after_a_deterministic_one_yields_exactly_the_rest(build):
    ds = make(build, "exact")
    first = keys(itertools.islice(iter(ds), 9))
    again = make(build, "exact")
    again.load_state_dict(ds.state_dict())
    second = keys(itertools.islice(iter(again), 10))
    state = again.state_dict()
    rest = []
    for rank in range(3):  # another world size: exactly the rest, each once, ranks equal
        last = make(build, "exact", rank=rank, world_size=3)
        last.load_state_dict(state)
        rest.append(keys(last))
    assert {len(r) for r in rest} == {29 // 3}
    seen = first + second + [k for r in rest for k in r]
    assert len(seen) == len(set(seen)) == 48 - 29 % 3


def test_round_robin_names_the_next_worker():
    assert round_robin([8, 8], 4, 3, False) == ([8, 4], 1)
    assert round_robin([8, 8], 4, 0, False) == ([0, 0], 0)
    # worker 0 exhausted after 1 batch: the next batches all come from worker 1
    assert round_robin([3, 9], 4, 2, False) == ([3, 4], 1)
    # DataLoader worker 0 playing slot 1: slot 1 delivers first
    assert round_robin([4, 8], 4, 1, False, first=1) == ([0, 4], 0)
    assert round_robin([4, 12], 4, 3, False, first=1) == ([4, 8], 1)


def test_option_objects_and_flat_keywords_mean_the_same(build):
    from medshard.errors import UserError

    flat = ShardDataset(str(build.root), seed=4, buffer_size=3, decode=False)
    grouped = ShardDataset(str(build.root), sampling=SamplingOptions(seed=4, buffer_size=3),
                           decoding=DecodeOptions(decode=False))
    assert keys(flat) == keys(grouped)
    assert flat.seed == grouped.seed == 4 and flat.buffer_size == 3
    with pytest.raises(UserError, match="given both"):
        ShardDataset(str(build.root), seed=1, sampling=SamplingOptions())
    with pytest.raises(TypeError, match="unexpected keyword"):
        ShardDataset(str(build.root), sedd=1)


def test_a_state_saved_before_deterministic_resume_still_loads(build):
    """Replacement states of the previous format kept earlier iterations' counts in `skip`."""
    full = keys(make(build, "replacement"))
    ds = make(build, "replacement")
    keys(itertools.islice(iter(ds), 16))
    state = ds.state_dict()
    assert state["consumed"] == [16] and state["next_worker"] == 0
    old = {k: v for k, v in state.items() if k != "next_worker"}
    old.update(skip=[7], consumed=[9])  # 7 delivered before the last resume, 9 since
    resumed = make(build, "replacement")
    resumed.load_state_dict(old)
    assert keys(resumed) == full[16:]
