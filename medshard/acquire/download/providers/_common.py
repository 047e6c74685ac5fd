"""Small helpers shared by providers."""

from __future__ import annotations

import fnmatch
import re

from medshard.acquire.download.archive import is_archive
from medshard.acquire.download.engine import Transfer
from medshard.schemas.download import DownloadSpec, FileSpec


def included(path: str, patterns: list[str]) -> bool:
    """True when `path` matches one of the glob patterns (`*` also crosses '/'); none: all."""
    return not patterns or any(fnmatch.fnmatchcase(path, p) for p in patterns)


def transfer_for(f: FileSpec, url: str, **kw) -> Transfer:
    """A transfer for a declared file; archives marked `extract` unpack into the source root."""
    return Transfer(
        path=f.path, url=url, size=f.size, sha256=f.sha256, md5=f.md5,
        extract_to="" if f.extract else None, strip_components=f.strip_components, **kw,
    )


def pinned(spec: DownloadSpec, path: str) -> FileSpec | None:
    """The FileSpec a source declared for `path`, if it pins size/checksum/extraction."""
    return next((f for f in spec.files if f.path == path), None)


def apply_pins(t: Transfer, spec: DownloadSpec) -> Transfer:
    """Overlay what the source declares about `t.path` (checksums, extraction) onto `t`."""
    f = pinned(spec, t.path)
    if f is None:
        return t
    t.size = f.size if f.size is not None else t.size
    t.sha256 = f.sha256 or t.sha256
    t.md5 = f.md5 or t.md5
    if f.extract:
        t.extract_to, t.strip_components = "", f.strip_components
    return t


def safe_component(value: str) -> str:
    """A single path component made of safe characters (API-provided names are untrusted)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", value).strip(".")
    return cleaned or "_"


def unpack_archives_by_name(transfers: list[Transfer]) -> list[Transfer]:
    """Mark every archive among `transfers` for extraction into the source root."""
    for t in transfers:
        if t.extract_to is None and is_archive(t.path):
            t.extract_to = ""
    return transfers
