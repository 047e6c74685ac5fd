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
    "ptb-xl": "medshard.demo.ptbxl",
    "chexpert": "medshard.demo.chexpert",
    "vindr-cxr": "medshard.demo.vindr_cxr",
    "tuab": "medshard.demo.tuab",
    "tuev": "medshard.demo.tuev",
    "kits23": "medshard.demo.kits23",
    "echonet-dynamic": "medshard.demo.echonet",
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
