"""Remote reading over fsspec http from a loopback server; cache bound; checksum failures."""

from __future__ import annotations

import functools
import shutil
import threading
import warnings
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from medshard.loaders import ShardDataset, ShardError
from tests.loader_fixtures import make_build


class _QuietHandler(SimpleHTTPRequestHandler):
    shard_gets: list[str]

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.endswith((".tar", ".parquet")):
            self.shard_gets.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    build = make_build(tmp_path_factory.mktemp("remote-build"))
    gets: list[str] = []
    handler = functools.partial(
        type("H", (_QuietHandler,), {"shard_gets": gets}), directory=str(build.root)
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield build, f"http://127.0.0.1:{server.server_address[1]}", gets
    server.shutdown()
    server.server_close()


def test_remote_build_streams_every_sample_once(served):
    build, url, _ = served
    for fmt in ("webdataset", "parquet"):
        ds = ShardDataset(url, split="train", format=fmt)
        keys = [s["key"] for s in ds]
        assert sorted(keys) == sorted(build.split_keys("train"))


def test_cache_is_bounded_and_serves_later_epochs(served, tmp_path):
    build, url, gets = served
    shard_sizes = sorted(
        p.stat().st_size for p in build.root.glob("webdataset/ptb-xl/train/*.tar")
    )
    bound = shard_sizes[-1] * 2 + 1  # room for two of the four shards
    ds = ShardDataset(url, split="train", sources="ptb-xl", cache_dir=str(tmp_path / "c"),
                      cache_bytes=bound, decode=False)
    gets.clear()
    assert len(list(ds)) == 26
    assert len(gets) == 4 and ds.store.cached_bytes() <= bound
    assert len(list((tmp_path / "c").iterdir())) == 2
    # everything fits: a second epoch is served from the cache without a request
    roomy = ShardDataset(url, split="train", sources="ptb-xl", cache_dir=str(tmp_path / "d"),
                         decode=False)
    list(roomy)
    gets.clear()
    roomy.set_epoch(1)
    assert len(list(roomy)) == 26 and gets == []


@pytest.fixture
def damaged(tmp_path, served):
    build, _, _ = served
    root = tmp_path / "copy"
    shutil.copytree(build.root, root)
    shard = root / "webdataset/chexpert/train/chexpert-train-000001.tar"
    data = bytearray(shard.read_bytes())
    data[1000] ^= 0xFF  # one flipped byte inside a member
    shard.write_bytes(bytes(data))
    return root


def test_corrupt_shard_is_named_in_the_error(damaged):
    ds = ShardDataset(str(damaged), split="train", sources="chexpert", decode=False, verify=True)
    with pytest.raises(ShardError, match="chexpert/train/chexpert-train-000001.tar fails its sha256"):
        list(ds)


def test_corrupt_remote_shard_is_caught_by_default(served):
    build, url, _ = served
    shard = build.root / "parquet/chexpert/train/chexpert-train-000002.parquet"
    good = shard.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    shard.write_bytes(bytes(bad))
    try:
        ds = ShardDataset(url, split="train", sources="chexpert", format="parquet", decode=False)
        with pytest.raises(ShardError, match="chexpert-train-000002.parquet fails its sha256"):
            list(ds)
    finally:
        shard.write_bytes(good)


def test_corrupt_shard_can_be_skipped_with_a_warning_keeping_counts(damaged):
    ds = ShardDataset(str(damaged), split="train", sources="chexpert", decode=False,
                      on_error="skip", world_size=1, rank=0, verify=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keys = [s["__key__"] for s in ds]
    assert any("chexpert-train-000001.tar" in str(w.message) for w in caught)
    assert len(keys) == 13  # filled up to the planned count: DDP ranks stay equal
    assert not any(k in {f"chexpert_train_{i:04d}" for i in range(5, 10)} for k in keys)


def test_missing_shard_is_named_locally_and_remotely(served):
    build, url, _ = served
    shard = build.root / "parquet/toy-eeg/train/toy-eeg-train-000000.parquet"
    moved = shard.with_suffix(".away")
    shard.rename(moved)
    try:
        for where in (str(build.root), url):
            ds = ShardDataset(where, split="train", sources="toy-eeg", format="parquet")
            with pytest.raises(ShardError, match="toy-eeg-train-000000.parquet is missing"):
                list(ds)
    finally:
        moved.rename(shard)
