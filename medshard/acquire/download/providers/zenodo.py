"""Zenodo records: the record API lists every file with its size and md5 checksum.

Open records need no login; a ZENODO_TOKEN (bearer) opens restricted ones the
account may read.
"""

from __future__ import annotations

from urllib.parse import quote

from medshard.acquire.download.credentials import token_from_env
from medshard.acquire.download.engine import DownloadError, Transfer, request_with_retries
from medshard.acquire.download.providers import ProviderContext
from medshard.acquire.download.providers._common import apply_pins, included
from medshard.schemas.download import DownloadSpec

BASE_ENV = "MEDSHARD_ZENODO_API"
DEFAULT_BASE = "https://zenodo.org/api"


def _headers() -> dict[str, str]:
    token = token_from_env("ZENODO_TOKEN")
    return {"Authorization": f"Bearer {token.reveal()}"} if token else {}


def record_page(spec: DownloadSpec) -> str:
    return f"https://zenodo.org/records/{spec.record}"


def plan(spec: DownloadSpec, ctx: ProviderContext) -> list[Transfer]:
    """One transfer per record file selected by `include`, verified by Zenodo's md5."""
    base = ctx.base(BASE_ENV, DEFAULT_BASE)
    headers = _headers()
    r = request_with_retries(
        ctx.session, f"{base}/records/{spec.record}", ctx.policy,
        what=f"{ctx.info.name} Zenodo record {spec.record}",
        explain=lambda status: explain(status, None, spec, ctx), headers=headers,
    )
    try:
        entries = r.json()["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise DownloadError(f"{ctx.info.name}: Zenodo record {spec.record} answered without a "
                            f"file list; check {record_page(spec)}") from e
    transfers = []
    for entry in entries:
        key = entry["key"]
        if not included(key, spec.include):
            continue
        algo, _, digest = str(entry.get("checksum", "")).partition(":")
        url = (entry.get("links") or {}).get("self") or \
            f"{base}/records/{spec.record}/files/{quote(key)}/content"
        t = Transfer(path=key, url=url, size=entry.get("size"),
                     md5=digest if algo == "md5" else None, headers=headers)
        transfers.append(apply_pins(t, spec))
    if not transfers:
        raise DownloadError(f"{ctx.info.name}: no file of Zenodo record {spec.record} matches "
                            f"{spec.include}; check {record_page(spec)}")
    return transfers


def explain(status: int, t: Transfer | None, spec: DownloadSpec, ctx: ProviderContext) -> str | None:
    if status in (401, 403):
        return (f"Zenodo refused access (HTTP {status}): the record's files are restricted; "
                f"request access at {record_page(spec)} and set ZENODO_TOKEN to a token of "
                f"that account")
    if status in (404, 410):
        return f"Zenodo has no record {spec.record} (HTTP {status}): check {record_page(spec)}"
    return None
