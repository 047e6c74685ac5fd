"""A miniature EchoNet-Dynamic in its real layout, from real ultrasound frames.

Frames come from the multi-frame ultrasound DICOMs shipped with pydicom
(`OBXXXX1A_2frame.dcm`, palette colour, 2 frames of 600 x 800) and pydicom-data
(`US1_UNCR.dcm`, RGB): the palette is applied, the image turned grey, and a
window panned across it (as a moving probe would) is scaled to EchoNet's
112 x 112. Videos are written with OpenCV's VideoWriter (FFmpeg's AVI muxer,
Motion-JPEG), like EchoNet's own tooling, with the 3-channel frames that
EchoNet's AVIs hold. FileList.csv and VolumeTracings.csv follow the dataset's
columns; the tracings are a long axis plus perpendicular chords of an ellipse.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

RELEASE_DIR = "EchoNet-Dynamic"
SIZE = 112
FPS = 50.0
FILELIST_COLUMNS = ["FileName", "EF", "ESV", "EDV", "FrameHeight", "FrameWidth", "FPS",
                    "NumberOfFrames", "Split"]

# (FileName, EF, ESV, EDV, Split, frames): one video per official split value.
VIDEOS = [
    ("0X1A0A263B22CCD966", 78.5, 14.9, 69.2, "TRAIN", 60),
    ("0X2BC89A94BF4A47F8", 55.1, 41.0, 91.3, "VAL", 48),
    ("0X3D7E0F2B9C6A1154", 32.7, 88.4, 131.4, "TEST", 52),
]


def ultrasound_frames() -> list[np.ndarray]:
    """Real ultrasound images (grey, uint8) from pydicom's and pydicom-data's test files."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.pixels import apply_color_lut

    frames: list[np.ndarray] = []
    ob = dcmread(get_testdata_file("OBXXXX1A_2frame.dcm"))
    rgb = apply_color_lut(ob.pixel_array, ob)  # 16-bit palette entries
    for frame in rgb:
        frames.append((frame.astype(np.float32).mean(axis=-1) / 257.0).astype(np.uint8))
    us = dcmread(get_testdata_file("US1_UNCR.dcm"))
    frames.append(us.pixel_array.astype(np.float32).mean(axis=-1).astype(np.uint8))
    return frames


