"""README.md of a release: a dataset card in the Hugging Face convention.

A YAML header (licenses, configs/data_files per source and split, task and size
categories, gated-access fields for sources behind credentials or agreements), then the
release, its files and figures, and one section per source: what it is, license and
terms, access, counts beside the published CLIMB counts, labels, split policy, known
issues (the vocabulary's mapping notes) and citation.
"""

from __future__ import annotations

from typing import Any

import yaml

from medshard.schemas import Manifest, SourceInfo

_TASK_CATEGORIES = {
    "chest-xray": "image-classification", "mammography": "image-classification",
    "dermoscopy": "image-classification", "fundus": "image-classification",
    "pathology": "image-classification", "ct": "image-classification",
    "mri": "image-classification", "ultrasound": "video-classification",
    "video": "video-classification", "graph": "graph-ml", "text": "text-classification",
    "ehr": "tabular-classification", "oct": "image-classification",
}  # signals (ECG, EEG) have no Hub task category: "other"


def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
              (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
    for limit, name in bounds:
        if n < limit:
            return name
    return "n>100M"


def _hf_license(info: SourceInfo) -> str:
    return info.license.spdx.lower() if info.license.spdx else "other"


def card_header(manifest: Manifest, infos: dict[str, SourceInfo], data_format: str,
                shards_published: bool) -> dict[str, Any]:
    rel = manifest.release
    assert rel is not None
    licenses = sorted({_hf_license(i) for i in infos.values()})
    ext = "tar" if data_format == "webdataset" else "parquet"
    configs = []
    for slug in sorted(infos):
        present = {sh.split for sh in manifest.shards
                   if sh.source == slug and sh.format == data_format}
        splits = [s for s in ("train", "val", "test") if s in present]
        configs.append({"config_name": slug,
                        "data_files": [{"split": "validation" if s == "val" else s,
                                        "path": f"{data_format}/{slug}/{s}/*.{ext}"}
                                       for s in splits]})
    header: dict[str, Any] = {
        "pretty_name": f"{rel.name} {rel.version}",
        "license": licenses[0] if len(licenses) == 1 else "other",
        "configs": configs,
        "task_categories": sorted({_TASK_CATEGORIES.get(i.modality, "other")
                                   for i in infos.values()}),
        "size_categories": [size_category(sum(sh.samples for sh in manifest.shards
                                              if sh.format == data_format))],
        "tags": sorted({"medical", "clinical", "medshard"} | {i.modality for i in infos.values()}),
    }
    if len(licenses) > 1 or licenses == ["other"]:
        header["license_name"] = "per-source"
        header["license_link"] = "README.md#licenses"
        header["license_details"] = {s: (i.license.spdx or i.license.name) + (
            f" <{i.license.url}>" if i.license.url else "") for s, i in sorted(infos.items())}
    gated = {s: i for s, i in sorted(infos.items()) if i.access != "open"}
    if gated:
        header["extra_gated_prompt"] = (
            "Some sources of this release may only be used under their own terms: "
            + "; ".join(f"{s} ({i.access}: {i.license.name})" for s, i in gated.items())
            + ". Confirm that you hold that access.")
        header["extra_gated_fields"] = {
            f"I hold {i.access} access to {s} under {i.license.name}": "checkbox"
            for s, i in gated.items()}
    if not shards_published:
        header["tags"].append("recipe-only")
    return header


def _table(rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(str(c) for c in rows[0]) + " |",
           "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows[1:]]
    return out


def render_card(manifest: Manifest, infos: dict[str, SourceInfo],
                barriers: dict[str, str | None], notes: dict[str, str],
                figures: dict[str, list[str]], data_format: str) -> str:
    """The card's Markdown text. `figures`: "" (release-wide) or source -> PNG paths."""
    rel = manifest.release
    assert rel is not None
    header = card_header(manifest, infos, data_format, shards_published=True)
    lines = ["---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).rstrip(), "---",
             "", f"# {rel.name} {rel.version}", ""]
    total = sum(sh.samples for sh in manifest.shards if sh.format == data_format)
    lines += [
        f"A medshard {manifest.medshard_version} release of {len(infos)} public clinical "
        f"datasets: {total} samples, labels in the unified vocabulary "
        f"{manifest.vocabulary_version}, build config `{manifest.config_hash[:16]}`.",
        "",
        f"- version: {rel.version}" + (f" ({rel.date})" if rel.date else ""),
        f"- previous version: {rel.previous_version or 'none (first release)'}; "
        f"change: {rel.required_bump.upper()}",
        "- files: `manifest.json` (counts, shards, per-sample content hashes), `SHA256SUMS`, "
        "`croissant.json` (Croissant 1.1 + RAI), `RELEASE_NOTES.md`, `index.parquet`, "
        "shards as `webdataset/<source>/<split>/<source>-<split>-NNNNNN.tar` and "
        "`parquet/<source>/<split>/<source>-<split>-NNNNNN.parquet`",
        "- check a copy: `sha256sum -c SHA256SUMS` or `medshard verify URL`",
        "- load: `medshard.loaders` reads `manifest.json` from a path or URL; the Parquet "
        "shards also load with Hugging Face `datasets`, pyarrow or DuckDB",
        "- rebuild from your own raw copies: `medshard rebuild URL --data-root DIR --out REL`",
        "- 16-bit images: PNG members keep their bit depth (`payloads.<role>.bit_depth`); "
        "webdataset's `decode(\"pil\")` / `decode(\"l\")` clip them to 8 bits. Decode "
        "them with Pillow into numpy (`np.asarray(Image.open(io.BytesIO(data)))` gives "
        "uint16), e.g. `wds.WebDataset(urls).decode(png16)` with `png16` returning that "
        "array for keys ending in `.png`",
        "",
        "## Overview",
        "",
    ]
    lines += [f"![{p}]({p})" for p in figures.get("", [])]
    lines += ["", "## Licenses", ""]
    rows = [["source", "license", "terms", "access", "redistribution"]]
    for s, i in sorted(infos.items()):
        rows.append([s, i.license.spdx or i.license.name,
                     f"[{i.license.terms_version}]({i.license.url})" if i.license.url
                     else i.license.terms_version, i.access,
                     "allowed" if not barriers[s] else f"no: {barriers[s]}"])
    lines += _table(rows)
    for slug, info in sorted(infos.items()):
        lines += _source_section(manifest, slug, info, barriers[slug], notes.get(slug),
                                 figures.get(slug, []))
    return "\n".join(lines) + "\n"


def _source_section(manifest: Manifest, slug: str, info: SourceInfo, barrier: str | None,
                    note: str | None, figures: list[str]) -> list[str]:
    summary = manifest.sources[slug]
    rel = manifest.release
    assert rel is not None
    lic = info.license
    flags = [f for f, on in (("non-commercial", lic.non_commercial),
                             ("share-alike", lic.share_alike),
                             ("credentialed", lic.credentialed)) if on]
    lines = ["", f"## {slug}: {info.title}", "",
             f"{info.modality} data, upstream version {info.version}; tasks: "
             f"{', '.join(info.tasks)}. Homepage: {info.homepage}", "",
             "### License and terms", "",
             f"{lic.name}" + (f" (SPDX `{lic.spdx}`)" if lic.spdx else "")
             + (f", terms {lic.terms_version} at {lic.url}" if lic.url else "")
             + (f"; {', '.join(flags)}" if flags else "") + ".",
             "Redistribution: " + ("allowed under the license's conditions." if not barrier
                                   else f"not allowed ({barrier}); its payloads may not be "
                                   "published: `medshard rebuild` makes them from your own "
                                   "copy."),
             "", "### Access", "", f"Access kind: {info.access}."]
    from medshard.sources.registry import source_class  # the download route is declared there

    spec = source_class(slug).download
    if spec is not None:
        lines += ["", "```", *spec.describe(), "```"]
    lines += ["", "### Counts", ""]
    pub = info.published_counts  # declared by the source (SourceInfo.published_counts)
    rows = [["split", "listed", "written", "samples", "quarantined", "filtered",
             "published (CLIMB)"]]
    for split in ("train", "val", "test"):
        c = summary.counts.get(split)
        if c is None:
            continue
        n = getattr(pub, split) if pub else None
        rows.append([split, c.listed, c.written, c.samples, c.quarantined,
                     c.filtered, "-" if n is None else f"{n:,}"])
    lines += _table(rows)
    if pub:
        val_note = "; val is counted inside train" if pub.val is None else ""
        lines += ["", f"Published counts: {pub.unit}, {pub.reference}{val_note}."]
    reasons = {r: n for c in summary.counts.values() for r, n in c.filtered_reasons.items()}
    if reasons:
        lines += ["", "Filtered: " + "; ".join(f"{r} ({n})" for r, n in sorted(reasons.items()))
                  + "."]
    lines += ["", "### Labels", ""]
    splits = rel.splits.get(slug, {})
    labels = sorted({lab for sp in splits.values() for lab in sp.label_histogram})
    if labels:
        rows = [["label"] + [s for s in ("train", "val", "test") if s in splits]]
        for lab in labels:
            rows.append([f"`{lab}`"] + [splits[s].label_histogram.get(lab, 0)
                                         for s in ("train", "val", "test") if s in splits])
        lines += _table(rows)
    else:
        lines.append("No classification labels in the unified vocabulary.")
    lines += [""] + [f"![{p}]({p})" for p in figures]
    if barrier:
        lines += ["", "No sample images or traces are shown: the terms do not allow "
                      "redistributing derived data."]
    lines += ["", "### Split policy", "", info.split_policy + ".", "",
              "### Known issues", "",
              note or "No mapping notes in the vocabulary for this source.", "",
              "### Citation", "", "```", info.citation.strip(), "```"]
    return lines
