"""`medshard release` and `medshard rebuild`: freeze a build into an immutable release folder.

REL/
  manifest.json      the build's manifest plus a `release` section: version, previous
                     version, per source and split every sample's content hash and a label
                     histogram, adapter digests (raw receipts' digests come from the build)
  SHA256SUMS         every other file, `sha256sum -c` format
  croissant.json     Croissant 1.1 + RAI
  README.md          the dataset card; figures under plots/
  RELEASE_NOTES.md   the user's notes and the changes since the previous release
  index.parquet, quarantine.jsonl, <source>/<split>/*.tar|*.parquet   from the build

The folder is assembled under a temporary name next to REL and renamed when complete; an
existing REL is never touched. Same build + same arguments => same bytes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from medshard.errors import UserError
from medshard.schemas import Manifest, ReleaseInfo, ReleaseSplit, SourceInfo
from medshard.sharding.manifest import read_manifest, write_manifest
from medshard.sharding.release.content import CONTENT_HASH_METHOD, hash_build, split_digest
from medshard.sharding.release.diff import (
    diff_manifests,
    format_diff,
    parse_version,
    version_understates,
)

SUMS = "SHA256SUMS"
MANIFEST = "manifest.json"
CROISSANT = "croissant.json"
CARD = "README.md"
NOTES = "RELEASE_NOTES.md"
# what a recipe holds: everything needed to describe and rebuild, no sample data
RECIPE_FILES = (MANIFEST, SUMS, CROISSANT, CARD, NOTES)


@dataclass(frozen=True)
class Previous:
    """The release this one follows: its version, manifest digest and what changed since."""

    version: str
    manifest_sha256: str
    bump: str
    changes: str


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def source_infos(manifest: Manifest) -> tuple[dict[str, SourceInfo], dict[str, str | None]]:
    """Each source's declaration and why its terms forbid redistribution (None: allowed)."""
    from medshard.sources.registry import UnknownSource, source_class
    from medshard.sources.terms import redistribution_barrier

    infos: dict[str, SourceInfo] = {}
    barriers: dict[str, str | None] = {}
    for slug in sorted(manifest.sources):
        try:
            cls = source_class(slug)
        except UnknownSource:
            raise UserError(f"source {slug} of this build is unknown to medshard "
                            f"{manifest.medshard_version}; install the version that built it"
                            ) from None
        infos[slug] = cls.info
        barriers[slug] = redistribution_barrier(cls.info, cls.download)
    return infos, barriers


def adapter_digests(slugs: list[str]) -> dict[str, str]:
    """source -> `module@sha256[:16]` of the adapter's code, so a code change is visible."""
    from medshard.sources.registry import source_class

    out = {}
    for slug in slugs:
        cls = source_class(slug)
        code = Path(inspect.getsourcefile(cls) or "").read_bytes()
        out[slug] = f"{cls.__module__}@{hashlib.sha256(code).hexdigest()[:16]}"
    return out


def read_release_file(url: str, name: str) -> bytes:
    from medshard.loaders.remote import read_url

    base = url.rstrip("/")
    if base.endswith(MANIFEST):
        base = base[: -len(MANIFEST)].rstrip("/")
    return read_url(f"{base}/{name}")


def load_manifest_at(url: str) -> tuple[Manifest, bytes]:
    from pydantic import ValidationError

    try:
        data = read_release_file(url, MANIFEST)
    except (FileNotFoundError, OSError) as exc:
        raise UserError(f"no {MANIFEST} at {url}: give a release or build folder or URL "
                        f"({type(exc).__name__})") from None
    try:
        return Manifest.model_validate_json(data), data
    except ValidationError as exc:
        raise UserError(f"{url}/{MANIFEST} is not a medshard manifest "
                        f"({exc.error_count()} errors)") from None


def previous_from(url: str, manifest: Manifest, content: dict[str, dict[str, ReleaseSplit]],
                  version: str) -> Previous:
    """Diff against the previous release; refuse a version number that understates it."""
    prev, raw = load_manifest_at(url)
    if prev.release is None:
        raise UserError(f"--previous {url} is a build, not a release; give the previous release")
    d = diff_manifests(prev, manifest, prev.release.splits, content)
    why = version_understates(prev.release.version, version, d.required_bump)
    if why:
        raise UserError(f"{why} (changes since {prev.release.version}: "
                        f"{'; '.join(d.reasons)}); see `medshard diff`")
    return Previous(prev.release.version, hashlib.sha256(raw).hexdigest(), d.required_bump,
                    format_diff(d))


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed: copy
        shutil.copyfile(src, dst)


