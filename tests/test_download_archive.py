"""Safe extraction: traversal, absolute paths, links and device files are refused, whole."""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import zipfile

import pytest

from medshard.acquire.download.archive import UnsafeArchive, extract_archive, safe_member_path
from tests.http_fixtures import tar_bytes, zip_bytes


def _write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _only_target_written(tmp_path, target):
    outside = {p for p in tmp_path.rglob("*") if target not in p.parents and p != target}
    return {p.name for p in outside}


@pytest.mark.parametrize("evil", ["../evil.txt", "a/../../evil.txt", "/tmp/abs-evil.txt",
                                  "..\\evil.txt", "C:/evil.txt"])
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_escaping_members_refuse_the_whole_archive(tmp_path, kind, evil):
    members = {"ok/first.txt": b"fine", evil: b"pwned"}
    data = zip_bytes(members) if kind == "zip" else tar_bytes(members)
    archive = _write(tmp_path, f"a.{'zip' if kind == 'zip' else 'tar.gz'}", data)
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchive, match="absolute|outside"):
        extract_archive(archive, target)
    assert not any(target.rglob("*")), "nothing is written when one member is unsafe"
    assert _only_target_written(tmp_path, target) == {archive.name}


def _tar_with(tmp_path, info: tarfile.TarInfo):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ok = tarfile.TarInfo("ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        tf.addfile(info)
    return _write(tmp_path, "special.tar", buf.getvalue())


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                                  tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_tar_links_and_device_files_refused(tmp_path, kind):
    info = tarfile.TarInfo("special")
    info.type = kind
    info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    archive = _tar_with(tmp_path, info)
    with pytest.raises(UnsafeArchive, match="link|device"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "ok.txt").exists()


def test_zip_symlink_member_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        link = zipfile.ZipInfo("link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(UnsafeArchive, match="symlink"):
        extract_archive(_write(tmp_path, "l.zip", buf.getvalue()), tmp_path / "out")


def test_symlinked_folder_inside_target_cannot_redirect_writes(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (target / "sub").symlink_to(tmp_path / "elsewhere")
    archive = _write(tmp_path, "a.zip", zip_bytes({"sub/x.txt": b"x"}))
    with pytest.raises(UnsafeArchive, match="outside"):
        extract_archive(archive, target)
    assert not (tmp_path / "elsewhere" / "x.txt").exists()


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_safe_archive_extracts_with_hashes_and_strip(tmp_path, kind):
    members = {"top/a.csv": b"a,b\n1,2\n", "top/dir/b.bin": bytes(range(256)) * 10}
    data = zip_bytes(members) if kind == "zip" else tar_bytes(members)
    archive = _write(tmp_path, "x.zip" if kind == "zip" else "x.tgz", data)
    got = extract_archive(archive, tmp_path / "out", strip_components=1)
    assert {g.path for g in got} == {"a.csv", "dir/b.bin"}
    for g in got:
        body = members[f"top/{g.path}"]
        assert (tmp_path / "out" / g.path).read_bytes() == body
        assert g.sha256 == hashlib.sha256(body).hexdigest() and g.size == len(body)
    assert not list((tmp_path / "out").rglob("*.part"))


def test_member_path_cleaning():
    assert safe_member_path("./a//b/./c.txt") == "a/b/c.txt"
    assert safe_member_path("top/", 1) is None
    with pytest.raises(UnsafeArchive):
        safe_member_path("a\x00b")
