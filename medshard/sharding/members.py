"""How one sample becomes shard members, and back.

A sample is `<key>.json` plus one member per payload, named `<key>.<role>.<ext>`
(`signal.npy`, `image.jpg`, `cc.png`, `mask.png`, `volume.npy`, `segmentation.npy`,
`video.avi`, `graph.npz`, `expression.npy`, `events.jsonl`, `report.txt`). Members
appear in a fixed order: json first, then payloads in the order the sample's `members`
field lists them (sorted by role).
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

JSON_MEMBER = "json"


def npy_bytes(array: np.ndarray) -> bytes:
    """Deterministic .npy encoding (C order, no pickle)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


class NpyMember:
    """A .npy member that is never materialized: its header plus a view of the array.

    Writers stream `chunks()`; `bytes(member)` builds the encoded bytes only where a
    writer needs them whole (Parquet). Encodes exactly as `npy_bytes`.
    """

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.ascontiguousarray(array)
        buf = io.BytesIO()
        # version 1.0, as np.save writes for any header under 64 KiB
        np.lib.format.write_array_header_1_0(
            buf, np.lib.format.header_data_from_array_1_0(self.array)
        )
        self.header = buf.getvalue()

    def __len__(self) -> int:
        return len(self.header) + self.array.nbytes

    def chunks(self, size: int = 8 << 20):
        yield self.header
        flat = memoryview(self.array.reshape(-1).view(np.uint8))
        for start in range(0, len(flat), size):
            yield flat[start : start + size]

    def __bytes__(self) -> bytes:
        return b"".join(bytes(c) for c in self.chunks())


# a fixed timestamp, as np.savez would otherwise stamp the wall clock into every entry
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Deterministic uncompressed .npz (what `np.load` reads): entries in the given order,
    each `<name>.npy` as `npy_bytes` encodes it, no timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy_bytes(array))
    return buf.getvalue()


def member_bytes(data: bytes | NpyMember) -> bytes:
    return data if isinstance(data, bytes) else bytes(data)


def npy_array(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def json_bytes(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace variance, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def split_member_name(name: str) -> tuple[str, str]:
    """`dir/key.signal.npy` -> (`dir/key`, `signal.npy`); keys never contain dots."""
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    if dot < 0:
        return name, ""
    return name[:dot], name[dot + 1 :]


def column_name(member: str) -> str:
    """Parquet payload column for a member extension: `signal.npy` -> `signal_npy`."""
    return member.replace(".", "_")
