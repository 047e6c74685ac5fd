"""Cholec80: clip and frame labels against the annotation files read by pandas, pixels against
OpenCV's own decode, and the split by video number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medshard.schemas import RecordError
from medshard.sources.video.cholec80 import Cholec80
from medshard.sources.video.cholec80_fixture import MALFORMED, write_fixture
from tests.helpers import opencv_frames

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("cholec80"))


def _samples(root: Path, video: str, **options):
    source = Cholec80(**options)
    (record,) = [r for r in source.list_records(root) if getattr(r, "record_id", "") == video]
    return list(source.load(record, root))


def _decode(video) -> list[np.ndarray]:
    return opencv_frames(video)[0]


def _check_labels(root: Path, sample) -> None:
    """Labels of one sample == the annotation files (pandas) at exactly its frames."""
    m = sample.meta
    video = m["video"]
    phase = pd.read_csv(root / "cholec80" / "phase_annotations" / f"{video}-phase.txt", sep="\t")
    tool = pd.read_csv(root / "cholec80" / "tool_annotations" / f"{video}-tool.txt", sep="\t")
    frames = list(range(m["start_frame"], m["end_frame"], m["frame_step"]))
    expected = phase.set_index("Frame").loc[frames, "Phase"].tolist()
    got = [r["phase"] for r in m["phase_runs"]
           for f in frames if r["start_frame"] <= f < r["end_frame"]]
    assert got == expected
    assert sample.source_labels["phases"] == list(dict.fromkeys(expected))
    rows = tool[tool["Frame"].isin(frames)]
    if rows.empty:
        assert sample.source_labels["tools"] is None
    else:
        present = [c for c in tool.columns[1:] if rows[c].any()]
        assert sample.source_labels["tools"] == present
    assert sample.classes == sample.source_labels["phases"] + (sample.source_labels["tools"] or [])


@pytest.mark.parametrize("options", [
    {},  # one clip per phase segment
    {"clip_mode": "fixed", "clip_seconds": 1.2, "clip_stride_seconds": 0.4,
     "clip_frame_step": 5},  # overlapping windows, every 5th frame
])
def test_labels_equal_the_annotation_at_the_samples_frames(root: Path, options) -> None:
    for video in ("video01", "video41", "video49"):
        samples = _samples(root, video, **options)
        assert {s.meta["kind"] for s in samples} == {"frame", "clip"}
        for s in samples:
            _check_labels(root, s)


def test_default_clips_tile_the_video_once_along_phase_segments(root: Path) -> None:
    phase = pd.read_csv(root / "cholec80/phase_annotations/video49-phase.txt", sep="\t")
    runs = (phase["Phase"] != phase["Phase"].shift()).cumsum()
    segments = [(g["Frame"].iloc[0], g["Frame"].iloc[-1] + 1) for _, g in phase.groupby(runs)]
    clips = [s for s in _samples(root, "video49") if s.meta["kind"] == "clip"]
    assert [(c.meta["start_frame"], c.meta["end_frame"]) for c in clips] == segments
    assert all(len(c.source_labels["phases"]) == 1 for c in clips)


def test_frames_are_opencvs_decode_and_clips_hold_the_declared_frames(root: Path) -> None:
    original = _decode(root / "cholec80" / "videos" / "video01.mp4")
    for s in _samples(root, "video01"):
        if s.meta["kind"] == "frame":  # lossless PNG of the decoded frame, RGB
            rgb = s.payloads["image"].data
            assert np.array_equal(rgb, original[s.meta["start_frame"]][:, :, ::-1])
            assert s.meta["start_frame"] % 25 == 0  # 1 fps at 25 fps
        else:
            clip = _decode(s.payloads["video"].data)
            frames = range(s.meta["start_frame"], s.meta["end_frame"], s.meta["frame_step"])
            assert len(clip) == len(frames) == s.payloads["video"].descriptor["n_frames"]
            # re-encoded (mp4v): close to, not equal to, the source frames
            err = np.mean([np.abs(c.astype(int) - original[f].astype(int)).mean()
                           for c, f in zip(clip, frames, strict=True)])
            assert err < 8.0


def test_clips_are_deterministic(root: Path) -> None:
    a = [s.payloads["video"].data for s in _samples(root, "video41") if s.meta["kind"] == "clip"]
    b = [s.payloads["video"].data for s in _samples(root, "video41") if s.meta["kind"] == "clip"]
    assert a == b


def test_no_clip_carries_the_source_videos_metadata(root: Path) -> None:
    assert b"Pemberton" in (root / "cholec80/videos/video01.mp4").read_bytes()
    for s in _samples(root, "video01"):
        if s.meta["kind"] == "clip":
            assert b"Pemberton" not in s.payloads["video"].data


@pytest.mark.parametrize(("split", "expected"), [
    ("tecno", {1: "train", 40: "train", 41: "val", 48: "val", 49: "test", 80: "test", 81: None}),
    ("twinanda", {1: "train", 40: "train", 41: "test", 48: "test", 80: "test"}),
])
def test_split_by_video_number(split: str, expected: dict) -> None:
    source = Cholec80(split=split)
    assert {n: source.official_split(n) for n in expected} == expected


def test_a_malformed_annotation_row_names_file_and_line(root: Path) -> None:
    with pytest.raises(RecordError, match=rf"{MALFORMED}-phase.txt:14: unknown phase"):
        _samples(root, MALFORMED)
