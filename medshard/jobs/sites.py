"""Leave-one-site-out key lists: per source and acquisition site, the keys of the held-out
site and of every other site, from a finished build (no rebuild).

Multi-site data leak site effects (scanner, protocol, population) into a random split:
ABIDE's 17 sites are the known case. The build records each sample's site (the index's
`site` column, from the source's meta). For each source and each site S this writes

    OUT/<source>/<S>/held_out.json   {"keys": the samples of site S, every split}
    OUT/<source>/<S>/train.json      {"keys": the samples of every other site}
    OUT/sites.json                   the listing: source, site, sample counts, paths

A file is what the loader's `keys=` takes, so one build serves every fold:

    MedshardDataset(build, split=None, keys="OUT/abide/NYU/train.json")  # train on the rest
    MedshardDataset(build, split=None, keys="OUT/abide/NYU/held_out.json")  # test on NYU

Samples without a site are in no fold and are counted under `no_site`; a source whose
samples carry no site at all is refused. A subject sits at one site, so no subject is in
both lists of a fold (checked).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fsspec
import pyarrow.parquet as pq

from medshard.errors import UserError

FORMAT = "medshard.sites/1"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def read_site_index(build: str) -> tuple[list[dict[str, Any]], str]:
    """(key, source, subject, site of every sample; the build's config hash)."""
    base = str(build).rstrip("/")
    try:
        with fsspec.open(f"{base}/manifest.json", "rb") as fh:
            manifest = json.loads(fh.read())
        with fsspec.open(f"{base}/index.parquet", "rb") as fh:
            table = pq.read_table(fh, columns=["key", "source", "subject", "site"])
    except (FileNotFoundError, OSError) as e:
        raise UserError(f"{build} is not a medshard build (no manifest.json/index.parquet): {e}") \
            from e
    except ValueError as e:  # pyarrow: a column is missing
        raise UserError(f"{build}/index.parquet has no site column ({e}); rebuild with this "
                        "medshard") from e
    return table.to_pylist(), str(manifest.get("config_hash", ""))


def site_folds(rows: Sequence[dict[str, Any]], source: str) -> tuple[dict[str, list[str]], int]:
    """({site: its keys, sorted}, samples without a site) of one source."""
    by_site: dict[str, list[str]] = defaultdict(list)
    no_site = 0
    subject_site: dict[str, str] = {}
    for r in rows:
        if r["source"] != source:
            continue
        if r["site"] is None:
            no_site += 1
            continue
        seen = subject_site.setdefault(r["subject"], r["site"])
        if seen != r["site"]:
            raise UserError(f"{source}: one subject has samples at sites {seen} and {r['site']}; "
                            "leave-one-site-out would leak it")
        by_site[r["site"]].append(r["key"])
    return {s: sorted(k) for s, k in sorted(by_site.items())}, no_site


def write_leave_site_out(build: str, out: Path, sources: Sequence[str] | None = None
                         ) -> list[dict[str, Any]]:
    """Write every (source, site) fold under `out`; returns the listing."""
    rows, config_hash = read_site_index(build)
    present = sorted({r["source"] for r in rows})
    chosen = list(sources) if sources else [s for s in present
                                            if any(r["site"] for r in rows if r["source"] == s)]
    unknown = sorted(set(chosen) - set(present))
    if unknown:
        raise UserError(f"sources {unknown} are not in {build}; it has {present}")
    listing = []
    for source in chosen:
        folds, no_site = site_folds(rows, source)
        if len(folds) < 2:
            raise UserError(f"{source} records {len(folds)} site(s) in {build}; leave-one-site-"
                            "out needs two or more (its samples carry no `site`?)")
        for site, held in folds.items():
            rest = sorted(k for s, keys in folds.items() if s != site for k in keys)
            folder = out / source / _SAFE.sub("_", site)
            folder.mkdir(parents=True, exist_ok=True)
            common = {"format": FORMAT, "source": source, "site": site,
                      "build_config_hash": config_hash}
            for name, keys, role in (("held_out", held, "held-out site"),
                                     ("train", rest, "every other site")):
                (folder / f"{name}.json").write_text(json.dumps(
                    {**common, "role": role, "keys": keys}, indent=1, sort_keys=True) + "\n")
            listing.append({"source": source, "site": site, "held_out": len(held),
                            "train": len(rest), "no_site": no_site,
                            "path": str(folder.relative_to(out))})
    out.mkdir(parents=True, exist_ok=True)
    (out / "sites.json").write_text(json.dumps(
        {"format": FORMAT, "build": str(build), "folds": listing}, indent=1) + "\n")
    return listing
