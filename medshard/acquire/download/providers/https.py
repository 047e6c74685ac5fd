"""Plain HTTPS: every file declared with its URL (and, ideally, its sha256)."""

from __future__ import annotations

from urllib.parse import urlsplit

from medshard.acquire.download.credentials import from_netrc
from medshard.acquire.download.engine import Transfer
from medshard.acquire.download.providers import ProviderContext
from medshard.acquire.download.providers._common import transfer_for
from medshard.schemas.download import DownloadSpec


def plan(spec: DownloadSpec, ctx: ProviderContext) -> list[Transfer]:
    """One transfer per declared file; a netrc entry for the host supplies basic auth."""
    out = []
    for f in spec.files:
        assert f.url is not None  # DownloadSpec validation guarantees it
        creds = from_netrc(urlsplit(f.url).hostname or "")
        out.append(transfer_for(f, f.url, auth=creds.basic_auth() if creds else None))
    return out


def explain(status: int, t: Transfer, spec: DownloadSpec, ctx: ProviderContext) -> str | None:
    if status in (401, 403):
        return (f"the server at {t.origin} refused access (HTTP {status}); if it needs a login, "
                f"add its host to ~/.netrc, then rerun")
    return None
