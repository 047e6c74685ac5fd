"""Cholec80: 80 laparoscopic cholecystectomy videos with surgical phase and tool annotations.

Raw layout (CAMMA, by request form at camma.unistra.fr/datasets; unpacks to `cholec80/`):
    videos/videoNN.mp4                       NN = 01..80, 25 fps, one operation each
    phase_annotations/videoNN-phase.txt      tab-separated, header `Frame<TAB>Phase`, one row
                                             per frame from 0 at 25 fps, Phase one of the 7
                                             names in PHASES
    tool_annotations/videoNN-tool.txt        tab-separated, header `Frame<TAB>Grasper<TAB>
                                             Bipolar<TAB>Hook<TAB>Scissors<TAB>Clipper<TAB>
                                             Irrigator<TAB>SpecimenBag`, 0/1 per tool, one
                                             row every 25th frame (1 fps)
The data root may be the folder holding these three folders or the one that holds
`cholec80/`. Where the facts come from: the folder, file and column names and the 25 fps
rate are those of CLIMB's loader (DDVD233/CLIMB src/datasets/endoscopic/cholec.py, which
reads `videos/`, `phase_annotations/videoNN-phase.txt`, `tool_annotations/videoNN-tool.txt`
with `Frame`/`Phase` and the seven tool columns) and of the dataset paper (Twinanda et al.,
EndoNet, IEEE TMI 2017: 80 videos at 25 fps, phases per frame, tools at 1 fps). CLIMB's
loader also reads a `videos/videoNN-timestamp.txt` that the official archive is not known
to ship (unconfirmed): it is not needed here, timestamps are frame / fps.

Samples (two kinds from one video; `meta.kind` says which):
- **frame**: one decoded frame every `frame_every_seconds` (default 1 s: frames 0, 25,
  50, ..., the frames CLIMB and most phase-recognition work sample at 1 fps and the frames
  the tool annotation labels), stored lossless as an RGB PNG at native size.
- **clip**: a run of frames re-encoded as a short MPEG-4 Part 2 (`mp4v`) MP4 by OpenCV.
  Default: one clip per phase segment (a maximal run of frames with one phase), cut into
  pieces of at most `clip_seconds` so one clip never holds a whole hour; with
  `clip_mode="fixed"`, windows of `clip_seconds` every `clip_stride_seconds` (a tail
  shorter than one window is dropped). `clip_frame_step` keeps every n-th frame (1: all).
Labels: `source_labels.phases` are the phases of the sample's frames in order of first
appearance (one for a frame), `source_labels.tools` the tools annotated present at any of
its frames that the tool file labels (null when none of its frames is labelled);
classes = phases + tools. `meta.phase_runs` gives the per-frame phase at exactly the
sample's frames as runs (`start_frame`, `end_frame` exclusive, `phase`), `meta.tool_rows`
the tool rows inside it.

Clip storage (measured, benchmarks/cholec80_storage.py, figures in benchmarks/README.md):
the other option, decoded frames stored once with clips referencing them by timestamp,
costs about 54 GB per hour of 25-fps 854 x 480 video as PNG (111 GB raw), against about
1.4 GB per hour for mp4v clips, which also play in any decoder. The original video is
never copied per clip: clips of the default mode tile the video once (fixed windows
with a stride shorter than the window overlap, by the user's choice).

Split: the 40 / 8 / 32 video split of TeCNO (Czempiel et al., MICCAI 2020) and most phase
recognition work since: videos 1-40 train, 41-48 val, 49-80 test (`split="tecno"`);
`split="twinanda"` is the paper's 40 train / 40 test. CLIMB draws a random 80 % of the
videos (seed 0) instead; its split is not reproducible outside Python's `random`, so it
is not offered. Each video is one operation of one patient: the video is the subject.

Bounded memory: the video is decoded sequentially with OpenCV's `VideoCapture` (never
whole); each open clip streams into its encoder's temporary file; the header is read
from a memory map of the file. A truncated file (frames index past its end, moov lost)
is quarantined before decoding.
"""

