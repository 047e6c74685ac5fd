"""RemotePath answers the pathlib calls sources make the way pathlib does on the same tree,
and keeps reads inside the root."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from medshard.formats.confine import OutsideRoot, resolve_in_root
from medshard.formats.remote import RemotePath, open_root, staging_area

TREE = {
    "index.csv": b"id,file\n1,a/x.dat\n",
    "a/x.dat": b"\x00" * 10,
    "a/x.hea": b"x 1 500 10\n",
    "a/b/y.dat": b"\x01" * 7,
    "a/b/z.txt": b"text",
    "c.dat": b"",
}


@pytest.fixture
def trees(tmp_path):
    """The same files on the local disk and on fsspec's in-memory store."""
    fs = fsspec.filesystem("memory")
    base = f"/{uuid.uuid4().hex}"
    for rel, data in TREE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
        fs.pipe_file(f"{base}/{rel}", data)
    yield tmp_path, RemotePath(f"memory://{base}")
    fs.rm(base, recursive=True)


def _rel(paths, root) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in paths)


@pytest.mark.parametrize("pattern", ["*.dat", "*/*.dat", "**/*.dat", "a/*", "*", "a/b/*.txt"])
def test_glob_matches_pathlib(trees, pattern):
    local, remote = trees
    assert _rel(remote.glob(pattern), remote) == _rel(local.glob(pattern), local)


@pytest.mark.parametrize("pattern", ["*.dat", "*.txt", "x.*", "*"])
def test_rglob_matches_pathlib(trees, pattern):
    local, remote = trees
    assert _rel(remote.rglob(pattern), remote) == _rel(local.rglob(pattern), local)


def test_queries_match_pathlib(trees):
    local, remote = trees
    for rel in [*TREE, "a", "a/b", "missing", "a/missing.dat"]:
        lp, rp = local / rel, remote / rel
        assert (rp.exists(), rp.is_file(), rp.is_dir()) == (lp.exists(), lp.is_file(),
                                                            lp.is_dir()), rel
        assert (rp.name, rp.stem, rp.suffix) == (lp.name, lp.stem, lp.suffix)
    for rel in TREE:
        assert (remote / rel).stat().st_size == (local / rel).stat().st_size
        assert (remote / rel).read_bytes() == (local / rel).read_bytes()
    assert (remote / "index.csv").read_text() == (local / "index.csv").read_text()
    with pytest.raises(FileNotFoundError):
        (remote / "missing").stat()
    assert _rel(remote.joinpath("a").iterdir(), remote) == _rel(
        (local / "a").iterdir(), local)


def test_reads_are_staged_per_record_and_confined(trees):
    _, remote = trees
    with pytest.raises(RuntimeError, match="staging area"):
        resolve_in_root(remote, "a/x.dat")
    with staging_area(["a/x.hea", "a/x.dat"]) as area:
        hea = resolve_in_root(remote, "a/x.hea")
        assert hea == area / "a/x.hea" and hea.read_bytes() == TREE["a/x.hea"]
        # the record's other file came with it (a WFDB header's signal file)
        assert (area / "a/x.dat").read_bytes() == TREE["a/x.dat"]
        # a reader resolving the sibling by its local path gets the same copy
        assert resolve_in_root(remote, area / "a/x.dat") == area / "a/x.dat"
        for bad in ("../outside.dat", "/etc/passwd", "a/../../x"):
            with pytest.raises(OutsideRoot):
                resolve_in_root(remote, bad)
        # a missing file: a path that does not exist (the caller's open says so), as locally
        missing = resolve_in_root(remote, "a/missing.dat")
        assert missing == area / "a/missing.dat" and not missing.exists()
        with pytest.raises(FileNotFoundError):
            open(missing, "rb")
    assert not area.exists()  # deleted with the record


def test_a_listing_keeps_only_its_last_staged_files(trees, monkeypatch):
    from medshard.formats import remote as remote_module

    monkeypatch.setattr(remote_module, "LISTING_KEEP", 2)
    _, remote = trees
    with staging_area() as area:
        first = resolve_in_root(remote, "index.csv")
        for rel in ("a/x.dat", "a/x.hea", "a/b/y.dat"):
            assert resolve_in_root(remote, rel).exists()
        assert not first.exists()  # evicted; asked again, it is fetched again
        assert resolve_in_root(remote, "index.csv").read_bytes() == TREE["index.csv"]
        assert len([p for p in area.rglob("*") if p.is_file()]) == 2


def test_open_root_tells_local_from_remote(tmp_path):
    assert open_root(tmp_path) == tmp_path
    assert open_root(f"file://{tmp_path}") == tmp_path
    assert isinstance(open_root("memory://bucket/raw"), RemotePath)
    root = open_root("memory://bucket/raw/")
    assert (root / "ptb-xl").relative_to(root).as_posix() == "ptb-xl"
    assert str(root / "ptb-xl").startswith("memory://") and str(root).endswith("bucket/raw")


def test_file_urls_build_like_paths(demo_raw, tmp_path):
    from medshard.pipeline.build import BuildConfig, run_build
    from tests.helpers import output_files

    def build(raw, out) -> dict[str, bytes]:
        run_build(BuildConfig(sources=["ptb-xl"], data_root=raw, out=out, progress=False))
        return output_files(Path(str(out).removeprefix("file://")))

    assert build(f"file://{demo_raw}", f"file://{tmp_path / 'u'}") == build(demo_raw,
                                                                          tmp_path / "p")


def test_existence_and_size_checks_list_each_folder_once(trees, monkeypatch):
    from medshard.formats.remote import clear_listing_cache

    _, remote = trees
    calls = {"ls": 0, "info": 0}
    fs = remote.fs
    real_ls, real_info = fs.ls, fs.info

    def ls(path, detail=True, **kw):
        calls["ls"] += 1
        return real_ls(path, detail=detail, **kw)

    def info(path, **kw):
        calls["info"] += 1
        return real_info(path, **kw)

    monkeypatch.setattr(fs, "ls", ls)
    monkeypatch.setattr(fs, "info", info)
    clear_listing_cache()
    sizes = [(remote / rel).stat().st_size for rel in ("a/x.dat", "a/x.hea", "a/missing")
             if (remote / rel).is_file()]
    assert sizes == [10, 11] and not (remote / "a/missing").exists()
    assert calls == {"ls": 1, "info": 0}
    (remote / "a/b/y.dat").stat()
    assert calls["ls"] == 2
    # a file written after the listing is seen once the cache is cleared (a new build)
    fs.pipe_file(f"{remote.fs_path}/a/new.dat", b"1")
    assert not (remote / "a/new.dat").exists()
    clear_listing_cache()
    assert (remote / "a/new.dat").stat().st_size == 1
