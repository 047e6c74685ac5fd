"""Reading MP4 / QuickTime headers without decoding a frame, and removing their metadata boxes.

Video sources keep the dataset's own encoded bytes (see `formats/avi.py`); for MP4
(ISO base media file format, ISO/IEC 14496-12, and Apple's QuickTime `.mov`, the same
box tree) all the build needs is what the `moov` box says about the first video
track:

    ftyp                      brand
    moov
      mvhd                    movie timescale / duration
      trak                    one per track
        tkhd                  track width / height (16.16 fixed point)
        mdia
          mdhd                media timescale and duration (version 0: 32-bit, 1: 64-bit)
          hdlr                handler 'vide' for video
          minf / stbl
            stsd              sample description: codec fourcc (avc1, hvc1, mp4v, ...)
                              and the coded width / height
            stsz | stz2       one entry per sample: the frame count
            stco | co64       chunk offsets into the file
      udta                    user data: title, comment, author, ... (QuickTime '©nam',
                              '©cmt', iTunes-style meta/ilst)
    mdat                      the coded frames

Frame rate is frames / (media duration / media timescale). A file whose boxes run
past its end, that has no `moov` or no `mdat`, no video track, or whose chunk
offsets point past the end of the file (a truncated download) raises RecordError,
so the record is quarantined rather than shipped.

Identity can ride in metadata boxes (a title or comment naming the patient or the
site). `strip_mp4_metadata` turns every `udta` and `meta` box (in the movie, its
tracks and the top level) into a `free` box of the same size with zeroed content:
nothing moves, so every chunk offset stays valid and the coded frames are the
original bytes, bit for bit. Which boxes were blanked is returned, so a sample
can say so.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from medshard.schemas.sample import RecordError

# Boxes whose children are boxes (the path to the ones read here).
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}
# Boxes that carry user metadata; blanked by strip_mp4_metadata.
METADATA_BOXES = (b"udta", b"meta")


@dataclass(frozen=True)
class Mp4Info:
    """What an MP4's first video track says about itself."""

    fps: float
    n_frames: int
    width: int
    height: int
    codec: str  # stsd sample entry fourcc, e.g. "avc1", "mp4v"
    duration_s: float
    brand: str  # ftyp major brand ("isom", "mp42", "qt  "); "" when there is no ftyp
    metadata_boxes: tuple[str, ...]  # paths of udta/meta boxes present, e.g. "moov/udta"


def _boxes(data: memoryview, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, box start, payload start, box end) of each box in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:  # 64-bit largesize follows the type
            if pos + 16 > end:
                raise RecordError(f"MP4 truncated: box {kind!r} at byte {pos} has no size; "
                                  "re-download the file")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:  # the box runs to the end of its parent (the file, for mdat)
            size = end - pos
        if size < header or pos + size > end:
            raise RecordError(
                f"MP4 truncated or corrupt: box {kind.decode('latin-1')!r} at byte {pos} "
                f"claims {size} bytes, {end - pos} remain; re-download the file"
            )
        yield kind, pos, pos + header, pos + size
        pos += size
    if pos != end and end - pos < 8 and any(bytes(data[pos:end])):
        raise RecordError(f"MP4 truncated: {end - pos} stray bytes after the last box at "
                          f"byte {pos}; re-download the file")


