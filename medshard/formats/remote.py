"""A raw tree on object storage (any fsspec URL) behind the `pathlib` calls sources make.

Sources take a root and read with `root / name`, `.is_file()`, `.glob()`, `.rglob()`,
`.stat().st_size`, `.relative_to(root)` and `Source.path(root, rel)`. For a local root
that is a `pathlib.Path`; for `s3://`, `gs://`, `az://`, ... it is a `RemotePath`, which
answers the same calls through the fsspec filesystem, so sources need no edit.

Format libraries (pydicom, wfdb, pyedflib, nibabel, OpenCV) want a local path, so
`Source.path` on a remote root returns a *staged* copy: the file is fetched into the
current staging area (`staging_area()`), together with every other file of the record
being read (a WFDB header needs its `.dat`, an `.mhd` its `.raw`), and the area is
deleted when the record is done. Disk use is bounded by one record per worker thread.
Containment holds as for local roots: `..` and absolute paths outside the root are
refused (object storage has no symlinks to follow).

Existence and size checks (`exists`, `is_file`, `stat`) read the listing of the file's
folder, one request per folder kept in a small cache, not one request per file: listing a
source of 2M files, where sources check each record's files, would otherwise cost millions
of round trips. `clear_listing_cache()` forgets it (each build and shard task starts so). Credentials come from the
environment or the filesystem's own configuration, never from medshard's options.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fnmatch
import hashlib
import os
import posixpath
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

# a root given as `file://...` or a plain path is local; anything else with `://` is remote
LOCAL_PROTOCOLS = ("file", "local")


def is_remote_url(location: str | os.PathLike[str]) -> bool:
    """True for `s3://...`, `gs://...`, `memory://...`; False for local paths and `file://`."""
    text = os.fspath(location) if not isinstance(location, RemotePath) else str(location)
    if isinstance(location, RemotePath):
        return True
    if "://" not in text:
        return False
    return text.split("://", 1)[0].lower() not in LOCAL_PROTOCOLS


def local_path_of(location: str | os.PathLike[str]) -> Path:
    """`file:///x/y` -> Path('/x/y'); a plain path unchanged."""
    text = os.fspath(location)
    for proto in LOCAL_PROTOCOLS:
        if text.lower().startswith(f"{proto}://"):
            return Path(text.split("://", 1)[1])
    return Path(text)


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a remote URL, with listings never cached
    (a driver polls what workers write)."""
    import fsspec

    protocol = url.split("://", 1)[0]
    kwargs = {"use_listings_cache": False} if protocol not in ("memory",) else {}
    fs, path = fsspec.core.url_to_fs(url, **kwargs)
    return fs, path.rstrip("/")


@dataclass(frozen=True)
class RemoteStat:
    """The fields of `os.stat_result` a source or the build reads, for an object."""

    st_size: int
    st_mtime_ns: int
    st_ino: int  # a number derived from the object's ETag / generation (0 if it has none)


def _mtime_ns(info: dict[str, Any]) -> int:
    for name in ("LastModified", "mtime", "updated", "last_modified", "created"):
        value = info.get(name)
        # whole seconds: a listing and a HEAD give the same time at different precisions
        if isinstance(value, datetime):
            return int(value.timestamp()) * 10**9
        if isinstance(value, (int, float)):
            return int(value) * 10**9
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                stamp = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
                return int(stamp) * 10**9
    return 0


_LISTINGS: OrderedDict[tuple[int, str], dict[str, dict[str, Any]]] = OrderedDict()
_LISTINGS_LOCK = threading.Lock()
LISTING_CACHE_FOLDERS = 256


def clear_listing_cache() -> None:
    """Forget the cached folder listings (raw files may have changed since)."""
    with _LISTINGS_LOCK:
        _LISTINGS.clear()


def _folder_listing(fs: Any, folder: str) -> dict[str, dict[str, Any]] | None:
    """name -> info of every entry of `folder` (one request, cached); None when the folder
    cannot be listed (no permission: the caller asks per file)."""
    key = (id(fs), folder)
    with _LISTINGS_LOCK:
        if key in _LISTINGS:
            _LISTINGS.move_to_end(key)
            return _LISTINGS[key]
    try:
        entries = fs.ls(folder, detail=True)
    except FileNotFoundError:
        entries = []
    except (PermissionError, NotImplementedError, OSError):
        return None
    listing = {posixpath.basename(e["name"].rstrip("/")): e for e in entries
               if e["name"].rstrip("/") != folder}
    with _LISTINGS_LOCK:
        _LISTINGS[key] = listing
        while len(_LISTINGS) > LISTING_CACHE_FOLDERS:
            _LISTINGS.popitem(last=False)
    return listing