def _notes_text(name: str, version: str, user_notes: str | None,
                previous: Previous | None) -> str:
    lines = [f"# {name} {version}", ""]
    if user_notes:
        lines += [user_notes.strip(), ""]
    if previous is None:
        lines += ["First release."]
    else:
        lines += [f"## Changes since {previous.version} ({previous.bump.upper()})", "",
                  "```", previous.changes, "```"]
    return "\n".join(lines) + "\n"


def _figures(tmp: Path, manifest: Manifest, build: Path, infos: dict[str, SourceInfo],
             barriers: dict[str, str | None]) -> dict[str, list[str]]:
    from medshard.sharding.release import plots

    rel = manifest.release
    assert rel is not None
    figures: dict[str, list[str]] = {"": ["plots/samples-per-split.png"]}
    plots.plot_samples_per_split(manifest, tmp / figures[""][0])
    for slug, info in sorted(infos.items()):
        figures[slug] = []
        splits = rel.splits.get(slug, {})
        hist = {sp: c.label_histogram for sp, c in splits.items()}
        if any(hist.values()):
            path = f"plots/{slug}-labels.png"
            plots.plot_label_prevalence(slug, hist, {sp: c.samples for sp, c in splits.items()},
                                        tmp / path)
            figures[slug].append(path)
        if barriers[slug]:
            continue
        if info.modality in plots.IMAGE_MODALITIES:
            samples = plots.first_samples(build, manifest, slug, plots.THUMBNAILS)
            path = f"plots/{slug}-thumbnails.png"
            if plots.plot_thumbnails(slug, info.modality, samples, tmp / path):
                figures[slug].append(path)
        elif info.modality in plots.SIGNAL_MODALITIES:
            samples = plots.first_samples(build, manifest, slug, 1)
            if samples:
                path = f"plots/{slug}-trace.png"
                plots.plot_trace(slug, samples[0], tmp / path)
                figures[slug].append(path)
    return figures


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())


