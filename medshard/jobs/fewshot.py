"""Few-shot manifests: per source, shot count and seed, the k-shot training subset per class.

For each source of a build, the *pool* is its `pool_split` samples (default "train")
whose subject never appears in its `test_split` (patient-disjoint from the test split).
For each class the source can express (its concepts in the unified vocabulary), the
pool's positives are put in an order fixed by (seed, source, class); the k-shot subset
of that class is the first k of that order. So a seed's 1-shot subset is inside its
8-shot subset, and reruns give the same keys. A class with fewer than k positives
gives all it has and is reported under `shortfall`. A source without classes (a
regression task) gets k samples of its pool under the pseudo-class `*`.

Output: `OUT/<source>/<k>shot-seed<seed>.json` (sorted `keys`, per-class keys,
shortfall, counts, the build's config hash) and `OUT/fewshot.json` listing them all.
A manifest is what the loader's `keys=` takes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pyarrow.parquet as pq

from medshard.errors import UserError
from medshard.schemas.vocabulary import load_vocabulary

FORMAT = "medshard.fewshot/1"
ALL = "*"


@dataclass(frozen=True)
class PoolRow:
    key: str
    subject: str
    labels: tuple[str, ...]


def read_index(build: str) -> tuple[list[dict[str, Any]], str]:
    """(rows of the build's index.parquet, the manifest's config hash); build is a dir or URL."""
    base = str(build).rstrip("/")
    try:
        with fsspec.open(f"{base}/manifest.json", "rb") as fh:
            manifest = json.loads(fh.read())
        with fsspec.open(f"{base}/index.parquet", "rb") as fh:
            table = pq.read_table(fh, columns=["key", "source", "split", "subject", "labels"])
    except (FileNotFoundError, OSError) as e:
        raise UserError(f"{build} is not a medshard build (no manifest.json/index.parquet): {e}") from e
    except ValueError as e:  # pyarrow: a column is missing
        raise UserError(f"{build}/index.parquet lacks a key, source, split, subject or labels "
                        f"column ({e}); rebuild with this medshard") from e
    return table.to_pylist(), str(manifest.get("config_hash", ""))


def source_pool(
    rows: Iterable[dict[str, Any]], source: str, pool_split: str, test_split: str
) -> tuple[list[PoolRow], int]:
    """(the source's pool rows sorted by key, pool rows dropped for sharing a test subject)."""
    mine = [r for r in rows if r["source"] == source]
    test_subjects = {r["subject"] for r in mine if r["split"] == test_split}
    pool = [r for r in mine if r["split"] == pool_split]
    kept = [
        PoolRow(r["key"], r["subject"], tuple(r["labels"] or ()))
        for r in pool
        if r["subject"] not in test_subjects
    ]
    return sorted(kept, key=lambda r: r.key), len(pool) - len(kept)


def class_orders(pool: Sequence[PoolRow], classes: Sequence[str], source: str, seed: int) -> dict[str, list[str]]:
    """Per class, its positive keys in the order fixed by (seed, source, class)."""
    if not classes:
        keys = [r.key for r in pool]
        random.Random(f"{seed}/{source}/{ALL}").shuffle(keys)
        return {ALL: keys}
    out = {}
    for cls in classes:
        keys = [r.key for r in pool if cls in r.labels]
        random.Random(f"{seed}/{source}/{cls}").shuffle(keys)  # str seeds hash with sha512
        out[cls] = keys
    return out


def fewshot_manifest(
    orders: dict[str, list[str]], shots: int, seed: int, source: str, info: dict[str, Any]
) -> dict[str, Any]:
    """The manifest of one (source, shots, seed): per-class picks and their union."""
    classes = {cls: sorted(keys[:shots]) for cls, keys in orders.items()}
    shortfall = {cls: shots - len(keys) for cls, keys in classes.items() if len(keys) < shots}
    keys = sorted({k for ks in classes.values() for k in ks})
    return {"format": FORMAT, "source": source, "shots": shots, "seed": seed, **info,
            "classes": classes, "shortfall": shortfall, "keys": keys}


def write_fewshot(
    build: str,
    shots: Sequence[int],
    seeds: Sequence[int],
    out: Path,
    sources: Sequence[str] | None = None,
    pool_split: str = "train",
    test_split: str = "test",
) -> list[dict[str, Any]]:
    """Write every (source, shots, seed) manifest under `out`; returns the listing."""
    if any(k < 1 for k in shots):
        raise UserError("--shots must be positive integers")
    rows, config_hash = read_index(build)
    present = sorted({r["source"] for r in rows})
    chosen = list(sources) if sources else present
    unknown = sorted(set(chosen) - set(present))
    if unknown:
        raise UserError(f"sources {unknown} are not in {build}; it has {present}")
    vocab = load_vocabulary()
    listing = []
    for source in chosen:
        pool, dropped = source_pool(rows, source, pool_split, test_split)
        if not pool:
            raise UserError(f"{source} has no {pool_split!r} samples to draw from; "
                            "choose --pool-split")
        info = {"build_config_hash": config_hash, "pool_split": pool_split,
                "test_split": test_split, "pool_size": len(pool),
                "pool_dropped_test_subjects": dropped}
        classes = vocab.source_concepts(source)
        for seed in seeds:
            orders = class_orders(pool, classes, source, seed)
            for k in shots:
                manifest = fewshot_manifest(orders, k, seed, source, info)
                path = out / source / f"{k}shot-seed{seed}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
                listing.append({"source": source, "shots": k, "seed": seed,
                                "path": str(path.relative_to(out)), "samples": len(manifest["keys"]),
                                "shortfall": manifest["shortfall"]})
    out.mkdir(parents=True, exist_ok=True)
    (out / "fewshot.json").write_text(
        json.dumps({"format": FORMAT, "build": str(build), "manifests": listing}, indent=1) + "\n"
    )
    return listing
