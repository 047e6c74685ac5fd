"""The consent ledger: who accepted which terms of which source, and when.

The ledger is an append-only JSON-lines file, `$MEDSHARD_HOME/consent.jsonl`
(default `~/.medshard`), one `ConsentEntry` per acceptance or revocation. The
latest entry for a source decides. Consent binds to the terms a source declares
(`info.license`: name, URL, terms_version): when a source changes any of them,
earlier consent no longer counts and the user is asked again.
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from medshard.errors import UserError
from medshard.schemas.download import ConsentEntry
from medshard.schemas.models import License, SourceInfo

LEDGER_NAME = "consent.jsonl"


def medshard_home() -> Path:
    """The directory holding medshard's per-user state ($MEDSHARD_HOME, default ~/.medshard)."""
    return Path(os.environ.get("MEDSHARD_HOME") or Path.home() / ".medshard").expanduser()


def ledger_path() -> Path:
    return medshard_home() / LEDGER_NAME


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def read_ledger(path: Path | None = None) -> list[ConsentEntry]:
    """Every entry of the ledger, oldest first; a missing ledger is empty.

    Raises UserError naming the line when the file was damaged by hand.
    """
    path = path or ledger_path()
    if not path.exists():
        return []
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(ConsentEntry.model_validate_json(line))
        except ValueError as e:
            raise UserError(
                f"consent ledger {path} line {n} is not a valid entry; fix or delete that line"
            ) from e
    return entries


def _append(entry: ConsentEntry, path: Path | None = None) -> None:
    path = path or ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write of one line with O_APPEND: concurrent writers never interleave within a line.
    line = (json.dumps(entry.model_dump(), sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _entry(action: str, info: SourceInfo) -> ConsentEntry:
    lic = info.license
    return ConsentEntry(
        action=action, source=info.name, terms_name=lic.name, terms_url=lic.url,
        terms_version=lic.terms_version, user=getpass.getuser(), at=_now(),
    )


def record_acceptance(info: SourceInfo) -> ConsentEntry:
    """Append an acceptance of the terms `info` declares now; returns the entry written."""
    entry = _entry("accept", info)
    _append(entry)
    return entry


def record_revocation(info: SourceInfo) -> ConsentEntry:
    """Append a revocation: from now on downloads of the source are refused until re-accepted."""
    entry = _entry("revoke", info)
    _append(entry)
    return entry


def latest_entries(entries: list[ConsentEntry] | None = None) -> dict[str, ConsentEntry]:
    """The deciding (latest) entry per source."""
    latest: dict[str, ConsentEntry] = {}
    for e in read_ledger() if entries is None else entries:
        latest[e.source] = e
    return latest


def matches_terms(entry: ConsentEntry, lic: License) -> bool:
    """True when `entry` was given for exactly the terms `lic` declares."""
    return (entry.terms_name, entry.terms_url, entry.terms_version) == (
        lic.name, lic.url, lic.terms_version,
    )


def consent_status(info: SourceInfo) -> str:
    """'accepted', 'missing', 'revoked' or 'stale' (accepted, but the terms changed since)."""
    entry = latest_entries().get(info.name)
    if entry is None:
        return "missing"
    if entry.action == "revoke":
        return "revoked"
    return "accepted" if matches_terms(entry, info.license) else "stale"


def require_consent(info: SourceInfo) -> None:
    """Raise UserError with the command to run unless the current terms were accepted."""
    status = consent_status(info)
    if status == "accepted":
        return
    why = {
        "missing": "its terms have not been accepted",
        "revoked": "consent to its terms was revoked",
        "stale": f"its terms changed (now {info.license.name}, version "
                 f"{info.license.terms_version}) since you accepted them",
    }[status]
    raise UserError(
        f"{info.name}: {why}; read them and accept with `medshard consent {info.name}`"
    )


def describe_terms(info: SourceInfo) -> str:
    """The terms of a source as a person reads them before accepting."""
    lic = info.license

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    lines = [
        f"{info.title} ({info.name}), upstream version {info.version}",
        f"  license:        {lic.name}" + (f" [{lic.spdx}]" if lic.spdx else ""),
        f"  terms:          {lic.url or '(no URL declared; see ' + info.homepage + ')'}",
        f"  terms version:  {lic.terms_version}",
        f"  non-commercial: {yes(lic.non_commercial)}",
        f"  share-alike:    {yes(lic.share_alike)}",
        f"  credentialed:   {yes(lic.credentialed)}",
        f"  access:         {info.access}",
        f"  homepage:       {info.homepage}",
        f"  cite:           {info.citation}",
    ]
    return "\n".join(lines)
