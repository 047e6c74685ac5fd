"""The Cancer Imaging Archive: series of a collection through TCIA's public NBIA REST API.

`getSeries?Collection=...` lists the series; `getImage?SeriesInstanceUID=...`
returns one zip of DICOM files per series, unpacked to
`<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/`. Public collections need no
login; TCIA_USERNAME/TCIA_PASSWORD get an access token for restricted ones.
"""

from __future__ import annotations

import os

import requests

from medshard.acquire.download.credentials import from_env
from medshard.acquire.download.engine import DownloadError, Transfer, request_with_retries
from medshard.acquire.download.providers import ProviderContext
from medshard.acquire.download.providers._common import safe_component
from medshard.schemas.download import DownloadSpec

BASE_ENV = "MEDSHARD_TCIA_API"
DEFAULT_BASE = "https://services.cancerimagingarchive.net/nbia-api/services/v1"
TOKEN_ENV = "MEDSHARD_TCIA_TOKEN_URL"
DEFAULT_TOKEN_URL = "https://services.cancerimagingarchive.net/nbia-api/oauth/token"


def _headers(ctx: ProviderContext) -> dict[str, str]:
    """Bearer header for restricted collections, from TCIA_USERNAME/TCIA_PASSWORD; else none."""
    creds = from_env("TCIA_USERNAME", "TCIA_PASSWORD")
    if creds is None:
        return {}
    token_url = os.environ.get(TOKEN_ENV) or DEFAULT_TOKEN_URL
    try:
        r = ctx.session.post(token_url, timeout=ctx.policy.timeout, data={
            "username": creds.username, "password": creds.secret.reveal(),
            "client_id": "NBIA", "grant_type": "password",
        })
    except requests.RequestException as e:
        raise DownloadError(f"TCIA login failed ({type(e).__name__}) at {token_url}; "
                            f"check the network and rerun") from None
    if r.status_code != 200:
        raise DownloadError(f"TCIA refused the login from {creds.origin} (HTTP {r.status_code}): "
                            f"check TCIA_USERNAME/TCIA_PASSWORD")
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def plan(spec: DownloadSpec, ctx: ProviderContext) -> list[Transfer]:
    """One zip transfer per series of the collection (optionally one modality)."""
    base = ctx.base(BASE_ENV, DEFAULT_BASE)
    headers = _headers(ctx)
    params = {"Collection": spec.collection, "format": "json"}
    if spec.modality:
        params["Modality"] = spec.modality
    r = request_with_retries(
        ctx.session, f"{base}/getSeries", ctx.policy, params=params, headers=headers,
        what=f"{ctx.info.name} TCIA series list",
        explain=lambda status: explain(status, None, spec, ctx),
    )
    series = r.json() if r.content.strip() else []
    if not series:
        raise DownloadError(f"{ctx.info.name}: TCIA lists no series for collection "
                            f"{spec.collection!r}; check the collection name")
    transfers = []
    for s in series:
        uid = safe_component(s["SeriesInstanceUID"])
        folder = "/".join([safe_component(str(s.get("PatientID") or "unknown")),
                           safe_component(str(s.get("StudyInstanceUID") or "unknown")), uid])
        transfers.append(Transfer(
            path=f"{folder}.zip", url=f"{base}/getImage?SeriesInstanceUID={s['SeriesInstanceUID']}",
            headers=headers, extract_to=folder,
        ))
    return transfers


def explain(status: int, t: Transfer | None, spec: DownloadSpec, ctx: ProviderContext) -> str | None:
    if status in (401, 403):
        return (f"TCIA refused access to collection {spec.collection!r} (HTTP {status}): it is "
                f"restricted; request access on its collection page and set TCIA_USERNAME and "
                f"TCIA_PASSWORD")
    return None
