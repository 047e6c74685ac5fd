"""The `medshard consent` and `medshard download` subcommands.

`add_commands(subparsers)` registers both on the CLI's argparse subparsers; each
handler takes the parsed Namespace and returns an exit code (0 ok, 1 a transfer
failed, 2 via UserError for what a person must fix). No option takes a
credential: those come from the environment, ~/.netrc or a provider's token file.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from medshard.errors import UserError


def _source_class(slug: str):
    from medshard.sources.registry import UnknownSource, source_class

    try:
        return source_class(slug)
    except UnknownSource as e:
        raise UserError(str(e)) from None


def cmd_consent(args: argparse.Namespace) -> int:
    """Show a source's terms and record acceptance, list the ledger, or revoke."""
    from medshard.acquire import consent

    if args.list:
        return _list_consents()
    if not args.source:
        raise UserError("name a source (`medshard consent ptb-xl`) or use --list")
    info = _source_class(args.source).info
    if args.revoke:
        if consent.consent_status(info) != "accepted":
            print(f"{info.name}: no current consent to revoke")
            return 0
        consent.record_revocation(info)
        print(f"{info.name}: consent revoked; downloads are refused until you accept again")
        return 0
    print(consent.describe_terms(info))
    status = consent.consent_status(info)
    if status == "accepted":
        print(f"{info.name}: you already accepted these terms ({consent.ledger_path()})")
        return 0
    if status == "stale":
        print("The terms changed since you last accepted them; please read them again.")
    if not args.accept:
        if not sys.stdin.isatty():
            raise UserError(f"no terminal to confirm on; after reading the terms, run "
                            f"`medshard consent {info.name} --accept`")
        answer = input(f"Accept the terms of {info.name} above? Type 'yes' to accept: ")
        if answer.strip().lower() != "yes":
            print(f"{info.name}: not accepted; nothing recorded")
            return 1
    entry = consent.record_acceptance(info)
    print(f"{info.name}: accepted {entry.terms_name} (version {entry.terms_version}) as "
          f"{entry.user} at {entry.at}; recorded in {consent.ledger_path()}")
    return 0


def _list_consents() -> int:
    from medshard.acquire import consent
    from medshard.sources.registry import available_sources

    latest = consent.latest_entries()
    if not latest:
        print(f"no consent recorded yet ({consent.ledger_path()})")
        return 0
    known = set(available_sources())
    print(f"{'source':<18} {'status':<9} {'terms version':<16} {'user':<12} when")
    for slug, e in sorted(latest.items()):
        if e.action == "revoke":
            status = "revoked"
        elif slug not in known:
            status = "unknown"  # the source is no longer installed
        else:
            status = consent.consent_status(_source_class(slug).info)
        print(f"{slug:<18} {status:<9} {e.terms_version:<16} {e.user:<12} {e.at}")
    print(f"ledger: {consent.ledger_path()}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """Download each named source after checking consent for all of them first."""
    from medshard.acquire.consent import require_consent
    from medshard.acquire.download.engine import DownloadError, RetryPolicy
    from medshard.acquire.download.run import download_source

    data_root = args.data_root or os.environ.get("MEDSHARD_DATA_ROOT")
    if not data_root:
        raise UserError("say where raw data goes: --data-root DIR (or set MEDSHARD_DATA_ROOT)")
    if args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    classes = [_source_class(s) for s in dict.fromkeys(args.sources)]
    for cls in classes:  # refuse before any byte moves, not after the first source
        require_consent(cls.info)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    progress = False if args.no_progress else None
    failed = 0
    for cls in classes:
        try:
            summary = download_source(
                cls, Path(data_root), mirror=args.mirror, jobs=args.jobs,
                policy=RetryPolicy(retries=args.retries), progress=progress, verify=args.verify,
            )
        except DownloadError as e:
            print(f"medshard: download failed: {e}", file=sys.stderr)
            failed += 1
            continue
        print(summary.line())
    if len(classes) > 1:
        print(f"{len(classes) - failed} of {len(classes)} sources complete")
    return 1 if failed else 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `consent` and `download` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "consent", help="show a source's terms and record your acceptance",
        description="Show the license and terms of a source and record your acceptance in "
                    "the local ledger ($MEDSHARD_HOME/consent.jsonl).",
    )
    p.add_argument("source", nargs="?", help="source slug, e.g. ptb-xl")
    p.add_argument("--accept", action="store_true",
                   help="accept without the interactive question (for scripts)")
    p.add_argument("--list", action="store_true", help="show the ledger")
    p.add_argument("--revoke", action="store_true", help="withdraw consent for SOURCE")
    p.set_defaults(func=cmd_consent)

    d = subparsers.add_parser(
        "download", help="fetch the raw files of sources (after consent), verified and resumable",
        description="Download raw files into DATA_ROOT/<source>/ with a receipt. Credentials "
                    "come from environment variables, ~/.netrc or a provider token file, "
                    "never from options.",
    )
    d.add_argument("sources", nargs="+", metavar="SOURCE")
    d.add_argument("--data-root", metavar="DIR",
                   help="where raw data goes (default $MEDSHARD_DATA_ROOT)")
    d.add_argument("--mirror", metavar="URL",
                   help="an institutional mirror serving a medshard data root "
                        "(default $MEDSHARD_MIRROR or $MEDSHARD_HOME/mirrors.json)")
    d.add_argument("--jobs", type=int, default=4, metavar="N", help="parallel transfers (4)")
    d.add_argument("--retries", type=int, default=5, metavar="N",
                   help="retries per file on 5xx/429/dropped connections (5)")
    d.add_argument("--verify", action="store_true",
                   help="re-hash files already present instead of trusting the receipt")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    d.set_defaults(func=cmd_download)
