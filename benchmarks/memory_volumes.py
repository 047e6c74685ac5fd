"""Memory of RSPECT-sized builds: the driver's plan at 2M DICOMs, and the build's peak RSS.

    PYTHONPATH=. python benchmarks/memory_volumes.py              # all three, ~5-10 min
    PYTHONPATH=. python benchmarks/memory_volumes.py plan --images 2000000
    PYTHONPATH=. python benchmarks/memory_volumes.py grow --series 3 --factor 10 --slices 100
    PYTHONPATH=. python benchmarks/memory_volumes.py long --slices 1000

Each measurement runs in a fresh process (imports, Beam included, done before the
baseline is taken); figures are the growth of the process's peak RSS (`ru_maxrss`) over
that baseline, unless said otherwise.

  plan  A synthetic train.csv in RSPECT's layout (12-hex-digit ids, the 17 real columns)
        with `--images` rows, `--slices-per-series` rows per series (RSPECT averages 246:
        1,790,594 images / 7,279 studies), and no DICOM files (listing opens none; the
        build's raw-file fingerprints see them absent). Measured: `plan_jobs` exactly as
        `medshard build` runs it (list, pseudonymize, split, plan, write plan files): peak
        RSS growth, and the driver's per-record state (the `_Listed` entries it holds,
        sized as benchmarks/scale.py sizes them) per image. For comparison, the same state
        for one record per DICOM (what a per-image listing would hold), from 20,000 such
        records.
  grow  `--series` and `--factor` x `--series` series of `--slices` slices each (pydicom's
        real CT_small.dcm slice rolled per slice, illustrative positions), each built with
        `run_build` (in-process Beam runner, WebDataset): peak RSS growth of both builds.
        Flat = the build's memory does not grow with the number of series.
  long  One series of `--slices` slices of pydicom-data's real 512 x 512 `693_UNCR.dcm`
        (rolled per slice, illustrative positions): `RSPECT.load` alone (tracemalloc peak:
        Python and numpy allocations) and `run_build` (WebDataset, then Parquet) against
        the same build of a 10-slice series (Beam's and the imports' own cost), as
        multiples of the volume's voxel bytes (slices x 512 x 512 x 2).
Nothing here is asserted; tests/sources/test_rspect.py asserts the fill-in-place
property on a 40-slice series.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD_PRELUDE = """
import json, logging, resource, sys, tracemalloc
logging.disable(logging.WARNING)
import apache_beam  # noqa: F401  (imported before the baseline)
from pathlib import Path
from medshard.pipeline import build as b
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""

PLAN_CHILD = CHILD_PRELUDE + """
import time
raw, out = Path(sys.argv[1]), Path(sys.argv[2])
config = b.BuildConfig(sources=["rspect"], data_root=raw, out=out, progress=False,
                       formats=("webdataset",))
sources = b._check_config(config)
base = peak()
t = time.time()
jobs, bad = b.plan_jobs(config, sources, "memory-benchmark")
seconds = time.time() - t
grown = peak() - base
from medshard.pipeline.shard_task import read_plan
records = [r for job in jobs for r in read_plan(job)]
images = sum(len(r.files) for r in records)
def state(recs):
    listed = [b._Listed(r.record_id, 1, b.json_bytes(r.model_dump(mode="json"))) for r in recs]
    return sum(sys.getsizeof(x) + sys.getsizeof(x.record_id) + sys.getsizeof(x.blob) + 8 + 64
               for x in listed)
per_series = state(records)
# the same images listed one record per DICOM (record id, subject, one file, 14 labels)
from medshard.schemas import RawRecord
sample = []
for r in records:
    for f, flag in zip(r.files, r.meta["pe_present_on_image"]):
        sample.append(RawRecord(record_id=f.rsplit("/", 1)[-1][:-4], subject_id=r.subject_id,
                                files=[f], source_labels={**r.source_labels,
                                "pe_present_on_image": flag}))
        if len(sample) >= 20000:
            break
    if len(sample) >= 20000:
        break
per_image = state(sample) / len(sample)
print(json.dumps({"images": images, "series": len(records), "shards": len(jobs),
                  "plan_seconds": seconds, "plan_peak_rss_growth": grown,
                  "driver_state_bytes": per_series,
                  "driver_state_bytes_per_image": per_series / images,
                  "per_image_listing_bytes_per_image": per_image}))
"""

