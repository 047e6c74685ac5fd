"""GitHub: release assets (by tag) or a source archive (by ref) through the REST API.

No login is needed for public repositories; GITHUB_TOKEN (bearer) raises the
rate limit and opens private ones. Release assets carry a sha256 digest where
GitHub has computed one.
"""

from __future__ import annotations

from medshard.acquire.download.credentials import token_from_env
from medshard.acquire.download.engine import DownloadError, Transfer, request_with_retries
from medshard.acquire.download.providers import ProviderContext
from medshard.acquire.download.providers._common import (
    apply_pins,
    included,
    safe_component,
    unpack_archives_by_name,
)
from medshard.schemas.download import DownloadSpec

BASE_ENV = "MEDSHARD_GITHUB_API"
DEFAULT_BASE = "https://api.github.com"


def _headers(accept: str) -> dict[str, str]:
    h = {"Accept": accept, "X-GitHub-Api-Version": "2022-11-28"}
    token = token_from_env("GITHUB_TOKEN")
    if token:
        h["Authorization"] = f"Bearer {token.reveal()}"
    return h


def plan(spec: DownloadSpec, ctx: ProviderContext) -> list[Transfer]:
    """Release assets matching `include` (archives unpacked), or the source tarball of `ref`."""
    base = ctx.base(BASE_ENV, DEFAULT_BASE)
    assert spec.repo is not None
    name = spec.repo.split("/")[1]
    if spec.ref is not None:
        # The tarball's single top folder (owner-repo-sha) is dropped: files land as in the repo.
        t = Transfer(path=f"{name}-{safe_component(spec.ref)}.tar.gz",
                     url=f"{base}/repos/{spec.repo}/tarball/{spec.ref}",
                     headers=_headers("application/vnd.github+json"),
                     extract_to="", strip_components=1)
        return [apply_pins(t, spec)]
    r = request_with_retries(
        ctx.session, f"{base}/repos/{spec.repo}/releases/tags/{spec.tag}", ctx.policy,
        what=f"{ctx.info.name} GitHub release {spec.tag}",
        explain=lambda status: explain(status, None, spec, ctx),
        headers=_headers("application/vnd.github+json"),
    )
    transfers = []
    for asset in r.json().get("assets", []):
        if not included(asset["name"], spec.include):
            continue
        algo, _, digest = str(asset.get("digest") or "").partition(":")
        t = Transfer(path=safe_component(asset["name"]), url=asset["url"],
                     size=asset.get("size"), sha256=digest if algo == "sha256" else None,
                     headers=_headers("application/octet-stream"))
        transfers.append(apply_pins(t, spec))
    if not transfers:
        raise DownloadError(f"{ctx.info.name}: release {spec.tag} of {spec.repo} has no asset "
                            f"matching {spec.include}; check https://github.com/{spec.repo}/releases")
    return unpack_archives_by_name(transfers)


def explain(status: int, t: Transfer | None, spec: DownloadSpec, ctx: ProviderContext) -> str | None:
    where = f"https://github.com/{spec.repo}"
    if status in (401, 403):
        hint = "GITHUB_TOKEN was rejected or lacks access" if token_from_env("GITHUB_TOKEN") \
            else "the API rate limit for anonymous use may be spent: set GITHUB_TOKEN"
        return f"GitHub refused (HTTP {status}): {hint}; see {where}"
    if status == 404:
        return f"GitHub has no {spec.tag or spec.ref} in {spec.repo} (HTTP 404): check {where}"
    return None
