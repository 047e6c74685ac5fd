"""What the exact-duplicate report costs: hashing every payload, and the driver's memory.

Not a test: prints figures. Run from the repository root:
    python benchmarks/duplicates.py [--payloads 1000000] [--mb 256]

1. sha256 throughput over payload bytes: the time each build adds per byte written
   (every payload member is hashed once as it is written; --dedupe hashes it twice).
2. `duplicate_report` over N synthetic payload hashes (1 % repeated), read part by part as
   the build reads them: wall time and the driver's peak traced memory.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
import tracemalloc

from medshard.pipeline.duplicates import duplicate_report


def hashing_throughput(mb: int) -> float:
    data = os.urandom(mb << 20)
    start = time.perf_counter()
    hashlib.sha256(data).hexdigest()
    return mb / (time.perf_counter() - start)


def report_cost(n: int, per_part: int = 1000) -> tuple[int, float, float]:
    # one payload in 100 repeats its predecessor's bytes
    digests = [hashlib.sha256(str(i - (i % 100 == 1)).encode()).hexdigest() for i in range(n)]

    def entries():
        for start in range(0, n, per_part):
            rows = [[f"brain-tumor-mri-7023_Training_glioma_Tr-gl_{i:07d}", "image.jpg",
                     digests[i]] for i in range(start, min(start + per_part, n))]
            yield "brain-tumor-mri-7023", "train", rows

    tracemalloc.start()
    start = time.perf_counter()
    report = duplicate_report(entries)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return report.groups, elapsed, peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--payloads", type=int, default=1_000_000)
    ap.add_argument("--mb", type=int, default=256)
    args = ap.parse_args()
    print(f"sha256: {hashing_throughput(args.mb):.0f} MB/s over {args.mb} MB of payload bytes")
    groups, elapsed, peak = report_cost(args.payloads)
    print(f"duplicate_report over {args.payloads:,} payload hashes: {groups:,} groups, "
          f"{elapsed:.1f} s (under tracemalloc), driver peak {peak:.0f} MiB")


if __name__ == "__main__":
    main()
