"""How one sample becomes shard members, and back.

A sample is `<key>.json` plus one member per payload, named `<key>.<role>.<ext>`
(`signal.npy`, `image.jpg`, `image.png`, `volume.npy`, `segmentation.npy`,
`video.avi`). Members appear in a fixed order: json first, then payloads in
the order the sample's `members` field lists them.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

JSON_MEMBER = "json"


def npy_bytes(array: np.ndarray) -> bytes:
    """Deterministic .npy encoding (C order, no pickle)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


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
