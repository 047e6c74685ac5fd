"""Kaggle datasets and competitions through Kaggle's public API (an API token, basic auth).

The token comes from KAGGLE_API_TOKEN or ~/.kaggle/access_token (bearer), else
KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json (basic; folder $KAGGLE_CONFIG_DIR). Kaggle serves one zip per dataset or competition; it is
unpacked into the source directory. A 403 on a competition means its rules were
not accepted on the website, which no API call can do for the user.
"""

from __future__ import annotations

from medshard.acquire.download.credentials import kaggle_access_token, kaggle_credentials
from medshard.acquire.download.engine import Transfer
from medshard.acquire.download.providers import ProviderContext
from medshard.acquire.download.providers._common import apply_pins
from medshard.schemas.download import DownloadSpec

BASE_ENV = "MEDSHARD_KAGGLE_API"
DEFAULT_BASE = "https://www.kaggle.com/api/v1"
SITE = "https://www.kaggle.com"
TOKEN_HELP = ("create a token at https://www.kaggle.com/settings (API) and set KAGGLE_API_TOKEN "
              "(or save kaggle.json in ~/.kaggle, or set KAGGLE_USERNAME and KAGGLE_KEY)")


def _auth() -> tuple[tuple[str, str] | None, dict[str, str], str | None]:
    """(basic auth, headers, where the credential came from); bearer tokens win."""
    bearer = kaggle_access_token()
    if bearer:
        return None, {"Authorization": f"Bearer {bearer[0].reveal()}"}, bearer[1]
    creds = kaggle_credentials()
    if creds:
        return creds.basic_auth(), {}, creds.origin
    return None, {}, None


def page(spec: DownloadSpec) -> str:
    if spec.competition:
        return f"{SITE}/competitions/{spec.competition}"
    return f"{SITE}/datasets/{spec.dataset}"


def plan(spec: DownloadSpec, ctx: ProviderContext) -> list[Transfer]:
    """One zip transfer: the whole dataset (optionally a pinned version) or competition."""
    base = ctx.base(BASE_ENV, DEFAULT_BASE)
    auth, headers, _ = _auth()
    if spec.competition:
        url = f"{base}/competitions/data/download-all/{spec.competition}"
        name = f"{spec.competition}.zip"
    else:
        assert spec.dataset is not None
        url = f"{base}/datasets/download/{spec.dataset}"
        if spec.version:
            url += f"?datasetVersionNumber={spec.version}"
        name = f"{spec.dataset.split('/')[1]}.zip"
    return [apply_pins(Transfer(path=name, url=url, auth=auth, headers=headers, extract_to=""),
                       spec)]


def explain(status: int, t: Transfer | None, spec: DownloadSpec, ctx: ProviderContext) -> str | None:
    origin = _auth()[2]
    if origin is None and status in (401, 403):
        return f"Kaggle needs an API token: {TOKEN_HELP}"
    if status == 401:
        return f"Kaggle rejected the API token from {origin}: {TOKEN_HELP}"
    if status == 403 and spec.competition:
        return (f"Kaggle (HTTP 403): the competition rules have not been accepted for this "
                f"account: accept them at {page(spec)}/rules while logged in, then rerun")
    if status == 403:
        return (f"Kaggle (HTTP 403): this account may not download the dataset: open "
                f"{page(spec)} while logged in and accept its terms if asked, then rerun")
    if status == 404:
        return f"Kaggle has no such dataset or competition (HTTP 404): check {page(spec)}"
    return None
