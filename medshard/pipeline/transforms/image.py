"""Image standardization: native resolution and bit depth, lossless.

A source's own JPEG/PNG bytes are kept byte for byte (after a full decode proves
them readable); arrays are stored as PNG (16-bit grayscale when deeper than 8 bits).

Decompression bombs: an encoded image may declare at most MAX_IMAGE_PIXELS pixels
(64 million, checked from the header before anything is decoded; raise it with the
environment variable MEDSHARD_MAX_IMAGE_PIXELS for larger images), and no more pixels
per byte of file than its encoding can represent (`MAX_PIXELS_PER_BYTE`: a baseline
JPEG spends at least 2 bits on each 8 x 8 block, deflate compresses at most ~1032:1),
so a 20 KB file that declares 12000 x 12000 pixels is refused as broken.

Corrupt but terminated JPEGs: a JPEG whose entropy-coded data ends before the size its
frame header (SOF) declares, or runs past it, still "decodes" in Pillow, OpenCV and
pylibjpeg (libjpeg fills the missing blocks with grey and only prints a warning). A JPEG
is therefore decoded by libjpeg-turbo (simplejpeg) with every libjpeg warning raised as an
error ("premature end of data segment", "extraneous bytes before marker"): its pixels and
its header must agree. JPEG variants libjpeg-turbo's 8-bit decoder does not take (12-bit,
lossless) are decoded by Pillow as before.

Metadata segments: a source's JPEG/PNG bytes are kept, but not the text around the pixels.
EXIF, XMP, IPTC and comment segments can carry names, dates and device serials (a camera
writes them; a de-identification pass over DICOM never sees them), so `strip_metadata`
drops them losslessly before the bytes are checked and stored: JPEG APP1-APP15 except
ICC profiles (APP2 "ICC_PROFILE") and Adobe's colour transform (APP14 "Adobe"), and COM;
PNG tEXt, zTXt, iTXt, eXIf and tIME. The entropy-coded data and every other segment or
chunk are copied byte for byte, so the decoded pixels are identical; what was dropped is
named in the descriptor's `metadata_removed`.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from medshard.schemas.sample import RecordError
from medshard.schemas.standards import DEFAULT_PNG_LEVEL

_FORMAT_EXT = {"JPEG": "jpg", "PNG": "png"}
MAX_IMAGE_PIXELS = 64_000_000
MAX_PIXELS_PER_BYTE = {"JPEG": 512, "PNG": 4096}


_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


_JPEG_KEEP_APP = {0xE0: (b"JFIF\0", b"JFXX\0"), 0xE2: (b"ICC_PROFILE\0",), 0xEE: (b"Adobe",)}
_PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def strip_metadata(data: bytes) -> tuple[bytes, list[str]]:
    """`data` without its text-bearing metadata segments, and their names (module docstring).

    Bytes that are not JPEG or PNG, or whose segment structure is broken, come back as they
    are: the full decode that follows judges them.
    """
    if data[:2] == b"\xff\xd8":
        return _strip_jpeg(data)
    if data[:8] == _PNG_SIGNATURE:
        return _strip_png(data)
    return data, []


def _strip_jpeg(data: bytes) -> tuple[bytes, list[str]]:
    out, removed, pos = bytearray(data[:2]), [], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return data, []  # not at a marker: leave it to the decoder
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA or 0xD0 <= marker <= 0xD9 or marker == 0x01:
            break  # start of scan (or a standalone marker): the rest is copied as is
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return data, []
        body = data[pos + 4:end]
        is_app = 0xE0 <= marker <= 0xEF
        keep = not (is_app or marker == 0xFE) or any(
            body.startswith(tag) for tag in _JPEG_KEEP_APP.get(marker, ()))
        if keep:
            out += data[pos:end]
        else:
            name = "COM" if marker == 0xFE else f"APP{marker - 0xE0}"
            tag = body[:body.find(b"\0")] if is_app and 0 < body.find(b"\0") <= 32 else b""
            label = f"{name} ({tag.decode('ascii', 'replace')})" if tag.isascii() and tag else name
            if label not in removed:
                removed.append(label)
        pos = end
    if not removed:
        return data, []
    return bytes(out + data[pos:]), removed


def _strip_png(data: bytes) -> tuple[bytes, list[str]]:
    out, removed, pos = bytearray(data[:8]), [], 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        ctype = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return data, []
        if ctype in _PNG_TEXT_CHUNKS:
            if ctype.decode("ascii") not in removed:
                removed.append(ctype.decode("ascii"))
        else:
            out += data[pos:end]
        pos = end
        if ctype == b"IEND":
            break
    if not removed:
        return data, []
    return bytes(out + data[pos:]), removed


def max_image_pixels() -> int:
    """The pixel cap per image: MEDSHARD_MAX_IMAGE_PIXELS, else MAX_IMAGE_PIXELS."""
    try:
        return int(os.environ.get("MEDSHARD_MAX_IMAGE_PIXELS") or MAX_IMAGE_PIXELS)
    except ValueError:
        return MAX_IMAGE_PIXELS


def check_encoded_image(data: bytes) -> dict[str, Any]:
    """Decode `data` fully (truncation raises) and describe it; the bytes themselves are kept."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            _check_declared_size(im.size, fmt, len(data))
            if fmt != "JPEG" or not _strict_jpeg_decode(data, im.size):
                im.load()
            width, height = im.size
            mode = im.mode
    except RecordError:
        raise
    except UnidentifiedImageError as exc:  # its message holds an object address: not stable
        raise RecordError("unreadable image: not in an image format Pillow can identify "
                          f"({len(data)} bytes)") from exc
    except Exception as exc:  # Pillow raises many types for broken files
        # Pillow names the stream by its repr (`<_io.BytesIO object at 0x...>`): a memory
        # address would make the quarantine line differ between two runs
        message = _OBJECT_REPR.sub("the image bytes", str(exc))
        raise RecordError(f"unreadable image: {message}") from exc
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


