"""`medshard demo OUT`: write every registered source's fixture, then build them all.

Layout: OUT/raw/<source>/ (the raw files, in each dataset's real layout, including the
records each fixture breaks on purpose) and OUT/build/ (manifest.json, index.parquet,
quarantine.jsonl, shards in both formats). Nothing here names a source: a source with a
`fixture` is in the demo.
"""

from __future__ import annotations

import sys
from pathlib import Path

from medshard.pipeline.build import BuildConfig, BuildResult, run_build
from medshard.sources.registry import available_sources, source_class
from medshard.testing.kit import write_fixtures


def demo_sources() -> list[str]:
    """Registered sources that declare a fixture."""
    return [s for s in available_sources() if source_class(s).fixture]


def run_demo(out: Path, workers: int = 1, progress: bool = True) -> BuildResult:
    """Write the fixtures and build them; with `progress`, says what it does on stderr."""
    slugs = demo_sources()

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    fixtures = {}
    for n, slug in enumerate(slugs, 1):
        there = (out / "raw" / slug).exists()
        say(f"[{n}/{len(slugs)}] {'kept' if there else 'writing'} the miniature raw copy of "
            f"{slug} in {out / 'raw' / slug}")
        fixtures.update(write_fixtures([slug], out / "raw"))
    say(f"building {len(slugs)} sources into {out / 'build'} (WebDataset tar and Parquet)")
    config = BuildConfig(
        sources=slugs,
        data_root=out / "raw",
        out=out / "build",
        formats=("webdataset", "parquet"),
        workers=workers,
        shard_size=4 << 20,
        source_options={s: dict(f.options) for s, f in fixtures.items() if f.options},
        progress=progress,
    )
    return run_build(config)


def next_steps(build: Path) -> list[str]:
    """What to try after the demo, as lines to print."""
    return [
        "",
        "Next, try:",
        f"  medshard inspect {build}      # counts per source and split, beside the published",
        f"  medshard validate {build}     # re-check every shard against the manifest",
        "  # load it in PyTorch (needs the torch extra: pip install \"medshard[torch]\"):",
        "  python -c \"import medshard; ds = medshard.load('" + str(build)
        + "', split='train', sources='ptb-xl'); s = next(iter(ds)); "
          "print(s['key'], s['signal'].shape, ds.label_names[:3])\"",
    ]
