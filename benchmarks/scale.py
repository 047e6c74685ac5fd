"""Scale on paper: per-record cost of each source kind on its fixture, extrapolated to CLIMB.

    python benchmarks/scale.py                          # every built-in source, ~2-4 min
    python benchmarks/scale.py --sources ptb-xl chexpert --repeats 5
    python benchmarks/scale.py --json m.json            # also keep the measurements
    python benchmarks/scale.py --from-json m.json       # the tables again, no measuring

Each source is measured in its own process (so peak memory is its own): the fixture is
written, the driver plans it (listing + pseudonymizing + planning, as `medshard build`
does), then every shard task runs in-process `--repeats` times (after one warm-up run)
with `time.process_time()` around them. Measured per record: CPU seconds of the shard
task, raw bytes read, shard bytes written (WebDataset); per process: resident set after
imports and its peak (`ru_maxrss`) over the shard tasks, which is what one worker
needs for this source; per listed record: the driver's planning state (the `_Listed`
entry it keeps until the plan is written), from object sizes.

**Extrapolations are labelled as such**: record counts are CLIMB's (Table 6 / A.2, as
/work/shared/SOURCES.md reproduces them); CPU time is assumed linear in records and
perfectly parallel over workers (no I/O waits, no start-up), and fixture records are
real recordings but some are cut shorter than the dataset's (EEG, video: see each
fixture's declared parts), so those rows are lower bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# CLIMB's record counts (SOURCES.md §1: Table 6 / A.2 totals; TUAB/TUEV: Table 8 files /
# sessions, the unit a medshard record is), and what one medshard record is there
CLIMB_RECORDS: dict[str, tuple[int, str]] = {
    "ptb-xl": (21_837, "ECG record"),
    "chexpert": (212_498, "radiograph"),
    "vindr-cxr": (18_000, "DICOM"),
    "kits23": (478, "CT case"),
    "echonet-dynamic": (10_247, "echo video"),
    "tuab": (2_993, "EDF file (276 eval + 2,717 train)"),
    "tuev": (518, "EEG session"),
    "cpsc": (6_192, "ECG record"),
    "georgia": (20_689, "ECG record"),
    "chapman-shaoxing": (40_258, "ECG record"),
    "moabb-mi": (18, "session (9 subjects x 2)"),
    "hugadb": (364, "recording file"),
    "iiic": (134_450, "10-s EEG segment"),
}
CLIMB_RAW_TB = 19  # CLIMB's raw size as the project's cluster issue states it
DRIVER_RECORDS = 2_000_000  # "the driver's planning memory at 2M records" (RSPECT: 1.79M)
WORKERS = (8, 64, 512)


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(slug: str, repeats: int) -> dict:
    """Everything for one source, in this process (run as a child of `main`)."""
    import logging

    logging.disable(logging.WARNING)
    from medshard.pipeline import build as b
    from medshard.pipeline.shard_task import read_plan, run_shard_job
    from medshard.testing.kit import write_fixtures

    work = Path(tempfile.mkdtemp(prefix="medshard-scale-"))
    raw = work / "raw"
    write_fixtures([slug], raw)

    def plan(out: Path):
        config = b.BuildConfig(sources=[slug], data_root=raw, out=out, progress=False,
                               formats=("webdataset",), shard_size=64 << 20)
        sources = b._check_config(config)
        return b.plan_jobs(config, sources, "scale-benchmark")[0]

    jobs = plan(work / "warm")
    for job in jobs:  # warm-up: imports, codec tables, first-call caches
        run_shard_job(job)
    rss_ready = _rss_bytes()

    records = [r for job in jobs for r in read_plan(job)]
    root = raw / slug
    read_bytes = sum((root / f).stat().st_size for r in records for f in r.files
                     if (root / f).is_file())
    cpu = 0.0
    written = samples = 0
    for i in range(repeats):
        jobs = plan(work / f"run{i}")
        start = time.process_time()
        parts = [run_shard_job(job) for job in jobs]
        cpu += time.process_time() - start
        written = sum(s["bytes"] for p in parts for s in p["shards"])
        samples = sum(p["samples"] for p in parts)
    n = len(records)

    # the driver's per-record planning state: one _Listed (id, size estimate, JSON blob)
    listed = [b._Listed(r.record_id, 1, b.json_bytes(r.model_dump(mode="json")))
              for r in records]
    per_listed = sum(sys.getsizeof(x) + sys.getsizeof(x.record_id) + sys.getsizeof(x.blob)
                     + 8 + 64  # the list slot + the `seen` set entry
                     for x in listed) / max(n, 1)
    return {
        "source": slug,
        "records": n,
        "samples": samples,
        "cpu_s_per_record": cpu / repeats / max(n, 1),
        "read_bytes_per_record": read_bytes / max(n, 1),
        "written_bytes_per_record": written / max(n, 1),
        "rss_after_imports_mb": rss_ready / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "driver_bytes_per_record": per_listed,
    }


def run_all(slugs: list[str], repeats: int) -> list[dict]:
    rows = []
    for slug in slugs:
        started = time.monotonic()
        child = subprocess.run([sys.executable, __file__, "--measure", slug,
                                "--repeats", str(repeats)], capture_output=True, text=True,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if child.returncode != 0:
            print(f"{slug}: not measured: {child.stderr.strip().splitlines()[-1:]}",
                  file=sys.stderr)
            continue
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(f"{slug}: measured in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return rows


def _cpu_per_gb(r: dict) -> float:
    return r["cpu_s_per_record"] / max(r["read_bytes_per_record"], 1) * 1e9


def _ratio(r: dict) -> float:
    return r["written_bytes_per_record"] / max(r["read_bytes_per_record"], 1)


def _mb(x: float) -> str:
    return f"{x / 1e6:.3g}"


def tables(rows: list[dict]) -> str:
    out = ["**Measured on the fixtures** (one process per source, WebDataset, "
           "this machine):", "",
           "| source | records | CPU ms / record | raw MB / record | shard MB / record "
           "| CPU s / raw GB | vCPU-h / raw TB | shard / raw bytes "
           "| RSS after imports (MB) | peak RSS (MB) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        per_gb = _cpu_per_gb(r)
        out.append(f"| {r['source']} | {r['records']} | {r['cpu_s_per_record'] * 1e3:.1f} | "
                   f"{_mb(r['read_bytes_per_record'])} | {_mb(r['written_bytes_per_record'])} | "
                   f"{per_gb:.3g} | {per_gb * 1000 / 3600:.3g} | {_ratio(r):.2f} | "
                   f"{r['rss_after_imports_mb']:.0f} | {r['peak_rss_mb']:.0f} |")
    out += ["", "**Extrapolated** to CLIMB's record counts (linear in records, perfectly "
            "parallel; a lower bound where fixture records are shorter than the "
            "dataset's):", "",
            "| source | CLIMB records (unit) | core-hours | " +
            " | ".join(f"wall h on {n} workers" for n in WORKERS) + " | output TB |",
            "|---|---|---:|" + "---:|" * len(WORKERS) + "---:|"]
    total_h = total_tb = 0.0
    for r in rows:
        count, unit = CLIMB_RECORDS.get(r["source"], (0, "?"))
        core_h = r["cpu_s_per_record"] * count / 3600
        tb = r["written_bytes_per_record"] * count / 1e12
        total_h += core_h
        total_tb += tb
        walls = " | ".join(f"{core_h / n:.3g}" for n in WORKERS)
        out.append(f"| {r['source']} | {count:,} ({unit}) | {core_h:.3g} | {walls} | "
                   f"{tb:.3g} |")
    walls = " | ".join(f"{total_h / n:.3g}" for n in WORKERS)
    out.append(f"| **all measured** | | **{total_h:.3g}** | {walls} | **{total_tb:.3g}** |")
    per_gb = sorted(_cpu_per_gb(r) for r in rows)
    ratios = sorted(_ratio(r) for r in rows)
    med, hi = per_gb[len(per_gb) // 2], per_gb[-1]
    gb = CLIMB_RAW_TB * 1000
    out += ["", f"**Extrapolated by bytes** to CLIMB's {CLIMB_RAW_TB} TB of raw files (CPU "
            "linear in raw bytes): at the median kind's "
            f"{med:.3g} CPU s / raw GB, {gb * med / 3600:,.0f} core-hours: "
            + ", ".join(f"{gb * med / 3600 / n:,.1f} h on {n} workers" for n in WORKERS)
            + f"; at the costliest kind's {hi:.3g} CPU s / GB, {gb * hi / 3600:,.0f} "
            f"core-hours. Output at the median shard/raw ratio ({ratios[len(ratios) // 2]:.2f}): "
            f"{CLIMB_RAW_TB * ratios[len(ratios) // 2]:.1f} TB."]
    worst = max(rows, key=lambda r: r["driver_bytes_per_record"])
    out += ["", f"**Driver planning memory at {DRIVER_RECORDS:,} records** (extrapolated "
            "from the per-record planning state): " + ", ".join(
                f"{r['source']} {r['driver_bytes_per_record'] * DRIVER_RECORDS / 2**30:.2f} GiB"
                for r in rows) + f"; the largest is {worst['source']}'s "
            f"({worst['driver_bytes_per_record']:.0f} bytes per record)."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sources", nargs="*", help="default: every built-in source")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of every shard task")
    p.add_argument("--measure", help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the measurements to this file")
    p.add_argument("--from-json", help="print the tables of measurements saved with --json")
    args = p.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeats)))
        return
    if args.from_json:
        print(tables(json.loads(Path(args.from_json).read_text())))
        return
    from medshard.sources.registry import BUILTIN_SOURCES

    rows = run_all(args.sources or sorted(BUILTIN_SOURCES), args.repeats)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    print(tables(rows))


if __name__ == "__main__":
    main()
