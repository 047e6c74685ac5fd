"""ETL throughput and memory: the medshard Beam build vs a plain Python loop, side by side.

    python benchmarks/etl.py                      # 2000 and 16000 PTB-XL records
    python benchmarks/etl.py --sizes 500 2000

The dataset is the PTB-XL miniature (the real pydicom ECG, WFDB at 500 Hz) grown to
N records. The baseline is the per-dataset script a user would otherwise write: read
each WFDB record, apply the same standardization (medshard's own `standardize_signal`,
so only the framework differs), and append `.json` + `.npy` members to tar files of the
same size. Each run is a separate process; peak memory is the largest resident set of
that process or any of its worker processes (ru_maxrss). Samples/s counts wall time from process
start to finish, including Beam's start-up.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

SHARD_SIZE = 8 << 20  # several shards per run, so workers have work to share


def plain_loop(raw: Path, out: Path) -> int:
    """What a user writes without medshard: one process, one loop, tar files by size."""
    import ast
    import csv

    import numpy as np
    import wfdb

    from medshard.pipeline.transforms.signal import standardize_signal
    from medshard.schemas import Filtered
    from medshard.schemas.standards import ECG_SPEC

    out.mkdir(parents=True, exist_ok=True)
    written, shard_no, size, tar = 0, 0, 0, None
    with open(raw / "ptbxl_database.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        signal, fields = wfdb.rdsamp(str(raw / row["filename_hr"]))
        try:
            data, desc = standardize_signal(
                signal.T, {"sampling_rate_hz": fields["fs"], "channels": fields["sig_name"],
                           "units": fields["units"][0]}, ECG_SPEC)
        except Filtered:
            continue
        buf = io.BytesIO()
        np.save(buf, data)
        meta = json.dumps({"key": row["ecg_id"], "scp_codes": ast.literal_eval(row["scp_codes"]),
                           "signal": desc}).encode()
        if tar is None or size > SHARD_SIZE:
            if tar is not None:
                tar.close()
            tar = tarfile.open(out / f"shard-{shard_no:06d}.tar", "w")
            shard_no, size = shard_no + 1, 0
        for ext, payload in (("json", meta), ("npy", buf.getvalue())):
            info = tarfile.TarInfo(f"{int(row['ecg_id']):05d}.{ext}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
            size += len(payload)
        written += 1
    if tar is not None:
        tar.close()
    return written


def beam_build(raw_root: Path, out: Path, workers: int) -> int:
    from medshard.pipeline.build import BuildConfig, run_build

    result = run_build(BuildConfig(sources=["ptb-xl"], data_root=raw_root, out=out,
                                   workers=workers, shard_size=SHARD_SIZE, progress=False))
    return sum(c.samples for c in result.manifest.sources["ptb-xl"].counts.values())


def child(args: argparse.Namespace) -> None:
    started = time.monotonic()
    if args.child == "loop":
        n = plain_loop(Path(args.raw) / "ptb-xl", Path(args.out))
    else:
        n = beam_build(Path(args.raw), Path(args.out), args.workers)
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB on Linux
    print(json.dumps({"samples": n, "seconds": time.monotonic() - started, "peak_kib": peak}))


def measure(kind: str, raw: Path, out: Path, workers: int = 1) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", kind, "--raw", str(raw), "--out", str(out),
           "--workers", str(workers)]
    wall = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "MEDSHARD_SECRET": "benchmark"})
    wall = time.monotonic() - wall
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"kind": kind, "workers": workers, "samples": result["samples"], "seconds": wall,
            "rate": result["samples"] / wall, "peak_mib": result["peak_kib"] / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[2000, 16000])
    parser.add_argument("--child", choices=["loop", "beam"])
    parser.add_argument("--raw")
    parser.add_argument("--out")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from medshard.sources.ecg import ptbxl_fixture as ptbxl

    tmp = Path(tempfile.mkdtemp(prefix="medshard-bench-"))
    try:
        rows = []
        for n in args.sizes:
            raw = tmp / f"raw{n}"
            ptbxl.write_raw(raw / "ptb-xl", n_records=n)
            rows.append({"records": n, **measure("loop", raw, tmp / "loop")})
            for workers in (1, 2):
                rows.append({"records": n, **measure("beam", raw, tmp / "beam", workers)})
        print(f"{'records':>8} {'runner':<18} {'samples':>8} {'seconds':>8} {'samples/s':>10} "
              f"{'vs loop':>8} {'peak MiB':>9}")
        for n in args.sizes:
            base = next(r for r in rows if r["records"] == n and r["kind"] == "loop")
            for r in (r for r in rows if r["records"] == n):
                name = "plain loop" if r["kind"] == "loop" else f"medshard beam x{r['workers']}"
                print(f"{n:>8} {name:<18} {r['samples']:>8} {r['seconds']:>8.1f} "
                      f"{r['rate']:>10.1f} {r['rate'] / base['rate']:>7.2f}x {r['peak_mib']:>9.0f}")
        print("peak MiB: largest resident set of the run's process or any of its workers")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
