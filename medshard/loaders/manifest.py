"""Reading a build's manifest and index, and choosing the shards a dataset reads."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from medshard.errors import UserError
from medshard.loaders.remote import ShardRef, is_local, local_path, read_url
from medshard.schemas.models import SCHEMA_VERSION, Manifest

FORMATS = ("auto", "webdataset", "parquet")


def manifest_url(source: str) -> tuple[str, str]:
    """(manifest URL, base URL shard paths are relative to) for a build dir, manifest or URL."""
    source = str(source).rstrip("/")
    if source.endswith(".json"):
        return source, source.rsplit("/", 1)[0] if "/" in source else "."
    return f"{source}/manifest.json", source


def read_manifest(source: str) -> tuple[Manifest, str]:
    """The build's manifest and its base URL; UserError when there is none."""
    url, base = manifest_url(source)
    try:
        text = read_url(url)
    except (FileNotFoundError, OSError) as e:
        raise UserError(
            f"no medshard manifest at {url}: pass a build directory, its manifest.json, or a URL"
        ) from e
    try:
        manifest = Manifest.model_validate_json(text)
    except ValueError as e:  # pydantic's ValidationError: not JSON, or not a manifest
        first = e.errors()[0] if hasattr(e, "errors") else {"loc": (), "msg": str(e)}
        where = ".".join(str(x) for x in first["loc"])
        raise UserError(
            f"{url} is not a medshard manifest ({where + ': ' if where else ''}{first['msg']}); "
            "pass the manifest.json a medshard build wrote, or rebuild"
        ) from None
    if manifest.schema_version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise UserError(
            f"the build at {base} has sample schema {manifest.schema_version}; this medshard "
            f"reads schema {SCHEMA_VERSION} (payload descriptors keyed by role): rebuild it"
        )
    return manifest, base


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def _stem(path: str) -> str:
    """A shard path without its format folder and extension: the same for tar and Parquet."""
    stem = path.rsplit(".", 1)[0]
    head, _, rest = stem.partition("/")
    return rest if head in ("webdataset", "parquet") else stem


@dataclass
class Selection:
    """The shards one dataset reads, with per-shard sample counts after filters."""

    shards: list[ShardRef]
    counts: list[int]
    keep_keys: list[frozenset[str] | None] = field(default_factory=list)

    def sources(self) -> list[str]:
        return sorted({s.source for s in self.shards})

    def fingerprint(self) -> list[Any]:
        return [[s.path, s.sha256, c] for s, c in zip(self.shards, self.counts, strict=True)]


def select_shards(
    manifest: Manifest,
    base: str,
    split: str | Iterable[str] | None,
    sources: str | Iterable[str] | None,
    modalities: str | Iterable[str] | None,
    fmt: str,
) -> list[ShardRef]:
    """The manifest's shards matching split/source/modality, one format per source."""
    if fmt not in FORMATS:
        raise UserError(f"format={fmt!r} is not one of {FORMATS}")
    splits, wanted, mods = _as_set(split), _as_set(sources), _as_set(modalities)
    if wanted is not None:
        unknown = wanted - set(manifest.sources)
        if unknown:
            raise UserError(
                f"sources {sorted(unknown)} are not in this build; it has {sorted(manifest.sources)}"
            )
    by_source: dict[str, dict[str, list[Any]]] = {}
    for sh in manifest.shards:
        if splits is not None and sh.split not in splits:
            continue
        if wanted is not None and sh.source not in wanted:
            continue
        summary = manifest.sources.get(sh.source)
        if mods is not None and (summary is None or summary.modality not in mods):
            continue
        by_source.setdefault(sh.source, {}).setdefault(sh.format, []).append(sh)
    refs: list[ShardRef] = []
    for src in sorted(by_source):
        formats = by_source[src]
        if fmt == "auto":
            chosen = formats.get("webdataset") or formats.get("parquet") or []
        else:
            chosen = formats.get(fmt, [])
            if not chosen:
                raise UserError(
                    f"source {src} has no {fmt} shards in this build; use format='auto'"
                )
        for sh in sorted(chosen, key=lambda s: s.path):
            url = f"{base}/{sh.path}" if base != "." else sh.path
            refs.append(
                ShardRef(sh.path, url, sh.format, sh.source, sh.split, sh.samples, sh.bytes, sh.sha256)
            )
    return refs


def _read_index(base: str) -> Any:
    url = f"{base}/index.parquet"
    try:
        if is_local(url):
            return pq.read_table(local_path(url))
        return pq.read_table(io.BytesIO(read_url(url)))
    except (FileNotFoundError, OSError) as e:
        raise UserError(
            f"label or row filters need the build's index.parquet, not found at {url}"
        ) from e


def read_key_list(source: str | Iterable[str]) -> frozenset[str]:
    """Sample keys to keep: given as keys, or the path/URL of a JSON file whose `keys`
    lists them (a few-shot manifest written by `medshard fewshot`)."""
    if not isinstance(source, str):
        return frozenset(source)
    try:
        data = json.loads(read_url(source))
    except (FileNotFoundError, OSError, ValueError) as e:
        raise UserError(f"cannot read the key list {source} ({e}); give a few-shot manifest") from e
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise UserError(f"{source} has no `keys` list; give a manifest written by medshard fewshot")
    return frozenset(data["keys"])


def apply_sample_filters(
    refs: list[ShardRef],
    base: str,
    labels: str | Iterable[str] | None,
    row_filter: Callable[[Mapping[str, Any]], bool] | None,
    keys: frozenset[str] | None = None,
) -> Selection:
    """Per-shard counts and kept keys for label / row / key filters, computed from index.parquet.

    Knowing the counts before reading keeps every rank's sample count equal.
    Without such filters the manifest's counts are used and no index is read.
    Every one of `keys` must be in the selected shards (UserError otherwise).
    """
    wanted = _as_set(labels)
    if wanted is None and row_filter is None and keys is None:
        return Selection(refs, [r.samples for r in refs], [None] * len(refs))
    table = _read_index(base)
    names = table.column_names
    shard_cols = [c for c in ("shard_webdataset", "shard_parquet", "shard") if c in names]
    if "key" not in names or "labels" not in names or not shard_cols:
        raise UserError("index.parquet lacks key, labels or shard columns; rebuild with this medshard")
    stems = {_stem(r.path): i for i, r in enumerate(refs)}
    kept: list[set[str]] = [set() for _ in refs]
    for row in table.to_pylist():
        i = next(
            (stems[_stem(row[c])] for c in shard_cols if row[c] and _stem(row[c]) in stems), None
        )
        if i is None:
            continue
        if keys is not None and row["key"] not in keys:
            continue
        if wanted is not None and not wanted.intersection(row["labels"] or []):
            continue
        if row_filter is not None:
            if isinstance(row.get("meta_json"), str):
                row["meta"] = json.loads(row["meta_json"])
            if not row_filter(row):
                continue
        kept[i].add(row["key"])
    if keys is not None:
        missing = keys.difference(*kept)
        if missing:
            raise UserError(
                f"{len(missing)} of {len(keys)} listed keys are not in the selected shards "
                f"(e.g. {sorted(missing)[0]}); select their split and sources"
            )
    return Selection(refs, [len(k) for k in kept], [frozenset(k) for k in kept])