from __future__ import annotations

import csv
import logging
import mmap
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from medshard.formats.mp4 import parse_mp4
from medshard.formats.mp4_writer import Mp4ClipWriter
from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source, SourceOptions

log = logging.getLogger("medshard.sources.cholec80")

RELEASE_DIR = "cholec80"
PHASES = ("Preparation", "CalotTriangleDissection", "ClippingCutting", "GallbladderDissection",
          "GallbladderPackaging", "CleaningCoagulation", "GallbladderRetraction")
TOOLS = ("Grasper", "Bipolar", "Hook", "Scissors", "Clipper", "Irrigator", "SpecimenBag")
_VIDEO = re.compile(r"^video(\d+)$")


class Cholec80Options(SourceOptions):
    split: Literal["tecno", "twinanda"] = Field(
        "tecno", description="tecno: videos 1-40 train, 41-48 val, 49-80 test; twinanda: "
        "1-40 train, 41-80 test (the dataset paper)")
    clip_mode: Literal["phase", "fixed"] = Field(
        "phase", description="phase: one clip per phase segment (cut at clip_seconds); "
        "fixed: windows of clip_seconds every clip_stride_seconds")
    clip_seconds: float = Field(60.0, gt=0, le=3600,
                                description="longest clip (phase mode) or window length (fixed)")
    clip_stride_seconds: float = Field(60.0, gt=0, le=3600,
                                       description="fixed mode: seconds between window starts")
    clip_frame_step: int = Field(1, ge=1, le=250,
                                 description="keep every n-th frame in a clip (1: all)")
    frame_every_seconds: float = Field(1.0, gt=0, le=3600,
                                       description="one frame sample every this many seconds")


def read_phase_annotation(path: Path, rel: str) -> list[str]:
    """The phase of each frame 0..N-1 from a `videoNN-phase.txt`; RecordError naming the
    file and line on a malformed row, an unknown phase or a frame out of sequence."""
    phases: list[str] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["Frame", "Phase"]:
            raise RecordError(f"{rel}: header is {header!r}, expected Frame<TAB>Phase")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 2:
                raise RecordError(f"{rel}:{line}: {len(row)} columns, expected 2 (Frame, Phase)")
            try:
                frame = int(row[0])
            except ValueError:
                raise RecordError(f"{rel}:{line}: frame {row[0]!r} is not an integer") from None
            if frame != len(phases):
                raise RecordError(f"{rel}:{line}: frame {frame}, expected {len(phases)} "
                                  "(one row per frame from 0)")
            phase = row[1].strip()
            if phase not in PHASES:
                raise RecordError(f"{rel}:{line}: unknown phase {phase!r}")
            phases.append(phase)
    if not phases:
        raise RecordError(f"{rel}: no annotated frames")
    return phases


