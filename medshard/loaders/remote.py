"""Getting shard bytes: local files or any fsspec URL, a size-bounded disk cache, sha256 checks.

A shard is fetched whole (the loader holds the shards being read, nothing more),
checked against the manifest's sha256 and size, and optionally kept in a local
cache directory whose total size stays under `cache_bytes` (least recently used
shards are evicted first). Cache files are named by their sha256, so two releases
sharing a shard share the cached copy, and a half-written file never has the name
of a finished one.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import fsspec

Buffer = bytes | mmap.mmap  # shard bytes: fetched, or mapped from a local file


# (url, sha256) of the shards hashed in this process (verify="once"); a DataLoader worker
# is a process of its own, so each worker hashes a shard the first time it reads it
VERIFIED_ONCE: set[tuple[str, str]] = set()


class ShardError(Exception):
    """A shard is missing, truncated or does not match its manifest checksum."""


@dataclass(frozen=True)
class ShardRef:
    """One shard as the loader sees it: where it is and what it must hash to."""

    path: str  # as in the manifest, relative to it (used in messages)
    url: str  # absolute path or fsspec URL
    format: str
    source: str
    split: str
    samples: int
    bytes: int
    sha256: str


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def local_path(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def stall_timeout_s() -> float:
    """Seconds an HTTP read may wait for the next bytes (MEDSHARD_HTTP_STALL_S, default 60)."""
    try:
        return float(os.environ.get("MEDSHARD_HTTP_STALL_S") or 60.0)
    except ValueError:
        return 60.0


def _http_timeout() -> object | None:
    """An aiohttp timeout for fsspec's HTTP client (which waits forever without one)."""
    try:
        import aiohttp
    except ImportError:  # fsspec then says itself that HTTP needs aiohttp
        return None
    stall = stall_timeout_s()
    return aiohttp.ClientTimeout(total=None, sock_connect=stall, sock_read=stall)


def read_url(url: str) -> bytes:
    """All bytes at a local path or fsspec URL; TimeoutError when HTTP stalls."""
    if is_local(url):
        with open(local_path(url), "rb") as f:
            return f.read()
    kwargs: dict = {}
    if url.startswith(("http://", "https://")):
        timeout = _http_timeout()
        if timeout is not None:
            kwargs["client_kwargs"] = {"timeout": timeout}
    with fsspec.open(url, "rb", **kwargs) as f:
        return f.read()


def map_file(path: str | os.PathLike[str]) -> Buffer:
    """A private copy-on-write memory map of a local file.

    No copy is made: pages come from the page cache, and tensors can view them
    (writable, as torch wants; a write would copy that page, never touch the file).
    """
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    _populate(mapped)
    return mapped


_MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22 if sys.platform == "linux" else None)


def _populate(mapped: mmap.mmap) -> None:
    """Map every page up front without copying (Linux >= 5.14): one call instead of a
    page fault per 4 kB on first touch; older kernels get a read-ahead hint instead."""
    if _MADV_POPULATE_READ is not None:
        try:
            mapped.madvise(_MADV_POPULATE_READ)
            return
        except OSError:
            pass
    if hasattr(mmap, "MADV_WILLNEED"):
        mapped.madvise(mmap.MADV_WILLNEED)


class ShardStore:
    """Fetches shards, verifying and caching them as configured.

    `cache_dir=None` streams every shard from its URL each time. Local shards are
    never copied into the cache. Every shard's size is checked against the manifest;
    its sha256 is checked for every shard fetched over the network (so every cache
    fill) with `verify="remote"` (the default), for every read with `verify=True`,
    never with `verify=False`; `verify="once"` also hashes each local shard the first
    time this process opens it (a full read of the file: see benchmarks/README.md).
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_bytes: int = 20 << 30,
        verify: bool | str = "remote",
    ) -> None:
        if verify not in (True, False, "remote", "once"):
            raise ValueError(f"verify={verify!r} is not True, False, 'remote' or 'once'")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.cache_bytes = cache_bytes
        self.verify = verify
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)

    def fetch(self, ref: ShardRef) -> Buffer:
        """The shard's bytes, checked against the manifest; ShardError names it otherwise.

        Local files (and cached copies) are memory-mapped, remote ones read whole.
        """
        cached = self._cache_file(ref)
        if cached is not None and cached.exists():
            try:
                data = map_file(cached)
                os.utime(cached)  # recency for LRU eviction
                self._check(ref, data, fetched=False)  # hashed when it was stored
                return data
            except (OSError, ShardError):
                cached.unlink(missing_ok=True)  # a bad cached copy is refetched
        try:
            local = is_local(ref.url)
            data = map_file(local_path(ref.url)) if local else read_url(ref.url)
        except FileNotFoundError as e:
            raise ShardError(
                f"shard {ref.path} is missing ({ref.url}); check the release URL or rebuild"
            ) from e
        except TimeoutError as e:
            raise ShardError(
                f"shard {ref.path}: no data from {ref.url} for {stall_timeout_s():g} s (stalled); "
                "check the server or network and retry (MEDSHARD_HTTP_STALL_S sets the wait)"
            ) from e
        except OSError as e:
            raise ShardError(f"shard {ref.path} could not be read from {ref.url}: "
                             f"{str(e) or type(e).__name__}") from e
        self._check(ref, data, fetched=not local)
        if cached is not None:
            self._store(cached, data)
        return data

    def _check(self, ref: ShardRef, data: Buffer, fetched: bool) -> None:
        if len(data) != ref.bytes:
            raise ShardError(
                f"shard {ref.path} has {len(data)} bytes, manifest says {ref.bytes}: "
                "truncated or replaced; re-download or rebuild it"
            )
        once = (ref.url, ref.sha256)
        hash_it = (self.verify is True or (self.verify in ("remote", "once") and fetched)
                   or (self.verify == "once" and once not in VERIFIED_ONCE))
        if hash_it and hashlib.sha256(data).hexdigest() != ref.sha256:
            raise ShardError(
                f"shard {ref.path} fails its sha256 check (manifest {ref.sha256[:12]}...): "
                "corrupt or replaced; re-download or rebuild it"
            )
        if hash_it:
            VERIFIED_ONCE.add(once)

    def _cache_file(self, ref: ShardRef) -> Path | None:
        if self.cache_dir is None or is_local(ref.url):
            return None
        return self.cache_dir / f"{ref.sha256}.{'tar' if ref.format == 'webdataset' else 'parquet'}"

    def _store(self, target: Path, data: Buffer) -> None:
        if len(data) > self.cache_bytes:
            warnings.warn(
                f"shard of {len(data)} bytes exceeds cache_bytes={self.cache_bytes}; not cached",
                stacklevel=3,
            )
            return
        assert self.cache_dir is not None
        self._evict(self.cache_bytes - len(data))
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".partial-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)  # atomic: readers never see a partial file

    def _evict(self, keep_bytes: int) -> None:
        """Remove least recently used cache files until at most `keep_bytes` remain."""
        assert self.cache_dir is not None
        files = []
        for p in self.cache_dir.iterdir():
            if p.name.startswith(".partial-"):
                continue
            try:
                st = p.stat()
            except FileNotFoundError:  # another worker evicted it
                continue
            files.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files, key=lambda t: t[0]):
            if total <= keep_bytes:
                break
            p.unlink(missing_ok=True)
            total -= size

    def cached_bytes(self) -> int:
        """Bytes currently held in the cache directory (0 without a cache)."""
        if self.cache_dir is None:
            return 0
        return sum(p.stat().st_size for p in self.cache_dir.iterdir() if p.is_file())