def _etag_number(info: dict[str, Any]) -> int:
    tag = info.get("ETag") or info.get("etag") or info.get("generation") or info.get("md5Hash")
    if not tag:
        return 0
    return int(hashlib.sha256(str(tag).strip('"').encode()).hexdigest()[:15], 16)


class RemotePath:
    """A path on an fsspec filesystem with the subset of `pathlib.Path` sources use.

    It has no `__fspath__`: a source that calls the builtin `open(root / name)` instead of
    `open(self.path(root, name))` gets a TypeError (quarantined with its reason), never a
    silent read of a local file of the same name.
    """

    __slots__ = ("_url", "_fs", "_path", "_protocol")

    def __init__(self, url: str, _fs: Any = None, _path: str | None = None) -> None:
        self._protocol = url.split("://", 1)[0]
        if _fs is None:
            _fs, _path = filesystem(url)
        self._fs = _fs
        self._path = (_path or "").rstrip("/")
        self._url = f"{self._protocol}://{self._path}"

    # pickling: the filesystem is rebuilt from the URL on the worker (its own credentials)
    def __reduce__(self):
        return (RemotePath, (self._url,))

    @property
    def fs(self) -> Any:
        return self._fs

    @property
    def fs_path(self) -> str:
        """The path inside the filesystem (no protocol): `bucket/prefix/name`."""
        return self._path

    def _child(self, path: str) -> RemotePath:
        return RemotePath(f"{self._protocol}://{path}", self._fs, path)

    # -- pure path operations ------------------------------------------------------------
    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"RemotePath({self._url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)

    def __lt__(self, other: RemotePath) -> bool:
        return self._url < other._url

    def __truediv__(self, other: str | os.PathLike[str]) -> RemotePath:
        rel = PurePosixPath(os.fspath(other)).as_posix()
        if rel.startswith("/"):
            raise ValueError(f"cannot join absolute path {rel!r} to {self._url}")
        return self._child(posixpath.normpath(posixpath.join(self._path, rel)))

    def joinpath(self, *others: str) -> RemotePath:
        out = self
        for o in others:
            out = out / o
        return out

    @property
    def name(self) -> str:
        return PurePosixPath(self._path).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self._path).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self._path).suffix

    @property
    def suffixes(self) -> list[str]:
        return PurePosixPath(self._path).suffixes

    @property
    def parent(self) -> RemotePath:
        return self._child(posixpath.dirname(self._path))

    @property
    def parts(self) -> tuple[str, ...]:
        return PurePosixPath(self._path).parts

    def with_suffix(self, suffix: str) -> RemotePath:
        return self._child(PurePosixPath(self._path).with_suffix(suffix).as_posix())

    def with_name(self, name: str) -> RemotePath:
        return self._child(PurePosixPath(self._path).with_name(name).as_posix())

    def as_posix(self) -> str:
        return self._url

    def relative_to(self, other: RemotePath) -> PurePosixPath:
        return PurePosixPath(self._path).relative_to(PurePosixPath(other._path))

    def is_relative_to(self, other: RemotePath) -> bool:
        return PurePosixPath(self._path).is_relative_to(PurePosixPath(other._path))

    def resolve(self, strict: bool = False) -> RemotePath:
        return self

    def absolute(self) -> RemotePath:
        return self

    def is_absolute(self) -> bool:
        return True

    def is_symlink(self) -> bool:
        return False  # object stores have none

    # -- queries -------------------------------------------------------------------------
    def _info(self) -> dict[str, Any] | None:
        """This path's entry in its folder's (cached) listing; None when absent."""
        folder, name = posixpath.split(self._path)
        listing = _folder_listing(self._fs, folder) if folder and name else None
        if listing is not None:
            return listing.get(name)
        try:
            return self._fs.info(self._path)
        except FileNotFoundError:
            return None

    def exists(self) -> bool:
        return self._info() is not None

    def is_file(self) -> bool:
        info = self._info()
        return info is not None and info.get("type") == "file"

    def is_dir(self) -> bool:
        return bool(self._fs.isdir(self._path))

    def stat(self) -> RemoteStat:
        info = self._info()
        if info is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), self._url)
        return RemoteStat(int(info.get("size") or 0), _mtime_ns(info), _etag_number(info))

    def lstat(self) -> RemoteStat:
        return self.stat()  # no symlinks on object stores

    def iterdir(self) -> Iterator[RemotePath]:
        for entry in sorted(self._fs.ls(self._path, detail=False)):
            entry = entry.rstrip("/")
            if entry != self._path:
                yield self._child(entry)

    def _walk_files(self) -> list[str]:
        return sorted(p for p in self._fs.find(self._path, withdirs=True) if p != self._path)

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """pathlib's glob: `*`, `?`, `[...]` within a segment, `**` for any depth."""
        want = tuple(PurePosixPath(pattern).parts)
        for p in self._walk_files():
            if _glob_match(PurePosixPath(p).relative_to(self._path).parts, want):
                yield self._child(p)

    def rglob(self, pattern: str) -> Iterator[RemotePath]:
        yield from self.glob(f"**/{pattern}")

    # -- reading -------------------------------------------------------------------------
    def open(self, mode: str = "rb", encoding: str | None = None, newline: str | None = None,
             errors: str | None = None):
        if any(c in mode for c in "wax+"):
            raise PermissionError(f"raw roots are read-only: {self._url}")
        if "b" in mode:
            return self._fs.open(self._path, "rb")
        return self._fs.open(self._path, "rt", encoding=encoding or "utf-8", newline=newline,
                             errors=errors)

    def read_bytes(self) -> bytes:
        with self.open("rb") as f:
            return f.read()

    def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
        with self.open("rt", encoding=encoding, errors=errors) as f:
            return f.read()


