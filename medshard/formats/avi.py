"""Reading video container headers without decoding a frame (shared by video sources).

Video sources keep the dataset's own encoded bytes (re-encoding would lose
information and time), so all the build needs from a file is what its
container header says: frame rate, frame count, frame size and codec. This
module reads that from AVI files (Microsoft RIFF 'AVI ', including OpenDML
'AVIX' extensions) by walking the RIFF chunk tree:

    RIFF 'AVI '
      LIST 'hdrl'
        avih                 main header: microseconds per frame, total frames, width, height
        LIST 'strl'          one per stream
          strh               stream header: type 'vids', codec fourcc, rate / scale, length
          strf               BITMAPINFOHEADER for video: width, height, bit count, compression
        LIST 'odml' / dmlh   OpenDML: total frames over all RIFF parts
      LIST 'movi'            the frames, chunks '<nn>dc' / '<nn>db'
      idx1                   legacy index: one 16-byte entry per chunk

Frame rate is the video stream's dwRate / dwScale (exact; avih's integer
microseconds per frame is the fallback). Frame count is OpenDML's dmlh total
when present (avih counts only the first RIFF part of a file over 1 GiB), else
the video stream's dwLength, else avih's total. When an idx1 index is present
its video chunks are counted too and must agree with the header: a mismatch
means a broken file. Truncated files, non-AVI files and AVIs without a video
stream raise RecordError, so the record is quarantined rather than shipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from medshard.schemas.sample import RecordError

_AVIH = struct.Struct("<10I")  # first 10 DWORDs of AVIMAINHEADER
_STRH = struct.Struct("<4s4sIHHIIIIIIII")  # AVISTREAMHEADER up to dwSampleSize
_BIH = struct.Struct("<IiiHH4s")  # BITMAPINFOHEADER up to biCompression


@dataclass(frozen=True)
class AviInfo:
    """What an AVI header says about its (first) video stream."""

    fps: float
    n_frames: int
    width: int
    height: int
    codec: str  # strh fccHandler, else strf biCompression, e.g. "MJPG"; "" when unset
    bit_count: int  # strf biBitCount: 24 for RGB / most codecs, 8 for palettized
    indexed_frames: int | None  # video chunks listed in idx1; None when there is no idx1

    @property
    def channels(self) -> int:
        """Channels a decoder yields: 1 for 8-bit palettized/grey, else 3 (colour)."""
        return 1 if self.bit_count == 8 else 3


def _fourcc(raw: bytes) -> str:
    # Handlers are printable ASCII padded with spaces or NULs; anything else reads as unset.
    text = raw.rstrip(b"\x00 ").decode("ascii", errors="replace")
    return text if text.isprintable() else ""


def _chunks(data: memoryview, start: int, end: int):
    """(fourcc, payload offset, payload size) of each chunk in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        fourcc = bytes(data[pos : pos + 4])
        (size,) = struct.unpack_from("<I", data, pos + 4)
        payload = pos + 8
        if payload + size > end:
            raise RecordError(
                f"AVI truncated or corrupt: chunk {fourcc!r} at byte {pos} runs past its "
                "parent; re-download the file"
            )
        yield fourcc, payload, size
        pos = payload + size + (size & 1)  # chunks are padded to even sizes


