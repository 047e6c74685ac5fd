"""Safe archive extraction: nothing lands outside the target directory.

Every member is checked before anything is written: absolute paths, drive
letters, `..` components (zip-slip, tar traversal), symlinks, hard links and
device or FIFO members are refused, and the whole archive with them. Regular
files are streamed to a temporary name, hashed on the way, and renamed when
complete, so an interrupted extraction never leaves a truncated file under its
final name.

Size limits (zip bombs): before anything is written, the members' declared sizes must
fit the free space of the target, and the archive's total expansion (declared
uncompressed bytes / archive bytes) must not pass MAX_TOTAL_RATIO (200); a zip member's
own ratio must not pass MAX_MEMBER_RATIO (1000). While writing, the bytes actually
written are counted and may not pass what each member declared. Real medical archives
(DICOM, NIfTI, EDF, CSV, JPEG) expand 1-50x; raise the limits with the environment
variables MEDSHARD_MAX_EXTRACT_RATIO and MEDSHARD_MAX_MEMBER_RATIO (or the arguments of
`extract_archive`) for an archive that legitimately expands more. On any failure the
files this extraction wrote (and its `.part` file) are removed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CHUNK = 1 << 20
MAX_TOTAL_RATIO = 200.0
MAX_MEMBER_RATIO = 1000.0
_SMALL_MEMBER = 1 << 20  # members this small are never refused for their ratio


class UnsafeArchive(Exception):
    """An archive holds a member that would escape the target or is not a plain file/folder."""


class ArchiveTooLarge(UnsafeArchive):
    """An archive would expand past the free space or the documented ratio limits."""


def _limit(env: str, default: float) -> float:
    try:
        return float(os.environ.get(env) or default)
    except ValueError:
        return default


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


def _stream_to(src: IO[bytes], dest: Path, limit: int, name: str) -> tuple[int, str]:
    """Copy `src` to `dest` via `dest.part`; ArchiveTooLarge past `limit` bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    h, size = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            while chunk := src.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ArchiveTooLarge(f"member {name!r} expands past the {limit} bytes it "
                                          "declares")
                out.write(chunk)
                h.update(chunk)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return size, h.hexdigest()


def _declared(member: object) -> tuple[int, int | None]:
    """(declared uncompressed size, compressed size or None) of a zip or tar member."""
    if isinstance(member, zipfile.ZipInfo):
        return member.file_size, member.compress_size
    return int(getattr(member, "size", 0)), None


def check_expansion(archive: Path, target: Path, members: list[tuple[object, str | None, object]],
                    max_ratio: float, max_member_ratio: float) -> None:
    """ArchiveTooLarge when the declared sizes pass the free space or the ratio limits."""
    total = 0
    for member, rel, opener in members:
        if opener is None or rel is None:
            continue
        size, packed = _declared(member)
        total += size
        if packed is not None and size > _SMALL_MEMBER and size > max_member_ratio * max(packed, 1):
            raise ArchiveTooLarge(
                f"member {rel!r} expands {size / max(packed, 1):.0f}x ({packed} -> {size} bytes), "
                f"past the limit of {max_member_ratio:g}x (MEDSHARD_MAX_MEMBER_RATIO)")
    packed_total = max(archive.stat().st_size, 1)
    if total > _SMALL_MEMBER and total > max_ratio * packed_total:
        raise ArchiveTooLarge(
            f"{archive.name} expands {total / packed_total:.0f}x ({packed_total} -> {total} "
            f"bytes), past the limit of {max_ratio:g}x (MEDSHARD_MAX_EXTRACT_RATIO)")
    free = shutil.disk_usage(target).free
    if total > free:
        raise ArchiveTooLarge(f"{archive.name} needs {total} bytes unpacked, {free} are free in "
                              f"{target}; free space and run again")


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


def extract_archive(
    archive: Path, target: Path, strip_components: int = 0, *,
    max_ratio: float | None = None, max_member_ratio: float | None = None,
) -> list[ExtractedFile]:
    """Unpack `archive` (zip or tar, any compression tarfile reads) into `target`.

    Checks every member and the declared sizes first (see the module docstring for the
    limits) and refuses the whole archive, writing nothing, if one check fails; a
    failure while writing removes what this extraction wrote. Returns every regular
    file written with its size and sha256.
    """
    max_ratio = max_ratio or _limit("MEDSHARD_MAX_EXTRACT_RATIO", MAX_TOTAL_RATIO)
    max_member_ratio = max_member_ratio or _limit("MEDSHARD_MAX_MEMBER_RATIO", MAX_MEMBER_RATIO)
    target.mkdir(parents=True, exist_ok=True)
    written: dict[str, ExtractedFile] = {}
    try:
        with _open_checked(archive, strip_components) as members:
            check_expansion(archive, target, members, max_ratio, max_member_ratio)
            for member, rel, opener in members:
                if rel is None:
                    continue
                dest = _target(target, rel)
                name = getattr(member, "filename", None) or getattr(member, "name", "")
                if opener is None:
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                with opener() as src:
                    size, digest = _stream_to(src, dest, _declared(member)[0], name)
                written[rel] = ExtractedFile(rel, size, digest, name)  # repeated name: last wins
    except BaseException as exc:
        for f in written.values():
            target.joinpath(*f.path.split("/")).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ArchiveTooLarge(f"unpacking {archive.name} failed ({exc.strerror or exc}); "
                                  "free space and run again") from exc
        raise
    return list(written.values())
