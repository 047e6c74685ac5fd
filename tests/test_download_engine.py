"""Single-file transfers against a loopback server that misbehaves on purpose."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
import requests

from medshard.acquire.download.engine import (
    AccessDenied,
    Cancelled,
    ChecksumMismatch,
    DownloadError,
    RetryPolicy,
    Transfer,
    fetch_all,
    fetch_file,
    retry_after_seconds,
)
from tests.http_fixtures import FakeServer

DATA = os.urandom(200_000)
SHA = hashlib.sha256(DATA).hexdigest()


class Sleeps(list):
    """Records the waits the engine asks for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def server():
    with FakeServer() as s:
        s.files["/data/file.bin"] = DATA
        yield s


@pytest.fixture
def policy():
    return RetryPolicy(retries=3, backoff_s=0.01, sleep=Sleeps(), timeout=(5, 10))


def _t(server, **kw) -> Transfer:
    return Transfer(path="sub/file.bin", url=server.url + "/data/file.bin", **kw)


def test_plain_fetch_verifies_and_lands_under_final_name(server, policy, tmp_path):
    r = fetch_file(requests.Session(), _t(server, sha256=SHA, size=len(DATA)), tmp_path, policy)
    assert (tmp_path / "sub/file.bin").read_bytes() == DATA
    assert r.sha256 == SHA and r.size == len(DATA) and r.downloaded == len(DATA)
    assert not list(tmp_path.rglob("*.part"))


def test_dropped_connection_resumes_from_the_exact_byte(server, policy, tmp_path):
    server.script("/data/file.bin", ("drop", 65_536))
    r = fetch_file(requests.Session(), _t(server, sha256=SHA, size=len(DATA)), tmp_path, policy)
    assert (tmp_path / "sub/file.bin").read_bytes() == DATA
    seen = server.seen("/data/file.bin")
    assert len(seen) == 2
    assert "Range" not in seen[0].headers
    assert seen[1].headers["Range"] == "bytes=65536-"
    assert r.retries == 1


def test_drop_without_declared_size_still_resumes(server, policy, tmp_path):
    server.script("/data/file.bin", ("drop", 1000))
    fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)
    assert (tmp_path / "sub/file.bin").read_bytes() == DATA
    assert server.seen("/data/file.bin")[1].headers["Range"] == "bytes=1000-"


def test_partial_file_from_an_earlier_run_is_resumed(server, policy, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/file.bin.part").write_bytes(DATA[:12_345])
    r = fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)
    assert (tmp_path / "sub/file.bin").read_bytes() == DATA
    assert server.seen("/data/file.bin")[0].headers["Range"] == "bytes=12345-"
    assert r.resumed_from == 12_345 and r.downloaded == len(DATA) - 12_345


def test_server_ignoring_range_restarts_cleanly(server, policy, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/file.bin.part").write_bytes(DATA[:5000])
    server.script("/data/file.bin", "ignore-range")
    fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)
    assert (tmp_path / "sub/file.bin").read_bytes() == DATA


def test_partial_answer_from_the_wrong_offset_restarts_the_file(server, policy, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/file.bin.part").write_bytes(DATA[:5000])
    server.script("/data/file.bin", "wrong-range")
    fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)
    assert (tmp_path / "sub/file.bin").read_bytes() == DATA
    assert "Range" not in server.seen("/data/file.bin")[1].headers


def test_complete_part_file_is_verified_not_refetched(server, policy, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/file.bin.part").write_bytes(DATA)
    r = fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)
    assert r.downloaded == 0 and (tmp_path / "sub/file.bin").read_bytes() == DATA
    assert [s.headers["Range"] for s in server.seen("/data/file.bin")] == [f"bytes={len(DATA)}-"]


def test_429_honours_retry_after(server, policy, tmp_path):
    server.script("/data/file.bin", ("429", 7))
    r = fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)
    assert policy.sleep == [7.0]
    assert r.retries == 1 and (tmp_path / "sub/file.bin").read_bytes() == DATA


def test_retry_after_longer_than_allowed_stops_with_advice(server, tmp_path):
    server.script("/data/file.bin", ("429", 100_000))
    policy = RetryPolicy(retries=3, sleep=Sleeps(), max_retry_after_s=60)
    with pytest.raises(DownloadError, match="asks to wait 100000s.*rerun later"):
        fetch_file(requests.Session(), _t(server), tmp_path, policy)


