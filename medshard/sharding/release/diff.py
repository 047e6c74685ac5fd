"""What changed between two releases (or builds), from their manifests alone.

Samples are matched by key within a source: added, removed, changed (same key and split,
new content hash) and moved between splits (a leak risk: a model may have trained on
a sample that is now in its test set). The version bump the change requires follows
Croissant's rule: PATCH = same data re-serialized, MINOR = additions only, MAJOR = data
changed, removed or moved between splits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medshard.schemas import Manifest, ReleaseSplit

BUMPS = ("patch", "minor", "major")


@dataclass
class SourceDiff:
    added: dict[str, list[str]] = field(default_factory=dict)
    removed: dict[str, list[str]] = field(default_factory=dict)
    changed: dict[str, list[str]] = field(default_factory=dict)
    moved: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.moved or self.labels)


@dataclass
class ReleaseDiff:
    a_version: str | None
    b_version: str | None
    sources: dict[str, SourceDiff]
    sources_added: list[str]
    sources_removed: list[str]
    schema: tuple[str, str] | None
    vocabulary: tuple[str, str] | None
    config: dict[str, list[Any]]
    required_bump: str
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "a_version": self.a_version,
            "b_version": self.b_version,
            "sources": {s: {"added": d.added, "removed": d.removed, "changed": d.changed,
                            "moved": d.moved, "label_histogram_delta": d.labels}
                        for s, d in sorted(self.sources.items()) if not d.empty()},
            "sources_added": self.sources_added,
            "sources_removed": self.sources_removed,
            "schema_version": list(self.schema) if self.schema else None,
            "vocabulary_version": list(self.vocabulary) if self.vocabulary else None,
            "config": self.config,
            "required_bump": self.required_bump,
            "reasons": self.reasons,
        }


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def content_splits(manifest: Manifest, base: str | Path | None,
                   progress: bool = False) -> dict[str, dict[str, ReleaseSplit]]:
    """source -> split -> content: from a release's manifest, or hashed from a local build."""
    if manifest.release is not None:
        return manifest.release.splits
    if base is None or not Path(base, "manifest.json").is_file():
        raise ValueError(f"{base} is a build without per-sample content hashes; "
                         "diff builds from a local directory or release them first")
    from medshard.sharding.release.content import hash_build, split_digest

    hashed = hash_build(Path(base), manifest, progress=progress)
    return {src: {sp: ReleaseSplit(samples=len(c.hashes), digest=split_digest(c.hashes),
                                   label_histogram=dict(sorted(c.labels.items())),
                                   sample_hashes=c.hashes)
                  for sp, c in splits.items()}
            for src, splits in hashed.items()}


def _major(version: str) -> str:
    return version.split(".")[0]


