"""One lung-ultrasound MP4 as a video payload: original coded frames, identity metadata blanked.

Shared by COVID-BLUES and COVID-US, which publish their videos as MP4 files.

Decision on metadata: the video is kept as the publisher's bytes (no decode, no
re-encode), but MP4 `udta` / `meta` boxes can carry a title, a comment, an author or a
location that identify a patient or a site. Those boxes are not copied: each is turned
into a zeroed `free` box of the same size (`medshard.formats.mp4.strip_mp4_metadata`),
so no offset moves and every coded frame stays the original byte for byte; the boxes
blanked are listed in `meta.metadata_removed`. Refusing such records instead would drop
most files: FFmpeg and phone apps write an encoder tag in `udta` by default.
"""

from __future__ import annotations

from typing import Any

from medshard.formats.mp4 import parse_mp4, strip_mp4_metadata
from medshard.schemas import Payload


def mp4_video_payload(data: bytes) -> tuple[Payload, dict[str, Any]]:
    """The `video` payload of an MP4 file's bytes and the meta fields it gives: fps,
    n_frames, duration_s, codec, metadata_removed. RecordError when the file is
    truncated, corrupt or holds no video track."""
    info = parse_mp4(data)
    clean, removed = strip_mp4_metadata(data)
    payload = Payload("video", clean, {
        "fps": info.fps, "n_frames": info.n_frames, "height": info.height,
        "width": info.width, "channels": 3, "encoding": "mp4",
    })
    meta = {"fps": info.fps, "n_frames": info.n_frames, "duration_s": info.duration_s,
            "codec": info.codec, "metadata_removed": removed}
    return payload, meta