def test_5xx_retried_with_growing_backoff(server, policy, tmp_path):
    server.script("/data/file.bin", "503", "500")
    fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)
    assert len(policy.sleep) == 2
    # jitter keeps each wait within [base/2, base]; the base doubles
    assert 0.005 <= policy.sleep[0] <= 0.01 and 0.01 <= policy.sleep[1] <= 0.02


def test_retries_exhausted_names_file_and_keeps_nothing_final(server, policy, tmp_path):
    server.script("/data/file.bin", *["503"] * 10)
    with pytest.raises(DownloadError, match=r"sub/file.bin: gave up after 3 retries \(HTTP 503\)"):
        fetch_file(requests.Session(), _t(server), tmp_path, policy)
    assert not (tmp_path / "sub/file.bin").exists()


def test_checksum_mismatch_retried_once_then_succeeds(server, policy, tmp_path):
    server.script("/data/file.bin", "corrupt")
    fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)
    assert (tmp_path / "sub/file.bin").read_bytes() == DATA
    assert len(server.seen("/data/file.bin")) == 2
    assert "Range" not in server.seen("/data/file.bin")[1].headers  # from scratch


def test_checksum_mismatch_twice_fails_naming_file_and_leaves_no_corrupt_file(
        server, policy, tmp_path):
    server.script("/data/file.bin", "corrupt", "corrupt")
    with pytest.raises(ChecksumMismatch) as e:
        fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)
    assert str(e.value).startswith("sub/file.bin: sha256")
    assert "twice" in str(e.value)
    assert not (tmp_path / "sub/file.bin").exists()
    assert not (tmp_path / "sub/file.bin.part").exists()


def test_wrong_md5_also_caught(server, policy, tmp_path):
    with pytest.raises(ChecksumMismatch, match="md5"):
        fetch_file(requests.Session(), _t(server, md5="0" * 32), tmp_path, policy)
    assert not (tmp_path / "sub/file.bin").exists()


def test_corrupt_file_under_final_name_is_replaced(server, policy, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/file.bin").write_bytes(b"garbage")
    r = fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)
    assert not r.skipped and (tmp_path / "sub/file.bin").read_bytes() == DATA


def test_good_existing_file_is_not_fetched_again(server, policy, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/file.bin").write_bytes(DATA)
    r = fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)
    assert r.skipped and server.seen("/data/file.bin") == []


def test_403_not_retried_and_explained(server, policy, tmp_path):
    server.script("/data/file.bin", "403")
    with pytest.raises(AccessDenied, match="sub/file.bin: go get access at X"):
        fetch_file(requests.Session(), _t(server), tmp_path, policy,
                   explain=lambda status, t: f"go get access at X (HTTP {status})")
    assert len(server.seen("/data/file.bin")) == 1 and policy.sleep == []


def test_404_default_message(server, policy, tmp_path):
    t = Transfer(path="gone.bin", url=server.url + "/data/gone.bin")
    with pytest.raises(AccessDenied, match="gone.bin: not found"):
        fetch_file(requests.Session(), t, tmp_path, policy)


def test_parallel_transfers_are_bounded_and_one_failure_does_not_stop_the_rest(
        server, policy, tmp_path):
    for i in range(8):
        server.files[f"/data/f{i}"] = DATA[i * 100:(i + 1) * 100]
    server.delay_s = 0.05
    server.script("/data/f3", "404")
    transfers = [Transfer(path=f"f{i}", url=f"{server.url}/data/f{i}") for i in range(8)]
    results, errors = fetch_all(requests.Session(), transfers, tmp_path, jobs=2, policy=policy)
    assert server.max_active <= 2
    assert sorted(r.transfer.path for r in results) == [f"f{i}" for i in range(8) if i != 3]
    assert len(errors) == 1 and str(errors[0]).startswith("f3:")


def test_retry_after_http_date():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_interrupt_stops_at_next_chunk_and_keeps_no_final_file(server, policy, tmp_path):
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy, stop=stop)
    assert not (tmp_path / "sub/file.bin").exists()
    fetch_file(requests.Session(), _t(server, sha256=SHA), tmp_path, policy)  # next run completes
    assert (tmp_path / "sub/file.bin").read_bytes() == DATA
