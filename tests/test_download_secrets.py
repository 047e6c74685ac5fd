"""Credentials never leak: not into files, receipts, ledger, logs, output or the process list.

The CLI runs as a subprocess against a loopback fake of PhysioNet that requires
basic auth; while the download is in flight the fake reads the client's
/proc/<pid>/cmdline. Then every file under the test's directory (data root,
receipts, MEDSHARD_HOME with the ledger, HOME) and everything printed is searched
for the password, in clear and inside a base64 basic-auth header.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.http_fixtures import FakeServer, Reply

SECRET = "s3cr3t-PhysioNet-pw-4242"
USER = "alice-medshard"
FILES = {"ptbxl_database.csv": b"ecg_id,patient_id\n1,7\n", "scp_statements.csv": b",description\n",
         "records100/00000/00001_lr.dat": os.urandom(100_000),
         "records100/00000/00001_lr.hea": b"00001_lr 12 100 1000\n"}
PREFIX = "/files/ptb-xl/1.0.3/"


def _needles(secret: str) -> list[bytes]:
    basic = base64.b64encode(f"{USER}:{secret}".encode())
    return [secret.encode(), basic, basic.decode().encode("utf-16-le")]


def _leaks(root: Path, texts: list[bytes], secret: str) -> list[str]:
    found = []
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            found += [f"{p}: {n!r}" for n in _needles(secret) if n in data]
    for i, t in enumerate(texts):
        found += [f"text #{i}: {n!r}" for n in _needles(secret) if n in t]
    return found


def _cli(args: list[str], env: dict[str, str],
         watched_by: FakeServer | None = None) -> subprocess.CompletedProcess:
    """Run the CLI; `watched_by` gets the pid so it can read the client's /proc cmdline."""
    proc = subprocess.Popen([sys.executable, "-m", "medshard.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if watched_by is not None:
        watched_by.client_pid = proc.pid
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def fake_physionet():
    with FakeServer() as server:
        server.basic_auth = (USER, SECRET)
        server.client_pid = None
        server.cmdlines = []
        for k, v in FILES.items():
            server.files[PREFIX + k] = v
        sums = "".join(f"{hashlib.sha256(v).hexdigest()}  {k}\n" for k, v in FILES.items()).encode()

        def checksums(seen, query):
            # The client is blocked on this answer: its process is alive, read its argv now.
            if server.client_pid:
                server.cmdlines.append(Path(f"/proc/{server.client_pid}/cmdline").read_bytes())
            return Reply(200, sums)

        server.routes[PREFIX + "SHA256SUMS.txt"] = checksums
        yield server


def _env(tmp_path: Path, server_url: str, password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PHYSIONET_", "KAGGLE_", "MEDSHARD_")) and k != "NETRC"}
    env.update(HOME=str(tmp_path / "home"), MEDSHARD_HOME=str(tmp_path / "medshard-home"),
               MEDSHARD_PHYSIONET_URL=server_url, PHYSIONET_USERNAME=USER,
               PHYSIONET_PASSWORD=password, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                         env.get("PYTHONPATH", "")])
    return env


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_credentials_leak_nowhere(tmp_path, fake_physionet):
    server = fake_physionet
    env = _env(tmp_path, server.url, SECRET)
    outputs: list[bytes] = []

    consent = _cli(["consent", "ptb-xl", "--accept"], env)
    assert consent.returncode == 0, consent.stderr
    outputs += [consent.stdout, consent.stderr]

    # Misbehaviour on the way makes the retry and resume paths log too.
    server.script(PREFIX + "records100/00000/00001_lr.dat", ("drop", 30_000), "503")
    root = tmp_path / "data"
    ok = _cli(["-v", "download", "ptb-xl", "--data-root", str(root), "--jobs", "2"], env,
              watched_by=server)
    outputs += [ok.stdout, ok.stderr]
    assert ok.returncode == 0, ok.stderr.decode()
    assert (root / "ptb-xl/records100/00000/00001_lr.dat").read_bytes() == FILES[
        "records100/00000/00001_lr.dat"]
    assert b"ptb-xl: 5 files" in ok.stdout
    assert b"retrying records100/00000/00001_lr.dat" in ok.stderr
    # the fake saw the credentials on the wire (so they really were in use) ...
    assert any(r.headers.get("Authorization") for r in server.requests)
    # ... and the process list never showed them
    assert server.cmdlines, "the fake did not get to read the client's command line"
    for cmdline in server.cmdlines:
        assert b"download\x00ptb-xl" in cmdline
    outputs += server.cmdlines + [" ".join(ok.args).encode()]

    # A rejected password is explained without echoing it.
    wrong = "wr0ng-pw-" + SECRET[::-1]
    bad = _cli(["download", "ptb-xl", "--data-root", str(tmp_path / "data2")],
               _env(tmp_path, server.url, wrong))
    assert bad.returncode != 0
    assert b"PHYSIONET_USERNAME/PHYSIONET_PASSWORD" in bad.stderr
    outputs += [bad.stdout, bad.stderr]

    assert _leaks(tmp_path, outputs, SECRET) == []
    assert _leaks(tmp_path, outputs, wrong) == []
    ledger = (tmp_path / "medshard-home" / "consent.jsonl").read_text()
    assert "ptb-xl" in ledger
