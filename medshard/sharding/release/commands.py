"""CLI commands of releases: release, diff, publish, verify, rebuild (registered by cli.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medshard.errors import UserError


def cmd_release(args: argparse.Namespace) -> int:
    from medshard.sharding.release.make import create_release

    notes = None
    if args.notes:
        try:
            notes = Path(args.notes).read_text()
        except OSError as exc:
            raise UserError(f"cannot read --notes {args.notes}: {exc.strerror}") from None
    m = create_release(Path(args.build), args.version, Path(args.out), name=args.name,
                       notes=notes, previous=args.previous, date=args.date,
                       progress=not args.no_progress)
    rel = m.release
    assert rel is not None
    n = sum(s.samples for sp in rel.splits.values() for s in sp.values())
    print(f"release {rel.name} {rel.version} in {args.out}: {len(rel.splits)} sources, "
          f"{n} samples, change {rel.required_bump.upper()}"
          + (f" since {rel.previous_version}" if rel.previous_version else ""))
    return 0


def _load_for_diff(where: str, progress: bool):
    from medshard.sharding.release.diff import content_splits
    from medshard.sharding.release.make import load_manifest_at

    manifest, _ = load_manifest_at(where)
    try:
        return manifest, content_splits(manifest, where, progress=progress)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def cmd_diff(args: argparse.Namespace) -> int:
    from medshard.sharding.release.diff import diff_manifests, format_diff

    a, ca = _load_for_diff(args.a, not args.no_progress)
    b, cb = _load_for_diff(args.b, not args.no_progress)
    d = diff_manifests(a, b, ca, cb)
    if args.json:
        sys.stdout.write(json.dumps(d.as_dict(), indent=2, sort_keys=True) + "\n")
    else:
        print(format_diff(d))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from medshard.sharding.release.publish import publish_release

    report = publish_release(Path(args.release), args.url, recipe_only=args.recipe_only,
                             progress=not args.no_progress)
    print(f"published to {args.url}: {len(report.sent)} files sent, "
          f"{len(report.skipped)} already there" + (" (recipe only)" if args.recipe_only else ""))
    return _print_verify(report.verify)


def _print_verify(report) -> int:
    for bad in report.bad:
        print(f"BAD {bad}")
    if report.bad:
        print(f"{len(report.bad)} problems in {report.url}")
        return 1
    extra = (f"; {report.skipped_payloads} payload files not published (recipe only)"
             if report.recipe_only else "")
    print(f"verified {report.checked} files, {report.bytes / 1e6:.1f} MB at {report.url}{extra}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from medshard.sharding.release.verify import verify_release

    return _print_verify(verify_release(args.url, progress=not args.no_progress))


def cmd_rebuild(args: argparse.Namespace) -> int:
    from medshard.cli import _parse_pairs
    from medshard.sharding.release.make import rebuild_release

    raw = {k: Path(v) for k, v in _parse_pairs(args.raw, "--raw")}
    differ = rebuild_release(args.recipe, Path(args.data_root), Path(args.out), raw=raw,
                             work=Path(args.work) if args.work else None,
                             progress=not args.no_progress)
    if differ:
        for p in differ:
            print(f"DIFFERS {p}")
        print(f"{len(differ)} files differ from the recipe's SHA256SUMS")
        return 1
    print(f"rebuilt {args.out}: byte-identical to the recipe's SHA256SUMS")
    return 0


def add_commands(sub) -> None:
    """Register the release commands on the `medshard` subparsers."""
    p = sub.add_parser("release", help="freeze a build into a versioned, checksummed release")
    p.add_argument("build", help="build directory")
    p.add_argument("--version", required=True, help="MAJOR.MINOR.PATCH")
    p.add_argument("--out", required=True, help="release folder (must not exist)")
    p.add_argument("--notes", help="Markdown file with release notes")
    p.add_argument("--previous", metavar="REL_OR_URL",
                   help="the previous release: diffed, and the version checked against it")
    p.add_argument("--name", default="medshard-release", help="dataset name in card and Croissant")
    p.add_argument("--date", help="release date (YYYY-MM-DD) for the card and Croissant")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("diff", help="what changed between two releases or builds (manifests only)")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("publish", help="copy a release to an fsspec URL or hf://datasets/ORG/NAME")
    p.add_argument("release")
    p.add_argument("url")
    p.add_argument("--recipe-only", action="store_true",
                   help="card, manifest, Croissant, notes and sums only: no sample data")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("verify", help="check a release (path or URL) against SHA256SUMS and manifest")
    p.add_argument("url")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("rebuild", help="rebuild a release from raw data and its recipe")
    p.add_argument("recipe", help="release or recipe folder or URL")
    p.add_argument("--data-root", required=True, help="raw files of each source at DIR/<source>/")
    p.add_argument("--raw", action="append", default=[], metavar="SOURCE=PATH")
    p.add_argument("--out", required=True, help="the new release folder (must not exist)")
    p.add_argument("--work", help="build directory (default: next to --out)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_rebuild)