def _child(data: memoryview, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, _, payload, box_end in _boxes(data, start, end):
        if k == kind:
            return payload, box_end
    return None


def _video_track(data: memoryview, moov: tuple[int, int]) -> dict | None:
    """The first track whose handler is 'vide': its tables, read from the box tree."""
    for kind, _, payload, end in _boxes(data, *moov):
        if kind != b"trak":
            continue
        mdia = _child(data, payload, end, b"mdia")
        if mdia is None:
            continue
        hdlr = _child(data, *mdia, b"hdlr")
        if hdlr is None or bytes(data[hdlr[0] + 8 : hdlr[0] + 12]) != b"vide":
            continue
        mdhd = _child(data, *mdia, b"mdhd")
        minf = _child(data, *mdia, b"minf")
        stbl = _child(data, *minf, b"stbl") if minf else None
        if mdhd is None or stbl is None:
            raise RecordError("MP4 video track lacks mdhd or stbl; the file is corrupt")
        return {"trak": (payload, end), "mdhd": mdhd, "stbl": stbl}
    return None


def _media_time(data: memoryview, mdhd: tuple[int, int]) -> tuple[int, int]:
    """(timescale, duration) of an mdhd box (version 0 or 1)."""
    version = data[mdhd[0]]
    if version == 1:
        timescale, duration = struct.unpack_from(">IQ", data, mdhd[0] + 20)
    else:
        timescale, duration = struct.unpack_from(">II", data, mdhd[0] + 12)
    return timescale, duration


def _sample_count(data: memoryview, stbl: tuple[int, int]) -> int:
    for kind in (b"stsz", b"stz2"):
        box = _child(data, *stbl, kind)
        if box is not None:
            return struct.unpack_from(">I", data, box[0] + 8)[0]
    raise RecordError("MP4 video track has no sample size table (stsz/stz2); the file is corrupt")


def _last_chunk_offset(data: memoryview, stbl: tuple[int, int]) -> int | None:
    for kind, fmt, width in ((b"stco", ">I", 4), (b"co64", ">Q", 8)):
        box = _child(data, *stbl, kind)
        if box is None:
            continue
        (count,) = struct.unpack_from(">I", data, box[0] + 4)
        if count == 0:
            return None
        if box[0] + 8 + count * width > box[1]:
            raise RecordError(f"MP4 chunk offset table {kind.decode()} runs past its box")
        return max(struct.unpack_from(f">{count}{fmt[1]}", data, box[0] + 8))
    return None


def metadata_box_paths(data: bytes | bytearray | memoryview) -> list[tuple[str, int, int]]:
    """(path, box start, box end) of every udta / meta box at the top level, in moov and
    in each trak, in file order."""
    found: list[tuple[str, int, int]] = []

    def walk(start: int, end: int, prefix: str, depth: int) -> None:
        for kind, box_start, payload, box_end in _boxes(view, start, end):
            name = kind.decode("latin-1")
            if kind in METADATA_BOXES:
                found.append((prefix + name, box_start, box_end))
            elif kind in (b"moov", b"trak") and depth < 3:
                walk(payload, box_end, f"{prefix}{name}/", depth + 1)

    with memoryview(data) as view:  # released on exit: an mmap may be closed after
        walk(0, len(view), "", 0)
    return found


def parse_mp4(data: bytes | bytearray | memoryview) -> Mp4Info:
    """The header of an MP4 / QuickTime file's first video track; RecordError when the
    file is truncated, corrupt, or has no video track."""
    with memoryview(data) as view:  # released on exit: an mmap may be closed after
        return _parse(view)


def _parse(view: memoryview) -> Mp4Info:
    if len(view) < 8:
        raise RecordError("not an MP4 file: shorter than one box header; re-download it")
    top = {}
    for kind, _, payload, end in _boxes(view, 0, len(view)):
        top.setdefault(kind, (payload, end))
    if b"moov" not in top and b"ftyp" not in top and b"mdat" not in top:
        raise RecordError("not an MP4 / QuickTime file: no ftyp, moov or mdat box")
    if b"moov" not in top:
        raise RecordError("MP4 has no moov box (the index is written last; a download cut "
                          "short loses it); re-download the file")
    if b"mdat" not in top:
        raise RecordError("MP4 has no mdat box: no coded frames; re-download the file")
    track = _video_track(view, top[b"moov"])
    if track is None:
        raise RecordError("MP4 has no video track (no trak with handler 'vide')")
    timescale, duration = _media_time(view, track["mdhd"])
    n_frames = _sample_count(view, track["stbl"])
    last = _last_chunk_offset(view, track["stbl"])
    if last is not None and last >= len(view):
        raise RecordError(f"MP4 truncated: a chunk starts at byte {last}, past the end of the "
                          f"{len(view)}-byte file; re-download it")
    stsd = _child(view, *track["stbl"], b"stsd")
    if stsd is None:
        raise RecordError("MP4 video track has no sample description (stsd)")
    entry = stsd[0] + 8  # version/flags + entry count
    codec = bytes(view[entry + 4 : entry + 8]).decode("latin-1")
    width, height = struct.unpack_from(">HH", view, entry + 8 + 24)
    if not (timescale and duration and n_frames):
        raise RecordError(f"MP4 video track is empty (timescale {timescale}, duration "
                          f"{duration}, {n_frames} frames)")
    seconds = duration / timescale
    ftyp = top.get(b"ftyp")
    brand = bytes(view[ftyp[0] : ftyp[0] + 4]).decode("latin-1") if ftyp else ""
    return Mp4Info(
        fps=round(n_frames / seconds, 6),
        n_frames=int(n_frames),
        width=int(width),
        height=int(height),
        codec=codec,
        duration_s=round(seconds, 6),
        brand=brand,
        metadata_boxes=tuple(p for p, _, _ in metadata_box_paths(view)),
    )


def strip_mp4_metadata(data: bytes | bytearray | memoryview) -> tuple[bytes, list[str]]:
    """The file with every udta / meta box turned into a zeroed `free` box of the same
    size (no offset moves; coded frames unchanged), and the paths of the boxes blanked."""
    out = bytearray(data)
    removed = []
    for path, start, end in metadata_box_paths(out):
        header = 16 if struct.unpack_from(">I", out, start)[0] == 1 else 8
        out[start + 4 : start + 8] = b"free"
        out[start + header : end] = bytes(end - start - header)
        removed.append(path)
    return bytes(out), removed
