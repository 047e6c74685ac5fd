"""Shard writers and planning, below the pipeline."""

from __future__ import annotations

import io

import numpy as np
import pytest

from medshard.schemas import RawRecord
from medshard.sharding.members import NpyMember, npy_array, npy_bytes
from medshard.sharding.plan import plan_shards
from medshard.sharding.wds import TarShardWriter, iter_tar_samples

ARRAYS = [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.zeros((5, 7, 3), dtype=np.int16),
    np.zeros(0),
    np.ones((2, 3), dtype=">i2"),
    np.asfortranarray(np.arange(15.0).reshape(3, 5)),
    np.random.default_rng(0).integers(0, 2**15, (64, 300, 5), dtype=np.int16),  # > one chunk
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
def test_streamed_npy_member_encodes_like_np_save(array):
    member = NpyMember(array)
    assert bytes(member) == npy_bytes(array)
    assert len(member) == len(npy_bytes(array))
    np.testing.assert_array_equal(npy_array(bytes(member)), array)


def test_tar_writer_streams_npy_members_to_the_same_bytes():
    def write(as_member: bool) -> bytes:
        buf = io.BytesIO()
        w = TarShardWriter(buf)
        for i, a in enumerate(ARRAYS):
            data = NpyMember(a) if as_member else npy_bytes(a)
            w.write(f"k{i}", [("json", b"{}"), ("signal.npy", data)])
        w.close()
        return buf.getvalue()

    streamed = write(True)
    assert streamed == write(False)
    samples = list(iter_tar_samples(io.BytesIO(streamed)))
    assert [s["__key__"] for s in samples] == [f"k{i}".encode() for i in range(len(ARRAYS))]
    np.testing.assert_array_equal(npy_array(samples[-1]["signal.npy"]), ARRAYS[-1])


def _records(sizes):
    return [RawRecord(record_id=f"r{i}", subject_id="s", files=[], size_bytes=s)
            for i, s in enumerate(sizes)]


def test_plan_cuts_at_target_and_keeps_records_whole():
    plans = plan_shards("src", "train", _records([40, 40, 40, 200, 10]), 100,
                        lambda r: r.size_bytes)
    assert [[r.record_id for r in p.records] for p in plans] == [
        ["r0", "r1"], ["r2"], ["r3"], ["r4"]]
    assert [p.stem for p in plans][:2] == ["src/train/src-train-000000",
                                           "src/train/src-train-000001"]


def test_plan_of_nothing_is_no_shard():
    assert plan_shards("src", "val", [], 100, lambda r: 1) == []