def _strict_jpeg_decode(data: bytes, size: tuple[int, int]) -> bool:
    """Decode a JPEG with libjpeg's warnings as errors; False where this decoder cannot take it.

    RecordError when the data and the header disagree (the decode stops at the warning).
    """
    try:
        import simplejpeg
    except ImportError:  # the `formats` extra installs it; without it Pillow decodes alone
        return False
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return False  # not a JPEG variant libjpeg-turbo's 8-bit decoder reads
    space = {"Gray": "GRAY", "CMYK": "CMYK", "YCCK": "CMYK"}.get(colorspace, "RGB")
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace=space, strict=True)
    except ValueError as exc:
        message = str(exc)
        if "Corrupt JPEG data" in message or "premature" in message.lower():
            raise RecordError(f"corrupt JPEG: {message} (its data and its {width} x {height} "
                              f"header disagree); re-download the file") from exc
        return False  # unsupported variant (12-bit, lossless, arithmetic): Pillow decodes it
    if pixels.shape[:2] != (size[1], size[0]):
        raise RecordError(f"corrupt JPEG: decodes to {pixels.shape[1]} x {pixels.shape[0]}, "
                          f"its header says {size[0]} x {size[1]}; re-download the file")
    return True


def _check_declared_size(size: tuple[int, int], fmt: str | None, n_bytes: int) -> None:
    """RecordError when the header declares more pixels than the cap, or than the bytes hold."""
    width, height = size
    pixels = width * height
    cap = max_image_pixels()
    if pixels > cap:
        raise RecordError(f"image declares {width} x {height} = {pixels} pixels, more than the "
                          f"cap of {cap} (MEDSHARD_MAX_IMAGE_PIXELS raises it)")
    per_byte = MAX_PIXELS_PER_BYTE.get(fmt or "", 4096)
    if pixels > per_byte * max(n_bytes, 1):
        raise RecordError(f"image declares {width} x {height} pixels in {n_bytes} bytes, more "
                          f"than {fmt} can encode: the header is corrupt")


def encode_png(array: np.ndarray, level: int = DEFAULT_PNG_LEVEL) -> bytes:
    """Lossless PNG of a uint8/uint16 array (H x W, or H x W x 3/4 for uint8), at zlib
    compression `level` (0-9)."""
    if array.dtype == np.uint16 and array.ndim == 2:
        im = Image.fromarray(array)  # Pillow writes mode I;16 as 16-bit grayscale PNG
    elif array.dtype == np.uint8 and array.ndim in (2, 3):
        im = Image.fromarray(array)
    else:
        raise RecordError(
            f"cannot store {array.dtype} image of shape {array.shape} as PNG losslessly"
        )
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im)
    return arr.astype(np.uint16) if arr.dtype == np.int32 else arr
