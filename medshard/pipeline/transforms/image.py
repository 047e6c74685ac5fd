"""Image standardization: native resolution and bit depth, lossless.

A source's own JPEG/PNG bytes are kept byte for byte (after a full decode proves
them readable); arrays are stored as PNG (16-bit grayscale when deeper than 8 bits).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from medshard.schemas.sample import RecordError

_FORMAT_EXT = {"JPEG": "jpg", "PNG": "png"}


def check_encoded_image(data: bytes) -> dict[str, Any]:
    """Decode `data` fully (truncation raises) and describe it; the bytes themselves are kept."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            im.load()
            width, height = im.size
            mode = im.mode
    except Exception as exc:  # Pillow raises many types for broken files
        raise RecordError(f"unreadable image: {exc}") from exc
    if fmt not in _FORMAT_EXT:
        raise RecordError(f"unsupported image encoding {fmt}")
    bit_depth = 16 if mode in ("I;16", "I;16B", "I") else 8
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "P": 1, "CMYK": 4, "YCbCr": 3}.get(mode, 1)
    photometric = {"L": "MONOCHROME2", "RGB": "RGB", "P": "PALETTE COLOR"}.get(mode, mode)
    return {
        "height": height,
        "width": width,
        "bit_depth": bit_depth,
        "channels": channels,
        "photometric": photometric,
        "encoding": fmt.lower(),
        "ext": _FORMAT_EXT[fmt],
    }


def encode_png(array: np.ndarray) -> bytes:
    """Lossless PNG of a uint8/uint16 array (H x W, or H x W x 3/4 for uint8)."""
    if array.dtype == np.uint16 and array.ndim == 2:
        im = Image.fromarray(array)  # Pillow writes mode I;16 as 16-bit grayscale PNG
    elif array.dtype == np.uint8 and array.ndim in (2, 3):
        im = Image.fromarray(array)
    else:
        raise RecordError(
            f"cannot store {array.dtype} image of shape {array.shape} as PNG losslessly"
        )
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im)
    return arr.astype(np.uint16) if arr.dtype == np.int32 else arr
