"""What `verify="once"` costs: a local build read with each loader `verify` setting.

    PYTHONPATH=. python benchmarks/verify_once.py [--records 600] [--rounds 3] [--workdir DIR]

Builds a PTB-XL-like build (the fixture's real ECG, `--records` records, WebDataset) with
the pipeline, then times one in-process pass over every sample per setting, decoded as in
training: the default ("remote": local shards unhashed), "once" on a process's first
epoch (every shard hashed when first opened), "once" on a later epoch (nothing hashed),
and True (hashed on every read). Best of `--rounds` interleaved passes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir")
    args = parser.parse_args()

    from medshard.loaders import ShardDataset
    from medshard.loaders.remote import VERIFIED_ONCE
    from medshard.pipeline.build import BuildConfig, run_build
    from medshard.sources.ecg.ptbxl_fixture import write_raw

    work = Path(args.workdir or tempfile.mkdtemp(prefix="medshard-verify-"))
    raw, out = work / "raw", work / "build"
    if not (out / "manifest.json").exists():
        write_raw(raw / "ptb-xl", n_records=args.records)
        run_build(BuildConfig(sources=["ptb-xl"], data_root=raw, out=out, progress=False,
                              shard_size=16 << 20))
    size = sum(p.stat().st_size for p in out.rglob("*.tar"))

    def one_pass(verify: bool | str, first_epoch: bool) -> tuple[int, float]:
        if first_epoch:
            VERIFIED_ONCE.clear()
        ds = ShardDataset(str(out), split=None, shuffle=False, verify=verify)
        started = time.perf_counter()
        n = sum(1 for _ in ds)
        return n, time.perf_counter() - started

    settings = [("remote (default)", "remote", True), ("once, first epoch", "once", True),
                ("once, later epoch", "once", False), ("True (every read)", True, True)]
    best: dict[str, tuple[int, float]] = {}
    one_pass("once", True)  # warm the page cache and mark every shard hashed
    for _ in range(args.rounds):
        for label, verify, first in settings:
            n, t = one_pass(verify, first)
            if label not in best or t < best[label][1]:
                best[label] = (n, t)
    print(f"{size / 1e6:.1f} MB of tar shards, {best[settings[0][0]][0]} samples, best of "
          f"{args.rounds}")
    base = best[settings[0][0]][1]
    for label, _, _ in settings:
        n, t = best[label]
        print(f"{label:<20} {n / t:>9.0f} samples/s {size / t / 1e6:>8.0f} MB/s "
              f"{t / base:>6.2f}x the default's time")
    if not args.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
