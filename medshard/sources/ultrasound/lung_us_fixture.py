"""Real ultrasound cine written as small MP4 files, for the lung-ultrasound video fixtures.

The frames are pydicom-data's `color3d_jpeg_baseline.dcm`, a real 120-frame ultrasound
cine (640 x 480, 30 frames/s by its Frame Time): real ultrasound, though not of a lung.
They are scaled to 80 x 60 and written as MP4 (MPEG-4 Part 2) with OpenCV; a title and
a comment naming a (made-up) patient can be put into the file's `moov/udta`, as phone
and cart software do.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from medshard.sources.video.cholec80_fixture import add_identity_metadata, write_mp4

WIDTH, HEIGHT = 80, 60
FPS = 30.0  # the cine's Frame Time is 33.333 ms


@lru_cache(maxsize=1)
def cine_frames() -> tuple[np.ndarray, ...]:
    """The cine's frames as small BGR images (OpenCV's channel order)."""
    import cv2
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    ds = dcmread(get_testdata_file("color3d_jpeg_baseline.dcm"))
    rgb = ds.pixel_array  # pydicom converts YBR_FULL_422 to RGB
    return tuple(cv2.resize(np.ascontiguousarray(f[:, :, ::-1]), (WIDTH, HEIGHT),
                            interpolation=cv2.INTER_AREA) for f in rgb)


def write_cine_mp4(path: Path, n_frames: int, start: int = 0,
                   identity: tuple[str, str] | None = None) -> None:
    """`n_frames` of the cine from `start` (wrapping) as an MP4; optionally with a title
    and comment in its user data."""
    frames = cine_frames()
    write_mp4(path, [frames[(start + i) % len(frames)] for i in range(n_frames)], FPS)
    if identity is not None:
        add_identity_metadata(path, *identity)
