"""PhysioNet: open and credentialed projects, listed and verified by the project's SHA256SUMS.txt.

Files live at `<base>/files/<project>/<version>/<path>`; credentialed projects
take HTTP basic auth (PHYSIONET_USERNAME/PHYSIONET_PASSWORD or a netrc entry for
physionet.org). One request per file, never a crawl of index pages.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from medshard.acquire.download.credentials import Credentials, basic_credentials
from medshard.acquire.download.engine import DownloadError, Transfer, request_with_retries
from medshard.acquire.download.providers import ProviderContext
from medshard.acquire.download.providers._common import included, transfer_for
from medshard.schemas.download import DownloadSpec

BASE_ENV = "MEDSHARD_PHYSIONET_URL"
DEFAULT_BASE = "https://physionet.org"
CHECKSUMS = "SHA256SUMS.txt"
_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *]?(.+)$")


def credentials(ctx: ProviderContext) -> Credentials | None:
    host = urlsplit(ctx.base(BASE_ENV, DEFAULT_BASE)).hostname or "physionet.org"
    return basic_credentials("PHYSIONET_USERNAME", "PHYSIONET_PASSWORD", host)


def project_page(spec: DownloadSpec, ctx: ProviderContext) -> str:
    return f"{ctx.base(BASE_ENV, DEFAULT_BASE)}/content/{spec.project}/{spec.version}/"


def parse_sha256sums(text: str) -> dict[str, str]:
    """path -> sha256 from a `sha256sum`-style listing; skips blank and malformed lines."""
    out = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out[m.group(2).strip()] = m.group(1).lower()
    return out


def plan(spec: DownloadSpec, ctx: ProviderContext) -> list[Transfer]:
    """Every file of SHA256SUMS.txt selected by `include`, plus declared extra files."""
    files_url = f"{ctx.base(BASE_ENV, DEFAULT_BASE)}/files/{spec.project}/{spec.version}/"
    creds = credentials(ctx)
    auth = creds.basic_auth() if creds else None
    r = request_with_retries(
        ctx.session, files_url + CHECKSUMS, ctx.policy, what=f"{ctx.info.name} {CHECKSUMS}",
        explain=lambda status: explain(status, None, spec, ctx), auth=auth,
    )
    sums = parse_sha256sums(r.text)
    if not sums and not spec.files:
        raise DownloadError(f"{ctx.info.name}: {files_url}{CHECKSUMS} lists no files; "
                            f"the project layout changed: report it")
    transfers = [
        Transfer(path=path, url=files_url + quote(path), sha256=digest, auth=auth)
        for path, digest in sorted(sums.items()) if included(path, spec.include)
    ]
    # The listing itself is part of the layout PhysioNet ships.
    transfers.append(Transfer(path=CHECKSUMS, url=files_url + CHECKSUMS, auth=auth))
    listed = {t.path for t in transfers}
    for f in spec.files:
        if f.path in listed:
            t = next(t for t in transfers if t.path == f.path)
            t.size, t.extract_to = f.size, "" if f.extract else None
            t.sha256 = f.sha256 or t.sha256
        else:
            transfers.append(transfer_for(f, f.url or files_url + quote(f.path), auth=auth))
    return transfers


def explain(status: int, t: Transfer | None, spec: DownloadSpec, ctx: ProviderContext) -> str | None:
    page = project_page(spec, ctx)
    creds = credentials(ctx)
    if status in (401, 403) and creds is None:
        return (f"PhysioNet requires a login for this project: set PHYSIONET_USERNAME and "
                f"PHYSIONET_PASSWORD (or add physionet.org to ~/.netrc); access is granted at {page}")
    if status == 401:
        return (f"PhysioNet rejected the username/password from {creds.origin}: "
                f"check them at {DEFAULT_BASE}/login/, then rerun")
    if status == 403:
        return (f"PhysioNet (HTTP 403): your account has not been granted access to this project: "
                f"request it at {page}")
    if status == 404:
        return (f"PhysioNet has no such file (HTTP 404) in {spec.project} {spec.version}: "
                f"the version may have been withdrawn; see {page}")
    return None
