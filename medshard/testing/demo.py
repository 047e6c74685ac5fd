"""`medshard demo OUT`: write each bundled miniature source, then build them all.

Layout: OUT/raw/<source>/ (the raw files, in each dataset's real layout) and
OUT/build/ (manifest.json, index.parquet, quarantine.jsonl, shards in both formats).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from medshard.pipeline.build import BuildConfig, BuildResult, run_build

# source slug -> demo module with write_raw(root)
DEMO_WRITERS = {
    "ptb-xl": "medshard.sources.ecg.ptbxl_fixture",
    "chexpert": "medshard.sources.cxr.chexpert_fixture",
    "vindr-cxr": "medshard.sources.cxr.vindr_cxr_fixture",
    "tuab": "medshard.sources.eeg.tuab_fixture",
    "tuev": "medshard.sources.eeg.tuev_fixture",
    "kits23": "medshard.sources.ct.kits23_fixture",
    "echonet-dynamic": "medshard.sources.ultrasound.echonet_fixture",
}


def write_demo_raw(raw_root: Path, sources: list[str] | None = None) -> list[str]:
    written = []
    for slug, module in DEMO_WRITERS.items():
        if sources is not None and slug not in sources:
            continue
        target = raw_root / slug
        if not target.exists():
            importlib.import_module(module).write_raw(target)
        written.append(slug)
    return written


def run_demo(out: Path, workers: int = 1, progress: bool = True) -> BuildResult:
    slugs = write_demo_raw(out / "raw")
    config = BuildConfig(
        sources=slugs,
        data_root=out / "raw",
        out=out / "build",
        formats=("webdataset", "parquet"),
        workers=workers,
        shard_size=4 << 20,
        progress=progress,
    )
    return run_build(config)