def diff_manifests(a: Manifest, b: Manifest,
                   a_content: dict[str, dict[str, ReleaseSplit]],
                   b_content: dict[str, dict[str, ReleaseSplit]]) -> ReleaseDiff:
    sources: dict[str, SourceDiff] = {}
    reasons: list[str] = []
    for slug in sorted(set(a_content) & set(b_content)):
        d = SourceDiff()
        where_a = {k: (sp, h) for sp, c in a_content[slug].items() for k, h in c.sample_hashes.items()}
        where_b = {k: (sp, h) for sp, c in b_content[slug].items() for k, h in c.sample_hashes.items()}
        for key in sorted(set(where_b) - set(where_a)):
            d.added.setdefault(where_b[key][0], []).append(key)
        for key in sorted(set(where_a) - set(where_b)):
            d.removed.setdefault(where_a[key][0], []).append(key)
        for key in sorted(set(where_a) & set(where_b)):
            (sa, ha), (sb, hb) = where_a[key], where_b[key]
            if sa != sb:
                d.moved.append({"key": key, "from": sa, "to": sb, "content_changed": ha != hb})
            elif ha != hb:
                d.changed.setdefault(sa, []).append(key)
        for split in sorted(set(a_content[slug]) | set(b_content[slug])):
            ha = a_content[slug].get(split)
            hb = b_content[slug].get(split)
            la = ha.label_histogram if ha else {}
            lb = hb.label_histogram if hb else {}
            delta = {lab: lb.get(lab, 0) - la.get(lab, 0) for lab in sorted(set(la) | set(lb))
                     if lb.get(lab, 0) != la.get(lab, 0)}
            if delta:
                d.labels[split] = delta
        sources[slug] = d
        for what, n in (("changed", sum(map(len, d.changed.values()))),
                        ("removed", sum(map(len, d.removed.values()))),
                        ("moved between splits", len(d.moved)),
                        ("added", sum(map(len, d.added.values())))):
            if n:
                reasons.append(f"{slug}: {n} samples {what}")
    added = sorted(set(b_content) - set(a_content))
    removed = sorted(set(a_content) - set(b_content))
    reasons += [f"source {s} added" for s in added] + [f"source {s} removed" for s in removed]
    schema = (a.schema_version, b.schema_version) if a.schema_version != b.schema_version else None
    vocab = ((a.vocabulary_version, b.vocabulary_version)
             if a.vocabulary_version != b.vocabulary_version else None)
    fa, fb = _flatten(a.config), _flatten(b.config)
    config = {k: [fa.get(k), fb.get(k)] for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}

    major = (removed or (schema and _major(schema[0]) != _major(schema[1]))
             or any(d.changed or d.removed or d.moved for d in sources.values()))
    minor = added or schema or any(d.added for d in sources.values())
    if schema:
        reasons.append(f"manifest schema {schema[0]} -> {schema[1]}")
    bump = "major" if major else "minor" if minor else "patch"
    if bump == "patch":
        reasons.append("same samples, same content: re-serialized"
                       + (f" ({len(config)} config values differ)" if config else ""))
    return ReleaseDiff(
        a_version=a.release.version if a.release else None,
        b_version=b.release.version if b.release else None,
        sources=sources, sources_added=added, sources_removed=removed, schema=schema,
        vocabulary=vocab, config=config, required_bump=bump, reasons=reasons,
    )


def parse_version(text: str) -> tuple[int, int, int]:
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"version {text!r} is not MAJOR.MINOR.PATCH, e.g. 1.2.0")
    return int(parts[0]), int(parts[1]), int(parts[2])


def version_understates(previous: str, new: str, bump: str) -> str | None:
    """Why `new` is not a valid successor of `previous` for a change needing `bump`, or None."""
    p, n = parse_version(previous), parse_version(new)
    if n <= p:
        return f"version {new} is not above the previous {previous}"
    if bump == "major" and n[0] == p[0]:
        return f"the change is MAJOR: use {p[0] + 1}.0.0 or above, not {new}"
    if bump == "minor" and n[:2] == p[:2]:
        return f"the change is MINOR: use {p[0]}.{p[1] + 1}.0 or above, not {new}"
    return None


def format_diff(d: ReleaseDiff) -> str:
    lines = [f"{d.a_version or 'build'} -> {d.b_version or 'build'}: "
             f"requires a {d.required_bump.upper()} version bump"]
    for slug, sd in sorted(d.sources.items()):
        if sd.empty():
            continue
        lines.append(f"{slug}:")
        for what, per in (("added", sd.added), ("removed", sd.removed), ("changed", sd.changed)):
            for split, keys in sorted(per.items()):
                lines.append(f"  {what:<8} {split:<5} {len(keys):>6}  {', '.join(keys[:5])}"
                             + (" ..." if len(keys) > 5 else ""))
        for m in sd.moved:
            lines.append(f"  moved    {m['key']}: {m['from']} -> {m['to']}"
                         + (" (content changed too)" if m["content_changed"] else "")
                         + "  LEAK RISK: a model trained on the old split saw it")
        for split, delta in sorted(sd.labels.items()):
            lines.append(f"  labels   {split:<5} "
                         + ", ".join(f"{lab} {n:+d}" for lab, n in delta.items()))
    for s in d.sources_added:
        lines.append(f"source added: {s}")
    for s in d.sources_removed:
        lines.append(f"source removed: {s}")
    if d.schema:
        lines.append(f"manifest schema: {d.schema[0]} -> {d.schema[1]}")
    if d.vocabulary:
        lines.append(f"vocabulary: {d.vocabulary[0]} -> {d.vocabulary[1]}")
    for k, (va, vb) in d.config.items():
        lines.append(f"config {k}: {va!r} -> {vb!r}")
    return "\n".join(lines)
