"""WebDataset tar shards: plain ustar, integer mtimes, fixed member order."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from medshard.sharding.members import NpyMember, split_member_name


class _ChunkReader(io.RawIOBase):
    """A read-only file over `NpyMember.chunks()`, so tarfile copies without a full buffer."""

    def __init__(self, member: NpyMember) -> None:
        self._chunks = member.chunks()
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        """Exactly n bytes (fewer only at the end): tarfile treats a short read as EOF."""
        parts: list[bytes] = []
        want = n
        while want != 0:
            if not len(self._current):
                nxt = next(self._chunks, None)
                if nxt is None:
                    break
                self._current = memoryview(nxt)
                continue
            take = len(self._current) if want < 0 else min(want, len(self._current))
            parts.append(bytes(self._current[:take]))
            self._current = self._current[take:]
            if want > 0:
                want -= take
        return b"".join(parts)


class TarShardWriter:
    """Streams samples into a tar file object; nothing but the current member is held."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._tar = tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.USTAR_FORMAT)
        self.samples = 0

    def write(self, key: str, members: Iterable[tuple[str, bytes | NpyMember]]) -> None:
        for ext, data in members:
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o444
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            reader = io.BytesIO(data) if isinstance(data, bytes) else _ChunkReader(data)
            self._tar.addfile(info, reader)
        self.samples += 1

    def close(self) -> None:
        self._tar.close()

    def abort(self) -> None:
        """Give up the shard: nothing more is written (not even the end-of-archive blocks)."""
        stream = self._tar.fileobj
        self._tar.closed = True
        if stream is not None and hasattr(stream, "closed"):
            stream.closed = True  # tarfile's stream would flush into a closed file on __del__


def iter_tar_members(fileobj: BinaryIO) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) for each regular file, streaming."""
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:
        for info in tar:
            if not info.isfile():
                continue
            f = tar.extractfile(info)
            assert f is not None
            yield info.name, f.read()


def iter_tar_samples(fileobj: BinaryIO) -> Iterator[dict[str, bytes]]:
    """Group consecutive members by key: {"__key__": key, "json": ..., "signal.npy": ...}."""
    current: dict[str, bytes] | None = None
    current_key = None
    for name, data in iter_tar_members(fileobj):
        key, ext = split_member_name(name)
        if key != current_key:
            if current is not None:
                yield current
            current, current_key = {"__key__": key.encode()}, key
        assert current is not None
        current[ext] = data
    if current is not None:
        yield current
