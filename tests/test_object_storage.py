"""Builds with raw data and output on object storage: an S3 API served on loopback by moto.

Credentials and the endpoint reach medshard only through the environment (as on a real
cluster); the worker processes of the external pool inherit it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medshard.pipeline.build import BuildConfig, run_build
from tests.helpers import PortableServices, free_port, output_files

pytest.importorskip("moto.server")
pytest.importorskip("s3fs")

SOURCES = ["ptb-xl", "chexpert"]
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_DEFAULT_REGION": "us-east-1"}


def config(raw, out, **kw) -> BuildConfig:
    kw.setdefault("formats", ("webdataset", "parquet"))
    kw.setdefault("shard_size", 400_000)
    return BuildConfig(sources=SOURCES, data_root=raw, out=out, progress=False, **kw)


@pytest.fixture(scope="module")
def s3(demo_raw):
    """A moto S3 server on 127.0.0.1 with bucket `raw` holding the demo's raw files;
    yields the s3fs filesystem. The endpoint and credentials are environment variables."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in (*S3_ENV, "AWS_ENDPOINT_URL")}
    os.environ.update(S3_ENV, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    try:
        import fsspec

        fs = fsspec.filesystem("s3", skip_instance_cache=True, use_listings_cache=False)
        for bucket in ("raw", "builds"):
            fs.mkdir(bucket)
        fs.put(f"{demo_raw}/", "raw/", recursive=True)
        yield fs
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def reference(demo_raw, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("local")
    run_build(config(demo_raw, out))
    return output_files(out)


def fetch(fs, url: str, dst: Path) -> dict[str, bytes]:
    """Every published file of a build on S3, fetched to `dst`."""
    fs.get(url.removeprefix("s3://") + "/", f"{dst}/", recursive=True)
    return output_files(dst)


def test_object_storage_build_is_byte_identical_and_resumes(s3, reference, tmp_path):
    out = "s3://builds/direct"
    result = run_build(config("s3://raw", out))
    assert result.shards_written > 0
    assert fetch(s3, out, tmp_path / "a") == reference
    # nothing but published objects and the build's working files under the output
    names = [p.removeprefix("builds/direct/") for p in s3.find("builds/direct")]
    assert not [n for n in names if n.endswith(".tmp")]
    assert "build.lock" not in " ".join(names)
    # resume: a deleted shard is rebuilt alone, to the same bytes
    victim = next(n for n in names if n.endswith(".tar"))
    s3.rm_file(f"builds/direct/{victim}")
    again = run_build(config("s3://raw", out))
    assert again.shards_written == 1
    assert fetch(s3, out, tmp_path / "b") == reference


def test_validate_and_the_loader_read_a_build_on_object_storage(s3, reference, capsys):
    from medshard.cli import main
    from medshard.loaders import ShardDataset

    out = "s3://builds/direct"
    if not s3.exists("builds/direct/manifest.json"):
        run_build(config("s3://raw", out))
    assert main(["validate", out]) == 0
    assert "shards match the manifest" in capsys.readouterr().out
    index = pq.read_table(io.BytesIO(reference["index.parquet"]))
    for fmt in ("webdataset", "parquet"):
        keys = [s["key"] for s in ShardDataset(out, split=None, format=fmt, shuffle=False)]
        assert sorted(keys) == sorted(index.column("key").to_pylist())
    # a shard changed on the store is found
    shard = json.loads(reference["manifest.json"])["shards"][0]["path"]
    s3.pipe_file(f"builds/direct/{shard}", b"not a shard")
    assert main(["validate", out]) == 1
    assert f"MISMATCH {shard}: sha256" in capsys.readouterr().out


@pytest.mark.slow
def test_portable_runner_with_two_external_workers_builds_from_and_to_s3(s3, reference,
                                                                         tmp_path):
    """Beam's job service + an external SDK worker pool (separate processes, the Fn API of
    Flink, Spark and Dataflow), two worker processes, raw data and output on S3."""
    out = "s3://builds/portable"
    with PortableServices(workers=2) as services:  # inherits the S3 endpoint, credentials
        result = run_build(config("s3://raw", out, beam_args=services.beam_args()))
    assert fetch(s3, out, tmp_path / "p") == reference
    # both worker processes wrote shards, and none of them is this (the driver) process
    assert len(result.worker_shards) == 2, result.worker_shards
    assert all(n > 0 for n in result.worker_shards.values())
    assert sum(result.worker_shards.values()) == result.shards_written
    assert not any(name.endswith(f":{os.getpid()}") for name in result.worker_shards)


# Runs a build in a child process whose third shard upload dies part-way: the child
# exits (no cleanup, no exception handling) once the HTTP layer has read half of the
# shard's bytes from the request body.
KILLED_UPLOAD = textwrap.dedent("""
    import io, os, sys
    import s3fs
    from medshard.pipeline.build import BuildConfig, run_build

    real_call = s3fs.S3FileSystem._call_s3
    uploads = {"n": 0}

    class DyingBody(io.BytesIO):
        def read(self, n=-1):
            data = super().read(n)
            if self.tell() >= len(self.getbuffer()) // 2:
                print("killed", KEY, flush=True)
                os._exit(17)
            return data

    async def call_s3(self, method, *args, **kwargs):
        global KEY
        if method == "put_object" and kwargs.get("Key", "").endswith(".tar"):
            uploads["n"] += 1
            if uploads["n"] == 3:
                KEY = kwargs["Key"]
                kwargs["Body"] = DyingBody(kwargs["Body"])
        return await real_call(self, method, *args, **kwargs)

    s3fs.S3FileSystem._call_s3 = call_s3
    run_build(BuildConfig(sources=["ptb-xl", "chexpert"], data_root="s3://raw",
                          out=sys.argv[1], progress=False, shard_size=400_000,
                          formats=("webdataset", "parquet")))
""")


def test_shard_killed_mid_upload_leaves_no_object_and_rerun_completes(s3, reference,
                                                                      tmp_path):
    out = "s3://builds/killed"
    repo = Path(__file__).resolve().parent.parent
    child = subprocess.run([sys.executable, "-c", KILLED_UPLOAD, out], cwd=repo,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 17, child.stderr[-2000:]
    key = child.stdout.split("killed ", 1)[1].strip()  # the object key in bucket `builds`
    rel = key.removeprefix("killed/")  # the path under the build
    assert rel.startswith("webdataset/") and rel.endswith(".tar")
    assert not s3.exists(f"builds/{key}")
    # every object under a final name is complete: byte for byte what the build publishes
    present = {p.removeprefix("builds/killed/"): s3.cat_file(p)
               for p in s3.find("builds/killed")}
    published = {k: v for k, v in present.items() if not k.startswith(".medshard/")}
    assert published, "the kill came before any shard was uploaded"
    assert "manifest.json" not in published
    for name, data in published.items():
        assert data == reference[name], f"{name} is not the complete shard"
    assert rel not in published
    # the dead build's lock is taken over; the rerun ends with the same bytes
    again = run_build(config("s3://raw", out))
    assert again.shards_skipped > 0
    assert fetch(s3, out, tmp_path / "k") == reference


@pytest.mark.slow
def test_every_builtin_source_builds_the_same_bytes_from_object_storage(s3, tmp_path):
    """The source contract holds on a remote root without a source edit: each built-in
    source's fixture, uploaded, builds to the bytes of its local build (quarantine lines,
    whose messages name the raw files, included)."""
    from medshard.sources.registry import BUILTIN_SOURCES
    from medshard.testing.kit import write_fixtures

    slugs = sorted(BUILTIN_SOURCES)
    raw = tmp_path / "raw"
    write_fixtures(slugs, raw)
    s3.mkdir("everything")
    s3.put(f"{raw}/", "everything/raw/", recursive=True)

    def build(data_root, out):
        run_build(BuildConfig(sources=slugs, data_root=data_root, out=out, progress=False,
                              formats=("webdataset", "parquet")))

    build(raw, tmp_path / "local")
    build("s3://everything/raw", "s3://everything/build")
    local = output_files(tmp_path / "local")
    remote = fetch(s3, "s3://everything/build", tmp_path / "fetched")
    assert sorted(remote) == sorted(local)
    assert [k for k in local if remote[k] != local[k]] == []


def test_a_raw_object_changed_in_place_rebuilds_its_shard(s3, demo_raw, tmp_path):
    s3.mkdir("raw2")  # a copy of the raw files this test may change
    s3.put(f"{demo_raw}/", "raw2/", recursive=True)
    out = "s3://builds/changed"
    run_build(config("s3://raw2", out))
    images = sorted(p for p in s3.find("raw2/chexpert") if p.endswith(".jpg"))
    s3.pipe_file(images[0], s3.cat_file(images[1]))  # same name, other content
    again = run_build(config("s3://raw2", out))
    changed = {f for files in again.raw_changed.values() for f in files}
    assert changed == {images[0].removeprefix("raw2/chexpert/")}
    assert again.shards_written == len(again.raw_changed) >= 1