BUILD_CHILD = CHILD_PRELUDE + """
raw, out, formats = Path(sys.argv[1]), Path(sys.argv[2]), tuple(sys.argv[3].split(","))
base = peak()
result = b.run_build(b.BuildConfig(sources=["rspect"], data_root=raw, out=out,
                                   formats=formats, progress=False))
counts = result.manifest.sources["rspect"].counts
print(json.dumps({"rss_before": base, "peak_rss_growth": peak() - base,
                  "written": sum(c.samples for c in counts.values()),
                  "quarantined": sum(c.quarantined for c in counts.values())}))
"""

LOAD_CHILD = CHILD_PRELUDE + """
from medshard.sources.ct.rspect import RSPECT
raw = Path(sys.argv[1])
src = RSPECT()
[rec] = list(src.list_records(raw))
base = peak()
tracemalloc.start()
[sample] = list(src.load(rec, raw))
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"voxel_bytes": sample.payloads["volume"].data.nbytes,
                  "shape": list(sample.payloads["volume"].data.shape),
                  "traced_peak": traced, "peak_rss_growth": peak() - base}))
"""


def _child(code: str, *args: str) -> dict:
    import os

    env = {**os.environ, "MEDSHARD_SECRET": "memory-benchmark",
           "MEDSHARD_HOME": tempfile.mkdtemp(prefix="medshard-home-")}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=False, env=env)
    if out.returncode != 0:
        raise SystemExit(f"measurement failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_synthetic_csv(path: Path, images: int, per_series: int) -> None:
    """train.csv with `images` rows in RSPECT's columns; ids are 12 hex digits."""
    import hashlib

    from medshard.sources.ct.rspect_fixture import CSV_COLUMNS, STUDY_COLUMNS

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        n_series = -(-images // per_series)
        row = 0
        for s in range(n_series):
            study = hashlib.sha256(f"study{s}".encode()).hexdigest()[:12]
            series = hashlib.sha256(f"series{s}".encode()).hexdigest()[:12]
            labels = ["1" if c == "negative_exam_for_pe" and s % 3 else "0"
                      for c in STUDY_COLUMNS]
            for k in range(min(per_series, images - row)):
                sop = hashlib.sha256(f"sop{s}/{k}".encode()).hexdigest()[:12]
                w.writerow([study, series, sop, "0", *labels])
                row += 1


def write_tree(root: Path, n_series: int, slices: int, image: str) -> int:
    """`n_series` series of `slices` real slices under root/rspect; returns voxel bytes of one."""
    from medshard.sources.ct import rspect_fixture as fx

    specs = [fx.SeriesSpec(f"bench-{image}-{slices}-{i}", image, slices, fx.AXIAL,
                           spacing_mm=1.0, labels=(("negative_exam_for_pe", 1),))
             for i in range(n_series)]
    rows = []
    for spec in specs:
        fx.write_series(root / "rspect", spec)
        rows += fx.csv_rows(spec)
    fx.write_csv(root / "rspect" / "train.csv", rows)
    side = 128 if image == "CT_small.dcm" else 512
    return slices * side * side * 2


def run_plan(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="medshard-plan-") as tmp:
        raw = Path(tmp) / "raw"
        write_synthetic_csv(raw / "rspect" / "train.csv", args.images, args.slices_per_series)
        return _child(PLAN_CHILD, str(raw), str(Path(tmp) / "out"))


def run_grow(args) -> dict:
    out = {}
    for n in (args.series, args.series * args.factor):
        with tempfile.TemporaryDirectory(prefix="medshard-grow-") as tmp:
            voxels = write_tree(Path(tmp) / "raw", n, args.slices, "CT_small.dcm")
            r = _child(BUILD_CHILD, str(Path(tmp) / "raw"), str(Path(tmp) / "out"), "webdataset")
            out[n] = {**r, "voxel_bytes_per_series": voxels}
    return out


def run_long(args) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="medshard-long-") as tmp:
        small = Path(tmp) / "small"
        write_tree(small, 1, 10, "693_UNCR.dcm")
        big = Path(tmp) / "big"
        voxels = write_tree(big, 1, args.slices, "693_UNCR.dcm")
        out["voxel_bytes"] = voxels
        out["load"] = _child(LOAD_CHILD, str(big / "rspect"))
        for fmt in ("webdataset", "parquet"):
            ref = _child(BUILD_CHILD, str(small), str(Path(tmp) / f"o-small-{fmt}"), fmt)
            got = _child(BUILD_CHILD, str(big), str(Path(tmp) / f"o-big-{fmt}"), fmt)
            out[fmt] = {"small_series_growth": ref["peak_rss_growth"],
                        "growth": got["peak_rss_growth"], "written": got["written"],
                        "growth_over_small": got["peak_rss_growth"] - ref["peak_rss_growth"]}
    return out


def report(results: dict) -> None:
    mb = 2**20
    if "plan" in results:
        p = results["plan"]
        print(f"plan: {p['images']:,} images in {p['series']:,} series, {p['shards']} shards; "
              f"plan_jobs peak RSS growth {p['plan_peak_rss_growth'] / mb:.0f} MB "
              f"({p['plan_seconds']:.0f} s); driver state {p['driver_state_bytes'] / mb:.0f} MB = "
              f"{p['driver_state_bytes_per_image']:.1f} B per image "
              f"(one record per DICOM: {p['per_image_listing_bytes_per_image']:.0f} B per image)")
    if "grow" in results:
        for n, r in results["grow"].items():
            print(f"grow: {n} series x {r['voxel_bytes_per_series'] / mb:.1f} MB voxels: build peak "
                  f"RSS growth {r['peak_rss_growth'] / mb:.0f} MB (RSS before "
                  f"{r['rss_before'] / mb:.0f} MB), {r['written']} written")
    if "long" in results:
        r = results["long"]
        v = r["voxel_bytes"]
        print(f"long: one series, {r['load']['shape']} int16, {v / mb:.0f} MB voxels")
        print(f"  load alone: tracemalloc peak {r['load']['traced_peak'] / mb:.0f} MB = "
              f"{r['load']['traced_peak'] / v:.2f}x voxels; RSS growth "
              f"{r['load']['peak_rss_growth'] / mb:.0f} MB = {r['load']['peak_rss_growth'] / v:.2f}x")
        for fmt in ("webdataset", "parquet"):
            f = r[fmt]
            print(f"  build ({fmt}): peak RSS growth {f['growth'] / mb:.0f} MB = "
                  f"{f['growth'] / v:.2f}x voxels; over a 10-slice build's "
                  f"{f['small_series_growth'] / mb:.0f} MB: {f['growth_over_small'] / mb:.0f} MB "
                  f"= {f['growth_over_small'] / v:.2f}x")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", nargs="?", default="all", choices=("all", "plan", "grow", "long"))
    p.add_argument("--images", type=int, default=2_000_000)
    p.add_argument("--slices-per-series", type=int, default=246)
    p.add_argument("--series", type=int, default=3)
    p.add_argument("--factor", type=int, default=10)
    p.add_argument("--slices", type=int, default=None,
                   help="slices per series (grow: 100, long: 1000)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    results: dict = {}
    if args.what in ("all", "plan"):
        results["plan"] = run_plan(args)
        report({"plan": results["plan"]})
    if args.what in ("all", "grow"):
        grow_args = argparse.Namespace(**{**vars(args), "slices": args.slices or 100})
        results["grow"] = run_grow(grow_args)
        report({"grow": results["grow"]})
    if args.what in ("all", "long"):
        long_args = argparse.Namespace(**{**vars(args), "slices": args.slices or 1000})
        results["long"] = run_long(long_args)
        report({"long": results["long"]})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