def create_release(
    build: Path,
    version: str,
    out: Path,
    *,
    name: str = "medshard-release",
    notes: str | None = None,
    previous: str | Previous | None = None,
    date: str | None = None,
    notes_text: str | None = None,
    progress: bool = True,
) -> Manifest:
    """Write the release folder `out` from the build in `build`; returns its manifest.

    `previous` is a release path/URL (diffed, and the version checked against it) or a
    `Previous` recorded earlier (a rebuild). `notes_text` replaces the generated notes.
    """
    try:
        parse_version(version)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    out = Path(out)
    if out.exists():
        raise UserError(f"{out} exists; a release folder is never overwritten: choose another --out")
    if not (build / MANIFEST).is_file():
        raise UserError(f"no {MANIFEST} in {build}: give the --out directory of a build")
    manifest = read_manifest(build / MANIFEST)
    if manifest.release is not None:
        raise UserError(f"{build} is already a release ({manifest.release.version}); "
                        "release a build directory")
    from medshard.sharding.validate import validate_build

    problems = validate_build(build, manifest)
    if problems:
        raise UserError(f"the build does not match its manifest ({problems[0]}, "
                        f"{len(problems)} problems): run the build again")
    infos, barriers = source_infos(manifest)

    hashed = hash_build(build, manifest, progress=progress)
    content = {src: {sp: ReleaseSplit(samples=len(c.hashes), digest=split_digest(c.hashes),
                                      label_histogram=dict(sorted(c.labels.items())),
                                      sample_hashes=dict(sorted(c.hashes.items())))
                     for sp, c in sorted(splits.items())}
               for src, splits in sorted(hashed.items())}
    if isinstance(previous, str):
        previous = previous_from(previous, manifest, content, version)
    manifest.release = ReleaseInfo(
        name=name, version=version, date=date,
        previous_version=previous.version if previous else None,
        previous_manifest_sha256=previous.manifest_sha256 if previous else None,
        required_bump=previous.bump if previous else "initial",
        content_hash=CONTENT_HASH_METHOD,
        adapters=adapter_digests(sorted(manifest.sources)),
        splits=content,
    )

    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)  # left by an interrupted `medshard release` of this folder
    tmp.mkdir(parents=True)
    sums: dict[str, str] = {}
    for shard in tqdm(manifest.shards, desc="link shards", unit="shard", disable=not progress):
        _link_or_copy(build / shard.path, tmp / shard.path)
        sums[shard.path] = shard.sha256  # checked by validate_build above
    for extra in ("index.parquet", "quarantine.jsonl"):
        _link_or_copy(build / extra, tmp / extra)
        sums[extra] = sha256_file(tmp / extra)
    write_manifest(tmp / MANIFEST, manifest)
    sums[MANIFEST] = sha256_file(tmp / MANIFEST)

    from medshard.schemas.vocabulary import load_vocabulary
    from medshard.sharding.release.card import render_card
    from medshard.sharding.release.croissant import croissant_document

    figures = _figures(tmp, manifest, build, infos, barriers)
    vocab_notes = load_vocabulary().data.notes
    data_format = "parquet" if any(s.format == "parquet" for s in manifest.shards) else "webdataset"
    _write(tmp / CARD, render_card(manifest, infos, barriers, vocab_notes, figures, data_format))
    _write(tmp / NOTES, notes_text if notes_text is not None
           else _notes_text(name, version, notes, previous))
    for path in [CARD, NOTES] + [p for ps in figures.values() for p in ps]:
        sums[path] = sha256_file(tmp / path)
    files = {p: ((tmp / p).stat().st_size, h) for p, h in sums.items()}
    doc = croissant_document(manifest, infos, barriers, files, tmp / "index.parquet",
                             name=name, url=None)
    _write(tmp / CROISSANT, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    sums[CROISSANT] = sha256_file(tmp / CROISSANT)
    _write(tmp / SUMS, "".join(f"{h}  {p}\n" for p, h in sorted(sums.items())))
    if out.exists():
        raise UserError(f"{out} appeared while the release was written; it was left alone "
                        f"and the new release is in {tmp}")
    os.rename(tmp, out)
    return manifest


def parse_sums(text: str) -> dict[str, str]:
    """`sha256sum` output -> path -> sha256; raises ValueError on a malformed line."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, path = line.partition("  ")
        if not sep or len(digest) != 64 or not path:
            raise ValueError(f"line {n} is not `<sha256>  <path>`")
        out[path.lstrip("*")] = digest
    return out


def build_config_from_manifest(manifest: Manifest, data_root: Path, out: Path,
                               raw: dict[str, Path], progress: bool) -> Any:
    """The BuildConfig whose output is the build a release was made from."""
    from medshard.pipeline.build import BuildConfig
    from medshard.schemas.standards import SignalSpec

    cfg = manifest.config
    specs = {m: SignalSpec(**{**v, "channels": tuple(v["channels"]) if v.get("channels") else None})
             for m, v in cfg["signal_specs"].items()}
    flt = cfg.get("source_filter") or {}
    return BuildConfig(
        sources=sorted(cfg["sources"]),
        data_root=data_root,
        out=out,
        raw=raw,
        formats=tuple(cfg["formats"]),
        shard_size=cfg["shard_size"],
        row_group_bytes=cfg["row_group_bytes"],
        parquet_payload_compression=cfg["parquet_payload_compression"],
        source_options={s: v["options"] for s, v in cfg["sources"].items()},
        signal_specs=specs,
        split_fractions=cfg["split_fractions"],
        progress=progress,
        license_allow=flt.get("license_allow"),
        access_allow=flt.get("access"),
    )


def rebuild_release(recipe: str, data_root: Path, out: Path, raw: dict[str, Path] | None = None,
                    work: Path | None = None, progress: bool = True) -> list[str]:
    """Rebuild a release from raw files and its recipe; returns the files that differ.

    An empty list means the new release is byte-identical to the recipe's SHA256SUMS.
    """
    from medshard.pipeline.build import run_build
    from medshard.pipeline.pseudonym import installation_secret, key_id

    manifest, _ = load_manifest_at(recipe)
    rel = manifest.release
    if rel is None:
        raise UserError(f"{recipe} is a build, not a release: `medshard release` it first")
    if key_id(installation_secret()) != manifest.pseudonym_key_id:
        raise UserError(
            f"this installation's secret (key {key_id(installation_secret())}) is not the one "
            f"the release used ({manifest.pseudonym_key_id}): subject pseudonyms and splits "
            "would differ; set MEDSHARD_SECRET to the releasing lab's secret")
    out = Path(out)
    if out.exists():
        raise UserError(f"{out} exists; a release folder is never overwritten: choose another --out")
    expected = parse_sums(read_release_file(recipe, SUMS).decode())
    notes = read_release_file(recipe, NOTES).decode()
    work = Path(work) if work else out.with_name(f".{out.name}.build")
    config = build_config_from_manifest(manifest, data_root, work, raw or {}, progress)
    result = run_build(config)
    if result.manifest.config_hash != manifest.config_hash:
        raise UserError(f"the rebuilt config hash {result.manifest.config_hash[:12]} is not the "
                        f"release's {manifest.config_hash[:12]}: use medshard "
                        f"{manifest.medshard_version}")
    previous = None
    if rel.previous_version:
        previous = Previous(rel.previous_version, rel.previous_manifest_sha256 or "",
                            rel.required_bump, "")
    create_release(work, rel.version, out, name=rel.name, previous=previous, date=rel.date,
                   notes_text=notes, progress=progress)
    got = parse_sums((out / SUMS).read_text())
    return sorted(p for p in set(expected) | set(got) if expected.get(p) != got.get(p))
