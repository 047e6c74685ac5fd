"""Providers turn a source's DownloadSpec into transfers, and explain refusals.

Each provider is one small module with two functions:

    plan(spec, ctx) -> list[Transfer]            what to fetch (listing APIs, checksum files)
    explain(status, transfer, spec, ctx) -> str | None
                                                 a refusal (401/403/404) in words a person
                                                 can act on: what access is missing, where
                                                 to get it

A provider's base URL can be pointed elsewhere (a test fake, a proxy) with its
environment variable (e.g. MEDSHARD_ZENODO_API) or `ProviderContext.base_url`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType

import requests

from medshard.acquire.download.engine import RetryPolicy
from medshard.schemas.models import SourceInfo

PROVIDERS: dict[str, str] = {
    name: f"medshard.acquire.download.providers.{name}"
    for name in ("https", "physionet", "kaggle", "zenodo", "github", "tcia", "manual", "mirror")
}


@dataclass
class ProviderContext:
    """What a provider may use while planning: the session, retry rules, the base URL."""

    info: SourceInfo
    session: requests.Session
    policy: RetryPolicy
    base_url: str | None = None

    def base(self, env_var: str, default: str) -> str:
        """The provider's base URL: explicit override, then `env_var`, then `default`."""
        return (self.base_url or os.environ.get(env_var) or default).rstrip("/")


def get_provider(name: str) -> ModuleType:
    """The module implementing provider `name`."""
    if name not in PROVIDERS:
        raise KeyError(f"unknown download provider {name!r}; known: {sorted(PROVIDERS)}")
    return importlib.import_module(PROVIDERS[name])