def read_tool_annotation(path: Path, rel: str) -> dict[int, list[str]]:
    """{frame: [tools present]} from a `videoNN-tool.txt`; RecordError on a malformed row."""
    rows: dict[int, list[str]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = [h.strip() for h in next(reader, [])]
        if header[:1] != ["Frame"] or set(header[1:]) != set(TOOLS):
            raise RecordError(f"{rel}: header is {header!r}, expected Frame and {list(TOOLS)}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise RecordError(f"{rel}:{line}: {len(row)} columns, expected {len(header)}")
            try:
                frame = int(row[0])
                flags = [int(v) for v in row[1:]]
            except ValueError:
                raise RecordError(f"{rel}:{line}: a value is not an integer: {row!r}") from None
            if any(v not in (0, 1) for v in flags):
                raise RecordError(f"{rel}:{line}: tool flags must be 0 or 1: {row!r}")
            present = {name for name, v in zip(header[1:], flags, strict=True) if v}
            rows[frame] = [t for t in TOOLS if t in present]
    return rows


def phase_runs(phases: list[str], frames: range) -> list[dict[str, Any]]:
    """The phases at `frames` as runs {"phase", "start_frame", "end_frame" (exclusive)}; a
    run covers consecutive sampled frames with one phase."""
    runs: list[dict[str, Any]] = []
    for f in frames:
        if runs and runs[-1]["phase"] == phases[f]:
            runs[-1]["end_frame"] = f + 1
        else:
            runs.append({"phase": phases[f], "start_frame": f, "end_frame": f + 1})
    return runs


def plan_clips(phases: list[str], n_frames: int, fps: float, opts: Cholec80Options
               ) -> list[tuple[int, int]]:
    """(start, end exclusive) frame ranges of the clips of one video, in start order."""
    length = max(1, round(opts.clip_seconds * fps))
    if opts.clip_mode == "fixed":
        stride = max(1, round(opts.clip_stride_seconds * fps))
        return [(s, s + length) for s in range(0, n_frames - length + 1, stride)]
    clips: list[tuple[int, int]] = []
    for run in phase_runs(phases, range(n_frames)):
        for s in range(run["start_frame"], run["end_frame"], length):
            clips.append((s, min(s + length, run["end_frame"])))
    return clips


@dataclass
class _OpenClip:
    start: int
    end: int
    writer: Mp4ClipWriter


class Cholec80(Source):
    fixture = "medshard.sources.video.cholec80_fixture:FIXTURE"
    Options = Cholec80Options
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://camma.unistra.fr/datasets/",
        steps=[
            "Fill in the Cholec80 request form on the CAMMA datasets page above and accept its "
            "licence (CC BY-NC-SA 4.0, research use).",
            "Download cholec80.zip (or its parts) with the link CAMMA sends you.",
            "Put the zip file, or the `cholec80/` folder unpacked from it, into the folder "
            "named below.",
        ],
        layouts={"release": [FileSpec(path="cholec80/phase_annotations/video01-phase.txt"),
                             FileSpec(path="cholec80/tool_annotations/video01-tool.txt"),
                             FileSpec(path="cholec80/videos/video01.mp4")],
                 "flat": [FileSpec(path="phase_annotations/video01-phase.txt"),
                          FileSpec(path="tool_annotations/video01-tool.txt"),
                          FileSpec(path="videos/video01.mp4")]},
        archives=[FileSpec(path="cholec80.zip")],
    ))
    payload_members = ("image.png", "video.mp4")
    info: ClassVar[SourceInfo] = SourceInfo(
        name="cholec80",
        title="Cholec80: cholecystectomy videos with surgical phase and tool annotations",
        version="1.0",
        modality="video",
        tasks=["classification", "multilabel"],
        license=License(
            name="Creative Commons Attribution-NonCommercial-ShareAlike 4.0",
            spdx="CC-BY-NC-SA-4.0",
            url="https://camma.unistra.fr/datasets/",
            terms_version="4.0",
            non_commercial=True,
            share_alike=True,
        ),
        access="manual",
        homepage="https://camma.unistra.fr/datasets/",
        citation=(
            "Twinanda AP, Shehata S, Mutter D, Marescaux J, de Mathelin M, Padoy N. EndoNet: A "
            "Deep Architecture for Recognition Tasks on Laparoscopic Videos. IEEE Trans Med "
            "Imaging 36(1):86-97 (2017)."
        ),
        label_space=list(PHASES) + list(TOOLS),
        split_policy="by video number: 1-40 train, 41-48 val, 49-80 test (TeCNO); option "
        "split=twinanda gives the paper's 40 train / 40 test",
        split_unit="video (one operation of one patient)",
        release_notes={"0.1.0": "first medshard adapter: 1-fps PNG frames and mp4v clips per "
                       "phase segment, phase and tool labels, TeCNO split"},
        published_counts=PublishedCounts(
            train=5760, test=1440, unit="video intervals (CLIMB: 90 per video)",
            reference="CLIMB A.2 (Table 6 says 14.4K); CLIMB cuts each video into 90 equal "
            "intervals on a random 80/20 video split, medshard writes frames and clips on "
            "the 40/8/32 split, so counts differ by design",
        ),
    )

    def release_dir(self, root: Path) -> Path:
        for candidate in (root, root / RELEASE_DIR):
            if (candidate / "phase_annotations").is_dir():
                return candidate
        raise MissingRawData(
            f"cholec80: phase_annotations/ not found in {root} or {root}/{RELEASE_DIR}/; put "
            "the unpacked cholec80 folder there"
        )

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        release = self.release_dir(root)
        if not (release / "videos").is_dir():
            raise MissingRawData(f"cholec80: {release}/videos/ is missing")

    def official_split(self, number: int) -> str | None:
        if not 1 <= number <= 80:
            return None  # not one of the 80: keyed-hash split
        if number <= 40:
            return "train"
        if self.opts.split == "twinanda":
            return "test"
        return "val" if number <= 48 else "test"

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        release = self.release_dir(root)
        prefix = release.relative_to(root)
        names: set[str] = set()
        for p in (release / "phase_annotations").iterdir():
            if p.name.endswith("-phase.txt"):
                names.add(p.name[: -len("-phase.txt")])
        for p in (release / "videos").iterdir():
            if p.suffix == ".mp4":
                names.add(p.stem)
        for name in sorted(names):
            m = _VIDEO.match(name)
            if m is None:
                yield BadRow(f"{prefix.as_posix()}/videos/{name}", 0,
                             f"file name {name!r} is not videoNN", "ValueError")
                continue
            rel_video = (prefix / "videos" / f"{name}.mp4").as_posix()
            video = root / rel_video
            yield RawRecord(
                record_id=name,
                subject_id=name,
                files=[rel_video, (prefix / "phase_annotations" / f"{name}-phase.txt").as_posix(),
                       (prefix / "tool_annotations" / f"{name}-tool.txt").as_posix()],
                source_labels={},
                split=self.official_split(int(m.group(1))),  # type: ignore[arg-type]
                size_bytes=video.stat().st_size if video.is_file() else 0,
                meta={"video_number": int(m.group(1))},
            )

    def _annotations(self, record: RawRecord, root: Path) -> tuple[list[str], dict[int, list[str]]]:
        rel_phase, rel_tool = record.files[1], record.files[2]
        try:
            phases = read_phase_annotation(self.path(root, rel_phase), rel_phase)
        except FileNotFoundError:
            raise RecordError(f"missing phase annotation {rel_phase}") from None
        try:
            tools = read_tool_annotation(self.path(root, rel_tool), rel_tool)
        except FileNotFoundError:
            raise RecordError(f"missing tool annotation {rel_tool}") from None
        return phases, tools

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        import cv2

        phases, tools = self._annotations(record, root)
        rel_video = record.files[0]
        try:
            path = self.path(root, rel_video)
            with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                header = parse_mp4(m)
        except FileNotFoundError:
            raise RecordError(f"missing video {rel_video}") from None
        except ValueError:  # mmap of an empty file
            raise RecordError(f"video {rel_video} is empty; re-download it") from None
        fps = header.fps
        n_use = min(header.n_frames, len(phases))
        if header.n_frames != len(phases):
            log.warning("%s: video has %d frames, phase annotation %d; the first %d are used",
                        record.record_id, header.n_frames, len(phases), n_use)
        frame_step = max(1, round(self.opts.frame_every_seconds * fps))
        clips = plan_clips(phases, n_use, fps, self.opts)
        common = {"video": record.record_id, "video_fps": fps, "video_frames": header.n_frames,
                  "annotated_frames": len(phases), "codec": header.codec}

        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise RecordError(f"OpenCV cannot open {rel_video}; the file is unreadable")
        step = self.opts.clip_frame_step
        open_clips: list[_OpenClip] = []
        next_clip = 0
        try:
            for frame in range(n_use):
                while next_clip < len(clips) and clips[next_clip][0] == frame:
                    s, e = clips[next_clip]
                    open_clips.append(_OpenClip(s, e, Mp4ClipWriter(fps / step)))
                    next_clip += 1
                in_clip = [c for c in open_clips if (frame - c.start) % step == 0]
                wanted = frame % frame_step == 0 or bool(in_clip)
                # frames nobody needs are only grabbed (decoded, never converted to BGR)
                ok, bgr = cap.read() if wanted else (cap.grab(), None)
                if not ok:
                    raise RecordError(f"{rel_video}: decoding stopped at frame {frame} of "
                                      f"{header.n_frames}; the file is damaged")
                for c in in_clip:
                    c.writer.write(bgr)
                if frame % frame_step == 0:
                    yield self._frame_sample(frame, bgr, phases, tools, common)
                for c in [c for c in open_clips if frame == c.end - 1]:
                    open_clips.remove(c)
                    yield self._clip_sample(c, phases, tools, common)
        finally:
            cap.release()
            for c in open_clips:
                c.writer.close()

    @staticmethod
    def _labels(frames: range, phases: list[str], tools: dict[int, list[str]]
                ) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
        seen: list[str] = []
        for f in frames:
            if phases[f] not in seen:
                seen.append(phases[f])
        rows = [{"frame": f, "tools": tools[f]} for f in frames if f in tools]
        present = ({t for r in rows for t in r["tools"]} if rows else None)
        tool_list = [t for t in TOOLS if t in present] if present is not None else None
        classes = seen + (tool_list or [])
        return {"phases": seen, "tools": tool_list}, classes, rows

    def _meta(self, kind: str, frames: range, fps: float, common: dict[str, Any],
              phases: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "kind": kind,
            **common,
            "start_frame": frames.start,
            "end_frame": frames.stop,
            "frame_step": frames.step,
            "start_s": round(frames.start / fps, 6),
            "end_s": round(frames.stop / fps, 6),
            "phase_runs": phase_runs(phases, frames),
            "tool_rows": rows,
        }

    def _frame_sample(self, frame: int, bgr: np.ndarray, phases: list[str],
                      tools: dict[int, list[str]], common: dict[str, Any]) -> Sample:
        frames = range(frame, frame + 1)
        labels, classes, rows = self._labels(frames, phases, tools)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        return Sample(
            classes=classes,
            source_labels=labels,
            payloads={"image": Payload("image", rgb, {"bit_depth": 8, "photometric": "RGB",
                                                      "channels": 3})},
            meta=self._meta("frame", frames, common["video_fps"], common, phases, rows),
            task="multilabel",
            key_suffix=f"f{frame:07d}",
        )

    def _clip_sample(self, clip: _OpenClip, phases: list[str], tools: dict[int, list[str]],
                     common: dict[str, Any]) -> Sample:
        data = clip.writer.finish()
        info = parse_mp4(data)  # what the bytes we ship say, not what we asked for
        frames = range(clip.start, clip.end, self.opts.clip_frame_step)
        if info.n_frames != len(frames):
            raise RecordError(f"clip {clip.start}-{clip.end}: encoder wrote {info.n_frames} "
                              f"frames, expected {len(frames)}")
        labels, classes, rows = self._labels(frames, phases, tools)
        return Sample(
            classes=classes,
            source_labels=labels,
            payloads={"video": Payload("video", data, {
                "fps": info.fps, "n_frames": info.n_frames, "height": info.height,
                "width": info.width, "channels": 3, "encoding": "mp4"})},
            meta=self._meta("clip", frames, common["video_fps"], common, phases, rows),
            task="multilabel",
            key_suffix=f"c{clip.start:07d}",
        )
