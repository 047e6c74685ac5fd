"""Keyed pseudonyms for subject ids, with a per-installation secret.

Two releases built on the same installation link (same subject -> same pseudonym);
nobody without the secret can reverse or recompute them. The secret never leaves
the driver: pseudonyms are computed while planning, so raw subject ids and the
secret never cross the shuffle, reach a worker, or enter the pipeline graph.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_ENV = "MEDSHARD_SECRET"


def medshard_home() -> Path:
    return Path(os.environ.get("MEDSHARD_HOME", Path.home() / ".medshard"))


def installation_secret() -> bytes:
    """$MEDSHARD_SECRET if set, else `$MEDSHARD_HOME/secret`, created (0600) on first use."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return env.encode()
    path = medshard_home() / "secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def key_id(secret: bytes) -> str:
    """A public fingerprint of the secret, recorded in manifests so builds can be matched."""
    return hashlib.sha256(b"medshard-key-id\0" + secret).hexdigest()[:12]


def pseudonymize(source: str, subject_id: str, secret: bytes) -> str:
    """Stable 80-bit keyed hash of a subject id, namespaced by source."""
    mac = hmac.new(secret, f"{source}\0{subject_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:20]
