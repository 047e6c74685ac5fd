"""An institutional mirror: a medshard data root served over HTTP(S).

A mirror at URL holds `URL/<slug>/...` exactly as `medshard download` left a
data root, receipt included; the receipt lists every file with size and sha256,
so any source (whatever its upstream provider, manual ones too) is fetched and
verified the same way. A login, if the mirror needs one, comes from ~/.netrc.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from pydantic import ValidationError

from medshard.acquire.download.credentials import from_netrc, strip_userinfo
from medshard.acquire.download.engine import DownloadError, Transfer, request_with_retries
from medshard.acquire.download.providers import ProviderContext
from medshard.schemas.download import RECEIPT_NAME, DownloadSpec, Receipt


def source_url(ctx: ProviderContext) -> str:
    assert ctx.base_url is not None
    return f"{strip_userinfo(ctx.base_url).rstrip('/')}/{ctx.info.name}/"


def fetch_receipt(ctx: ProviderContext) -> Receipt:
    """The mirror's receipt for the source: the list of files to fetch and their checksums."""
    base = source_url(ctx)
    creds = from_netrc(urlsplit(base).hostname or "")
    r = request_with_retries(
        ctx.session, base + RECEIPT_NAME, ctx.policy, what=f"{ctx.info.name} mirror receipt",
        explain=lambda status: explain(status, None, None, ctx),
        auth=creds.basic_auth() if creds else None,
    )
    try:
        return Receipt.model_validate_json(r.content)
    except ValidationError as e:
        raise DownloadError(f"{ctx.info.name}: the mirror's {RECEIPT_NAME} at {base} is not a "
                            f"medshard receipt; ask its maintainers to re-run medshard download") from e


def plan(spec: DownloadSpec | None, ctx: ProviderContext) -> list[Transfer]:
    base = source_url(ctx)
    creds = from_netrc(urlsplit(base).hostname or "")
    auth = creds.basic_auth() if creds else None
    return [Transfer(path=f.path, url=base + quote(f.path), size=f.size, sha256=f.sha256, auth=auth)
            for f in fetch_receipt(ctx).files]


def explain(status: int, t: Transfer | None, spec: DownloadSpec | None,
            ctx: ProviderContext) -> str | None:
    base = source_url(ctx)
    if status in (401, 403):
        return (f"the mirror {base} refused access (HTTP {status}): add its host with your login "
                f"to ~/.netrc, then rerun")
    if status == 404 and t is None:
        return (f"the mirror has no {base}{RECEIPT_NAME}: populate it with `medshard download "
                f"{ctx.info.name} --data-root <folder served at the mirror URL>`")
    return None