def panned_frames(image: np.ndarray, n: int, seed: int) -> Iterator[np.ndarray]:
    """`n` 112 x 112 grey frames of a window swinging across `image`, as a moving probe sees it."""
    import cv2

    h, w = image.shape
    side = min(h, w) * 2 // 3
    for t in range(n):
        phase = 2 * math.pi * t / 25.0 + seed
        y = int((h - side) * (0.5 + 0.5 * math.sin(phase)))
        x = int((w - side) * (0.5 + 0.5 * math.cos(phase * 0.5)))
        crop = image[y : y + side, x : x + side]
        yield cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def write_avi(path: Path, frames: Iterator[np.ndarray], fps: float = FPS) -> int:
    """Write grey frames as a 3-channel Motion-JPEG AVI with OpenCV; returns the frame count."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (SIZE, SIZE), True)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write MJPG AVI to {path}")
    count = 0
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
            count += 1
    finally:
        writer.release()
    return count


def ellipse_tracing(frame: int, scale: float) -> list[list[float]]:
    """A long axis then four perpendicular chords of an LV-like ellipse: [x1, y1, x2, y2] rows."""
    cx, top, length = 56.0, 20.0, 70.0 * scale
    rows = [[cx, top, cx, top + length]]
    for k in range(1, 5):
        y = top + length * k / 5
        half = 22.0 * scale * math.sqrt(1 - (2 * k / 5 - 1) ** 2)
        rows.append([cx - half, y, cx + half, y])
    return rows


def write_long_video(path: Path, n_frames: int) -> int:
    """A long EchoNet-like AVI (for memory measurements): `n_frames` panned real frames."""
    image = ultrasound_frames()[0]
    return write_avi(path, panned_frames(image, n_frames, seed=0))


def write_raw(root: Path) -> Path:
    """Write `root/EchoNet-Dynamic/` with three videos (TRAIN, VAL, TEST); returns that folder."""
    release = root / RELEASE_DIR
    (release / "Videos").mkdir(parents=True, exist_ok=True)
    images = ultrasound_frames()
    with open(release / "FileList.csv", "w", newline="", encoding="utf-8") as fl, open(
        release / "VolumeTracings.csv", "w", newline="", encoding="utf-8"
    ) as vt:
        filelist = csv.writer(fl)
        filelist.writerow(FILELIST_COLUMNS)
        tracings = csv.writer(vt)
        tracings.writerow(["FileName", "X1", "Y1", "X2", "Y2", "Frame"])
        for i, (name, ef, esv, edv, split, n) in enumerate(VIDEOS):
            written = write_avi(
                release / "Videos" / f"{name}.avi", panned_frames(images[i], n, seed=i)
            )
            filelist.writerow([name, ef, esv, edv, SIZE, SIZE, int(FPS), written, split])
            # end-systole (small) first, then end-diastole (large), as EchoNet lists them
            for frame, scale in ((n // 4, 0.7), (n // 2, 1.0)):
                for row in ellipse_tracing(frame, scale):
                    tracings.writerow([f"{name}.avi", *(round(v, 4) for v in row), frame])
    return release


TRUNCATED_VIDEO = "0X7FFFFFFFFFFFFF"  # listed in FileList.csv; the AVI stops mid-file
MISSING_VIDEO = "0X7FFFFFFFFFFFFE"  # listed in FileList.csv (TEST); no AVI was shipped


def write_fixture(root: Path) -> Path:
    """The miniature plus two broken records: a listed video cut in the middle (TRAIN) and
    a listed video nobody shipped (TEST)."""
    release = write_raw(root)
    first = VIDEOS[0][0]
    whole = (release / "Videos" / f"{first}.avi").read_bytes()
    (release / "Videos" / f"{TRUNCATED_VIDEO}.avi").write_bytes(whole[: len(whole) // 2])
    with open(release / "FileList.csv", "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow([TRUNCATED_VIDEO, 55.0, 40.0, 90.0, SIZE, SIZE, int(FPS), 50,
                                "TRAIN"])
        csv.writer(f).writerow([MISSING_VIDEO, 60.0, 20.0, 50.0, SIZE, SIZE, int(FPS), 60,
                                "TEST"])
    return root


LONG_NAME = "0X1" + "A" * 196  # a 199-character file name: no tar header holds its key


def _append_filelist(root: Path, rows: list[list[object]]) -> list[int]:
    from medshard.testing.adversarial import csv_line_count

    path = root / RELEASE_DIR / "FileList.csv"
    first = csv_line_count(path) + 1
    with open(path, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return list(range(first, first + len(rows)))


def malformed_row(root: Path, outside: Path):
    """A FileList.csv row whose EF is not a number."""
    from medshard.testing.adversarial import Expect

    (line,) = _append_filelist(root, [["0X6", "n/a", 40.0, 90.0, SIZE, SIZE, int(FPS), 50,
                                       "TRAIN"]])
    rel = f"{RELEASE_DIR}/FileList.csv:{line}"
    return Expect({rel: "list"}, {rel: "could not convert string to float"})


def long_name(root: Path, outside: Path):
    """A listed video whose file name is 199 characters long."""
    from medshard.testing.adversarial import Expect

    videos = root / RELEASE_DIR / "Videos"
    (videos / f"{LONG_NAME}.avi").write_bytes((videos / f"{VIDEOS[0][0]}.avi").read_bytes())
    _append_filelist(root, [[LONG_NAME, 60.0, 40.0, 90.0, SIZE, SIZE, int(FPS), VIDEOS[0][5],
                             "TRAIN"]])
    return Expect(long_keys=(LONG_NAME,))


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 1, "val": 1, "test": 1},
        quarantined={TRUNCATED_VIDEO: "load", MISSING_VIDEO: "load"},
        adversarial={"malformed_row": malformed_row, "long_name": long_name},
        real="ultrasound frames from pydicom's multi-frame US DICOMs, written as MJPG AVI with "
        "OpenCV",
        illustrative="EF/ESV/EDV, tracings, splits; one listed video is truncated, one is missing (quarantined)",
    )


FIXTURE = _fixture()
