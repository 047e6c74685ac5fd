"""Peak memory of MIMIC-IV's event partitioning vs the size of labevents.

    PYTHONPATH=. python benchmarks/mimic_iv_events.py [--rows 250000 1000000 4000000]

For each size, writes a MIMIC-IV root (hosp/admissions + patients + labevents.csv.gz in
the real columns; rows generated, synthetic) with 20,000 admissions, then in a fresh
process (imports done before measuring): lists the admissions and loads 50 of them through
the `mimic-iv` source (the first load builds the per-process store). Reports the growth
of the process's peak RSS (VmHWM) over the imports, the store's size on disk and the
time, beside pandas reading the same labevents.csv.gz whole (what a loader that groups in
memory does). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

N_ADMISSIONS = 20_000

# VmHWM (peak RSS of this process image): ru_maxrss would carry the parent's peak
# across fork + exec
HWM = """
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
"""

MEASURE = HWM + """
import json, sys, time
from pathlib import Path
from medshard.schemas import RawRecord
from medshard.sources import get_source
root = Path(sys.argv[1])
src = get_source("mimic-iv")
base = hwm()
t0 = time.perf_counter()
records = [r for r in src.list_records(root) if isinstance(r, RawRecord)]
t_list = time.perf_counter() - t0
listed = hwm()
n = 0
for r in records[:: max(1, len(records) // 50)][:50]:
    for s in src.load(r, root):
        n += len(s.payloads["ehr"].data["time"])
t_all = time.perf_counter() - t0
store = src._store(root).path
peak = hwm()
print(json.dumps({"records": len(records), "events_loaded": n, "rss_growth": peak - base,
                  "rss_listing": listed - base,
                  "list_s": t_list, "total_s": t_all, "store_bytes": store.stat().st_size}))
"""

PANDAS = HWM + """
import json, sys
import pandas as pd
base = hwm()
df = pd.read_csv(sys.argv[1])
peak = hwm()
print(json.dumps({"rss_growth": peak - base, "rows": len(df)}))
"""


def write_root(root: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    (root / "hosp").mkdir(parents=True, exist_ok=True)
    hadm = np.arange(20_000_000, 20_000_000 + N_ADMISSIONS)
    subject = 10_000_000 + hadm % 7919
    admit = pd.Timestamp("2150-01-01") + pd.to_timedelta(
        rng.integers(0, 3650 * 86400, N_ADMISSIONS), unit="s")
    los = pd.to_timedelta(rng.integers(3600, 20 * 86400, N_ADMISSIONS), unit="s")
    fmt = "%Y-%m-%d %H:%M:%S"
    pd.DataFrame({
        "subject_id": subject, "hadm_id": hadm, "admittime": admit.strftime(fmt),
        "dischtime": (admit + los).strftime(fmt), "deathtime": "",
        "admission_type": "EW EMER.", "admit_provider_id": "P0", "admission_location":
        "EMERGENCY ROOM", "discharge_location": "HOME", "insurance": "Other",
        "language": "ENGLISH", "marital_status": "SINGLE", "race": "WHITE",
        "edregtime": "", "edouttime": "", "hospital_expire_flag": 0,
    }).to_csv(root / "hosp" / "admissions.csv.gz", index=False)
    subjects = np.unique(subject)
    pd.DataFrame({"subject_id": subjects, "gender": "F", "anchor_age": 60,
                  "anchor_year": 2150, "anchor_year_group": "2017 - 2019", "dod": ""}
                 ).to_csv(root / "hosp" / "patients.csv.gz", index=False)
    chunk = 1_000_000
    path = root / "hosp" / "labevents.csv.gz"
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        idx = rng.integers(0, N_ADMISSIONS, n)
        t = admit[idx] + pd.to_timedelta(rng.integers(-7200, 10 * 86400, n), unit="s")
        value = rng.normal(100, 20, n).round(1)
        pd.DataFrame({
            "labevent_id": np.arange(start, start + n), "subject_id": subject[idx],
            "hadm_id": hadm[idx], "specimen_id": idx, "itemid": rng.choice(
                [50912, 50931, 51222, 51301, 51265], n), "charttime": t.strftime(fmt),
            "storetime": t.strftime(fmt), "value": value.astype(str), "valuenum": value,
            "valueuom": "mg/dL", "ref_range_lower": 70, "ref_range_upper": 100, "flag": "",
            "priority": "ROUTINE", "comments": "",
        }).to_csv(path, index=False, header=start == 0, mode="a" if start else "w",
                  compression={"method": "gzip", "mtime": 0})


def run(code: str, arg: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[250_000, 1_000_000, 4_000_000])
    args = ap.parse_args()
    print("| labevents rows | gz size | peak RSS growth: listing | + store build and 50 loads "
          "| store on disk | time | pandas read_csv of labevents: peak RSS growth |")
    print("|---|---|---|---|---|---|---|")
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "mimic-iv"
            write_root(root, rows)
            gz = (root / "hosp" / "labevents.csv.gz").stat().st_size
            ours = run(MEASURE, str(root))
            ref = run(PANDAS, str(root / "hosp" / "labevents.csv.gz"))
            print(f"| {rows:,} | {gz / 2**20:.1f} MiB | {ours['rss_listing'] / 2**20:.0f} MiB | "
                  f"{ours['rss_growth'] / 2**20:.0f} MiB | "
                  f"{ours['store_bytes'] / 2**20:.0f} MiB | {ours['total_s']:.0f} s "
                  f"(listing {ours['list_s']:.1f} s) | {ref['rss_growth'] / 2**20:.0f} MiB |",
                  flush=True)


if __name__ == "__main__":
    main()