def parse_avi(data: bytes | bytearray | memoryview) -> AviInfo:
    """Read an AVI's header from its bytes without decoding any frame.

    Returns fps, frame count, frame size and codec of the first video stream.
    Raises RecordError (one line, what is wrong) when `data` is not an AVI, is
    truncated, has no video stream, or its index disagrees with its header.
    """
    buf = memoryview(data).cast("B")
    if len(buf) < 12 or bytes(buf[0:4]) != b"RIFF" or bytes(buf[8:12]) != b"AVI ":
        raise RecordError("not an AVI file (no RIFF 'AVI ' header); replace it with the original")
    (riff_size,) = struct.unpack_from("<I", buf, 4)
    riff_end = 8 + riff_size
    if riff_end > len(buf):
        raise RecordError(
            f"AVI truncated: header says {riff_end} bytes, file has {len(buf)}; re-download it"
        )

    avih: tuple[int, ...] | None = None
    strh: tuple | None = None
    bih: tuple | None = None
    dmlh_frames = 0
    movi: tuple[int, int] | None = None
    idx1: tuple[int, int] | None = None
    video_stream = -1
    for fourcc, off, size in _chunks(buf, 12, riff_end):
        if fourcc == b"LIST" and size >= 4:
            kind = bytes(buf[off : off + 4])
            if kind == b"hdrl":
                avih, strh, bih, video_stream, dmlh_frames = _parse_hdrl(buf, off + 4, off + size)
            elif kind == b"movi":
                movi = (off + 4, off + size)
        elif fourcc == b"idx1":
            idx1 = (off, off + size)

    if avih is None:
        raise RecordError("AVI has no 'avih' main header; the file is corrupt, re-download it")
    if strh is None or bih is None:
        raise RecordError("AVI has no video stream ('strl' with type 'vids'); not a video file")
    if movi is None:
        raise RecordError("AVI has no 'movi' frame list; the file is truncated, re-download it")

    us_per_frame, _, _, _, total_frames, _, _, _, width, height = avih
    _, handler, _, _, _, _, scale, rate, _, length, _, _, _ = strh
    _, bi_width, bi_height, _, bit_count, compression = bih
    if rate > 0 and scale > 0:
        fps = rate / scale
    elif us_per_frame > 0:
        fps = 1e6 / us_per_frame
    else:
        raise RecordError("AVI header gives no frame rate (rate/scale and avih are zero)")
    n_frames = dmlh_frames or length or total_frames
    width = width or bi_width
    height = height or abs(bi_height)  # negative biHeight marks a top-down bitmap

    indexed = None
    if idx1 is not None:
        indexed = _count_index_frames(buf, idx1[0], idx1[1], video_stream, movi[0] - 4, riff_end)
        # OpenDML files index only their first RIFF part in idx1
        if not dmlh_frames and indexed != n_frames:
            raise RecordError(
                f"AVI header says {n_frames} frames but its index lists {indexed}; "
                "the file is damaged, re-download it"
            )
    if n_frames <= 0 or width <= 0 or height <= 0:
        raise RecordError(f"AVI header is empty ({n_frames} frames of {width}x{height})")
    return AviInfo(
        fps=float(fps),
        n_frames=int(n_frames),
        width=int(width),
        height=int(height),
        codec=_fourcc(handler) or _fourcc(compression),
        bit_count=int(bit_count),
        indexed_frames=indexed,
    )


def _parse_hdrl(buf: memoryview, start: int, end: int):
    avih = strh = bih = None
    video_stream = -1
    dmlh_frames = 0
    stream_no = 0
    for fourcc, off, size in _chunks(buf, start, end):
        if fourcc == b"avih" and size >= _AVIH.size:
            avih = _AVIH.unpack_from(buf, off)
        elif fourcc == b"LIST" and size >= 4:
            kind = bytes(buf[off : off + 4])
            if kind == b"strl":
                if strh is None:
                    s, b = _parse_strl(buf, off + 4, off + size)
                    if s is not None:
                        strh, bih, video_stream = s, b, stream_no
                stream_no += 1
            elif kind == b"odml":
                for f2, o2, s2 in _chunks(buf, off + 4, off + size):
                    if f2 == b"dmlh" and s2 >= 4:
                        (dmlh_frames,) = struct.unpack_from("<I", buf, o2)
    return avih, strh, bih, video_stream, dmlh_frames


def _parse_strl(buf: memoryview, start: int, end: int):
    strh = bih = None
    for fourcc, off, size in _chunks(buf, start, end):
        if fourcc == b"strh" and size >= _STRH.size:
            strh = _STRH.unpack_from(buf, off)
        elif fourcc == b"strf" and size >= _BIH.size:
            bih = _BIH.unpack_from(buf, off)
    if strh is None or strh[0] != b"vids" or bih is None:
        return None, None
    return strh, bih


def _count_index_frames(
    buf: memoryview, start: int, end: int, stream: int, movi_base: int, riff_end: int
) -> int:
    """Video chunks ('<nn>dc' / '<nn>db' of `stream`) listed in idx1; checks they lie in the file."""
    prefix = f"{stream:02d}".encode()
    base: int | None = None
    count = 0
    for pos in range(start, end - 15, 16):
        ckid = bytes(buf[pos : pos + 4])
        offset, size = struct.unpack_from("<4xII", buf, pos + 4)
        if base is None:
            # offsets are relative to the 'movi' fourcc by the spec, absolute in some writers:
            # the first entry tells which, as its chunk id must be found where it points
            absolute = bytes(buf[offset : offset + 4]) == ckid
            base = 0 if absolute else movi_base
        if ckid[:2] != prefix or ckid[2:] not in (b"dc", b"db"):
            continue
        if base + offset + 8 + size > riff_end:
            raise RecordError(
                f"AVI truncated: frame {count} lies past the end of the file; re-download it"
            )
        count += 1
    return count