def _glob_match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Segment-wise glob of a relative path, `**` matching zero or more segments."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_glob_match(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _glob_match(
        parts[1:], pattern[1:])


def open_root(location: str | os.PathLike[str]) -> Path | RemotePath:
    """A source root: a `RemotePath` for a remote URL, else a local `Path`."""
    if isinstance(location, RemotePath):
        return location
    if is_remote_url(location):
        return RemotePath(os.fspath(location))
    return local_path_of(location)


# -- staging: local copies of one record's files for format libraries -------------------

@dataclass
class _Area:
    directory: Path
    record_files: tuple[str, ...] = ()
    fetched_record: bool = False
    recent: list[Path] = field(default_factory=list)  # a listing's staged files, oldest first


# a listing (no record) keeps its last few staged files; older ones are deleted (and
# fetched again if asked for), so a listing that reads a header per record does not
# accumulate the whole dataset on the driver's disk
LISTING_KEEP = 16


_AREA: contextvars.ContextVar[_Area | None] = contextvars.ContextVar("medshard_stage",
                                                                     default=None)
STAGE_PREFIX = "medshard-stage-"


@contextlib.contextmanager
def staging_area(record_files: Sequence[str] = ()) -> Iterator[Path]:
    """A temporary folder for the local copies of one record's files (or of the index
    files a listing reads), deleted on exit. The first staged read fetches every file
    in `record_files` too (files that a reader opens as siblings)."""
    directory = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX))
    token = _AREA.set(_Area(directory, tuple(record_files)))
    try:
        yield directory
    finally:
        _AREA.reset(token)
        shutil.rmtree(directory, ignore_errors=True)


def current_staging_dir() -> Path | None:
    area = _AREA.get()
    return area.directory if area else None


def _fetch(root: RemotePath, rel: str, target: Path) -> bool:
    """Copy `root/rel` to `target`; False when there is no such file."""
    if target.exists():
        return True
    remote = (root / rel).fs_path
    if not (root / rel).is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part")
    try:
        root.fs.get_file(remote, str(part))
    except FileNotFoundError:
        part.unlink(missing_ok=True)
        return False
    part.replace(target)
    return True


def stage(root: RemotePath, rel: str) -> Path:
    """The local copy of `root/rel` in the current staging area (fetched once); a path that
    does not exist when `root/rel` does not."""
    area = _AREA.get()
    if area is None:
        raise RuntimeError(f"reading {root / rel} needs a staging area: run it inside "
                           "medshard.formats.remote.staging_area()")
    if not area.fetched_record:
        area.fetched_record = True
        for f in area.record_files:
            if f != rel:
                with contextlib.suppress(OSError):  # a missing sibling fails when opened
                    _fetch(root, f, area.directory / f)
    target = area.directory / rel
    # a missing file gives a path that does not exist, as a local root does: the
    # caller's open raises FileNotFoundError naming it
    if _fetch(root, rel, target) and not area.record_files:
        if target in area.recent:
            area.recent.remove(target)
        area.recent.append(target)
        while len(area.recent) > LISTING_KEEP:
            area.recent.pop(0).unlink(missing_ok=True)
    return target


def staged_relative(path: str | os.PathLike[str]) -> str | None:
    """`path` relative to the current staging area when it lies inside it, else None
    (a reader resolving a sibling of a staged file passes the staged path back)."""
    area = _AREA.get()
    p = Path(os.fspath(path))
    if area is None or not p.is_absolute():
        return None
    try:
        return p.relative_to(area.directory).as_posix()
    except ValueError:
        return None
