"""Kaggle datasets and competitions through Kaggle's public API (an API token, basic auth).

The token comes from KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json
($KAGGLE_CONFIG_DIR). Kaggle serves one zip per dataset or competition; it is
unpacked into the source directory. A 403 on a competition means its rules were
not accepted on the website, which no API call can do for the user.
"""

from __future__ import annotations

from medshard.pipeline.download.credentials import kaggle_credentials
from medshard.pipeline.download.engine import Transfer
from medshard.pipeline.download.providers import ProviderContext
from medshard.pipeline.download.providers._common import apply_pins
from medshard.schemas.download import DownloadSpec

BASE_ENV = "MEDSHARD_KAGGLE_API"
DEFAULT_BASE = "https://www.kaggle.com/api/v1"
SITE = "https://www.kaggle.com"
TOKEN_HELP = ("create a token at https://www.kaggle.com/settings (API: Create New Token) and save "
              "it as ~/.kaggle/kaggle.json, or set KAGGLE_USERNAME and KAGGLE_KEY")


def page(spec: DownloadSpec) -> str:
    if spec.competition:
        return f"{SITE}/competitions/{spec.competition}"
    return f"{SITE}/datasets/{spec.dataset}"


def plan(spec: DownloadSpec, ctx: ProviderContext) -> list[Transfer]:
    """One zip transfer: the whole dataset (optionally a pinned version) or competition."""
    base = ctx.base(BASE_ENV, DEFAULT_BASE)
    creds = kaggle_credentials()
    auth = creds.basic_auth() if creds else None
    if spec.competition:
        url = f"{base}/competitions/data/download-all/{spec.competition}"
        name = f"{spec.competition}.zip"
    else:
        assert spec.dataset is not None
        url = f"{base}/datasets/download/{spec.dataset}"
        if spec.version:
            url += f"?datasetVersionNumber={spec.version}"
        name = f"{spec.dataset.split('/')[1]}.zip"
    return [apply_pins(Transfer(path=name, url=url, auth=auth, extract_to=""), spec)]


def explain(status: int, t: Transfer | None, spec: DownloadSpec, ctx: ProviderContext) -> str | None:
    creds = kaggle_credentials()
    if creds is None and status in (401, 403):
        return f"Kaggle needs an API token: {TOKEN_HELP}"
    if status == 401:
        return f"Kaggle rejected the API token from {creds.origin}: {TOKEN_HELP}"
    if status == 403 and spec.competition:
        return (f"Kaggle (HTTP 403): the competition rules have not been accepted for this "
                f"account: accept them at {page(spec)}/rules while logged in, then rerun")
    if status == 403:
        return (f"Kaggle (HTTP 403): this account may not download the dataset: open "
                f"{page(spec)} while logged in and accept its terms if asked, then rerun")
    if status == 404:
        return f"Kaggle has no such dataset or competition (HTTP 404): check {page(spec)}"
    return None
