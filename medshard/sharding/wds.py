"""WebDataset tar shards: plain ustar, integer mtimes, fixed member order."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from medshard.sharding.members import split_member_name


class TarShardWriter:
    """Streams samples into a tar file object; nothing but the current member is held."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._tar = tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.USTAR_FORMAT)
        self.samples = 0

    def write(self, key: str, members: Iterable[tuple[str, bytes]]) -> None:
        for ext, data in members:
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o444
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(data))
        self.samples += 1

    def close(self) -> None:
        self._tar.close()


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
