"""Credentials for downloads: from environment variables, a netrc file or a provider's token file.

Never from command-line arguments (other users can read the process list). A
secret is wrapped in `Secret`, whose repr and str are masked, so it cannot end up
in a log line, an exception message or a receipt by accident. URLs written
anywhere go through `strip_userinfo` first.
"""

from __future__ import annotations

import json
import netrc
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class Secret:
    """A password or token; prints as '***'. Call `reveal()` only where it goes on the wire."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Credentials:
    """A user name and its secret, plus where they came from (for messages; never the value)."""

    username: str
    secret: Secret
    origin: str

    def basic_auth(self) -> tuple[str, str]:
        """The (user, password) pair for HTTP basic auth."""
        return (self.username, self.secret.reveal())


def strip_userinfo(url: str) -> str:
    """`url` without any `user:password@` part, safe to print or store."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def has_userinfo(url: str) -> bool:
    return "@" in urlsplit(url).netloc


def _netrc_path() -> Path:
    return Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()


def from_netrc(host: str) -> Credentials | None:
    """Login and password for `host` in the netrc file ($NETRC, default ~/.netrc), if any."""
    path = _netrc_path()
    if not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError):
        # A damaged netrc must not stop open downloads; credentialed ones explain what is missing.
        return None
    if not entry or not entry[0] or entry[2] is None:
        return None
    return Credentials(entry[0], Secret(entry[2]), f"netrc ({path}) machine {host}")


def from_env(user_var: str, secret_var: str) -> Credentials | None:
    """Credentials from two environment variables, when both are set and non-empty."""
    user, secret = os.environ.get(user_var), os.environ.get(secret_var)
    if user and secret:
        return Credentials(user, Secret(secret), f"environment ({user_var}/{secret_var})")
    return None


def basic_credentials(user_var: str, secret_var: str, host: str) -> Credentials | None:
    """Environment variables first, then the netrc entry for `host`."""
    return from_env(user_var, secret_var) or from_netrc(host)


def kaggle_credentials() -> Credentials | None:
    """KAGGLE_USERNAME/KAGGLE_KEY, else kaggle.json in $KAGGLE_CONFIG_DIR or ~/.kaggle."""
    found = from_env("KAGGLE_USERNAME", "KAGGLE_KEY")
    if found:
        return found
    folder = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle").expanduser()
    path = folder / "kaggle.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            return None
        if isinstance(data, dict) and data.get("username") and data.get("key"):
            return Credentials(str(data["username"]), Secret(str(data["key"])), f"token file {path}")
    return from_netrc("www.kaggle.com")


def kaggle_access_token() -> tuple[Secret, str] | None:
    """A new-style Kaggle API token (bearer): KAGGLE_API_TOKEN, else ~/.kaggle/access_token."""
    token = token_from_env("KAGGLE_API_TOKEN")
    if token:
        return token, "environment (KAGGLE_API_TOKEN)"
    folder = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle").expanduser()
    path = folder / "access_token"
    if path.is_file():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return Secret(value), f"token file {path}"
    return None


def token_from_env(var: str) -> Secret | None:
    """A bearer token from one environment variable (GITHUB_TOKEN, ZENODO_TOKEN, ...)."""
    value = os.environ.get(var)
    return Secret(value) if value else None
