"""Safe archive extraction: nothing lands outside the target directory.

Every member is checked before anything is written: absolute paths, drive
letters, `..` components (zip-slip, tar traversal), symlinks, hard links and
device or FIFO members are refused, and the whole archive with them. Regular
files are streamed to a temporary name, hashed on the way, and renamed when
complete, so an interrupted extraction never leaves a truncated file under its
final name.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CHUNK = 1 << 20


class UnsafeArchive(Exception):
    """An archive holds a member that would escape the target or is not a plain file/folder."""


@dataclass(frozen=True)
class ExtractedFile:
    path: str  # relative to the target, '/'-separated
    size: int
    sha256: str
    member: str  # name inside the archive


def is_archive(name: str) -> bool:
    return name.endswith((".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))


def safe_member_path(name: str, strip_components: int = 0) -> str | None:
    """The cleaned relative path of an archive member, or None if stripped away entirely.

    Raises UnsafeArchive for absolute paths, drive letters and `..` components.
    """
    if "\x00" in name:
        raise UnsafeArchive(f"member {name!r} has a NUL byte in its name")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        raise UnsafeArchive(f"member {name!r} has an absolute path")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"member {name!r} points outside the target ('..')")
    parts = parts[strip_components:]
    return "/".join(parts) if parts else None


def _target(root: Path, rel: str) -> Path:
    dest = root.joinpath(*rel.split("/"))
    # Belt and braces: a symlinked folder already inside root must not redirect the write.
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(dest.parent)]) != real_root:
        raise UnsafeArchive(f"member {rel!r} would be written outside {root}")
    return dest


def _stream_to(src: IO[bytes], dest: Path) -> tuple[int, str]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    h, size = hashlib.sha256(), 0
    with open(tmp, "wb") as out:
        while chunk := src.read(CHUNK):
            out.write(chunk)
            h.update(chunk)
            size += len(chunk)
    os.replace(tmp, dest)
    return size, h.hexdigest()


def _zip_members(zf: zipfile.ZipFile, strip: int) -> Iterator[tuple[zipfile.ZipInfo, str | None]]:
    for info in zf.infolist():
        rel = safe_member_path(info.filename, strip)
        # Unix file-type bits, when the writer set them (many tools set only permissions).
        ftype = stat.S_IFMT(info.external_attr >> 16)
        if ftype and ftype not in (stat.S_IFREG, stat.S_IFDIR):
            kind = "a symlink" if ftype == stat.S_IFLNK else "not a regular file"
            raise UnsafeArchive(f"member {info.filename!r} is {kind}; refusing the archive")
        yield info, rel


def _tar_members(tf: tarfile.TarFile, strip: int) -> Iterator[tuple[tarfile.TarInfo, str | None]]:
    for m in tf.getmembers():
        rel = safe_member_path(m.name, strip)
        if m.issym() or m.islnk():
            raise UnsafeArchive(f"member {m.name!r} is a link; refusing the archive")
        if not (m.isfile() or m.isdir()):
            raise UnsafeArchive(f"member {m.name!r} is a device or special file; refusing the archive")
        yield m, rel


@contextmanager
def _open_checked(archive: Path, strip: int) -> Iterator[list[tuple[object, str | None, object]]]:
    """Open the archive and check every member; yields (member, rel, opener) triples."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            checked = list(_zip_members(zf, strip))
            yield [(i, rel, None if i.is_dir() else (lambda i=i: zf.open(i))) for i, rel in checked]
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            checked = list(_tar_members(tf, strip))
            yield [(m, rel, None if m.isdir() else (lambda m=m: tf.extractfile(m))) for m, rel in checked]
    else:
        raise UnsafeArchive(f"{archive.name} is neither a zip nor a tar archive")


def extract_archive(archive: Path, target: Path, strip_components: int = 0) -> list[ExtractedFile]:
    """Unpack `archive` (zip or tar, any compression tarfile reads) into `target`.

    Checks every member first and refuses the whole archive (writing nothing) if
    one is unsafe. Returns every regular file written with its size and sha256.
    """
    target.mkdir(parents=True, exist_ok=True)
    written: dict[str, ExtractedFile] = {}
    with _open_checked(archive, strip_components) as members:
        for member, rel, opener in members:
            if rel is None:
                continue
            dest = _target(target, rel)
            name = getattr(member, "filename", None) or getattr(member, "name", "")
            if opener is None:
                dest.mkdir(parents=True, exist_ok=True)
                continue
            with opener() as src:
                size, digest = _stream_to(src, dest)
            written[rel] = ExtractedFile(rel, size, digest, name)  # a repeated name: last one wins
    return list(written.values())
