"""Listing a BioMed-VITAL-sized instruction file: time and peak memory, streamed vs json.load.

Writes a synthetic `BioMed-VITAL-instructions-210K.json` of N entries (4 turns of
illustrative text each, ~2.2 kB per entry like the real 463 MB / 210K file), then in
a fresh process each: (a) `BioMedVital.list_records` counting records (the listing
streams; records are dropped as a consumer would after writing them out), (b) the same
keeping every record (what the build's driver holds before planning), (c) the stdlib's
`json.load` of the whole file (what a naive adapter does). Prints seconds and peak RSS.

    /work/main/.venv/bin/python benchmarks/vital_listing.py --entries 50000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("stream-count", "stream-keep", "json-load")


def write_file(root: Path, n: int) -> Path:
    path = root / "BioMed-VITAL-instructions-210K.json"
    words = ("retina vessel disc macula lesion margin contrast panel figure shows "
             "the a of with in").split()
    with open(path, "w", encoding="utf-8") as f:
        f.write("[")
        for i in range(n):
            text = " ".join(words[(i * 7 + k) % len(words)] for k in range(90))
            entry = {"id": f"vital-{i:07d}", "image": f"PMC{1000000 + i // 3}_fig{i % 3}.jpg",
                     "domain": "CXR", "conversations": [
                         {"from": "human", "value": "<image>\n" + text[:200]},
                         {"from": "gpt", "value": text * 2},
                         {"from": "human", "value": text[:150]},
                         {"from": "gpt", "value": text * 2}]}
            f.write(("," if i else "") + json.dumps(entry))
        f.write("]")
    (root / "images").mkdir(exist_ok=True)
    return path


def run_mode(root: Path, mode: str) -> None:
    t0 = time.perf_counter()
    if mode == "json-load":
        with open(root / "BioMed-VITAL-instructions-210K.json", encoding="utf-8") as f:
            n = len(json.load(f))
    else:
        from medshard.sources import get_source

        records = get_source("vital").list_records(root)
        if mode == "stream-keep":
            n = len(list(records))
        else:
            n = sum(1 for _ in records)
    dt = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "entries": n, "seconds": round(dt, 2),
                      "peak_rss_mb": round(peak_mb)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=50000)
    ap.add_argument("--mode", choices=MODES)
    ap.add_argument("--root")
    args = ap.parse_args()
    if args.mode:
        run_mode(Path(args.root), args.mode)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = write_file(Path(tmp), args.entries)
        print(f"file: {path.stat().st_size / 1e6:.0f} MB, {args.entries} entries")
        for mode in MODES:
            subprocess.run([sys.executable, __file__, "--mode", mode, "--root", tmp], check=True)


if __name__ == "__main__":
    main()
