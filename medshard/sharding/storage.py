"""Where a build's output lives: a local folder or any fsspec URL (`s3://`, `gs://`, `az://`).

Every file of a build (shards, plans, parts, manifest, index, quarantine) is written by
`Store.write_bytes` or `Store.publish`, and is never visible under its final name before
it is complete:
  - local: written to a temporary name beside the final one, fsynced, renamed;
  - object storage: written to a local temporary file, then uploaded in one request
    (a single PUT, or a multipart upload that the store assembles only at its end), so
    the object appears whole or not at all. A retried task uploads again and overwrites
    the object with the same bytes.
Credentials come from the environment or the filesystem's own configuration (e.g.
AWS_ACCESS_KEY_ID / AWS_ENDPOINT_URL, ~/.aws, gcloud), never from medshard's options.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import tempfile
from pathlib import Path

from medshard.formats.remote import filesystem, is_remote_url, local_path_of

UPLOAD_DIR = "medshard-upload"


def temp_name(path: Path) -> Path:
    """A temporary name beside `path`, unique to this process and call: `.<name>.<pid>-<hex>.tmp`."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


class Store:
    """A build's output location, local or remote, addressed by paths relative to it."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.remote = is_remote_url(location)
        if self.remote:
            url = os.fspath(location).rstrip("/")
            self.fs, self._root = filesystem(url)
            self.base = f"{url.split('://', 1)[0]}://{self._root}"
            self.dir: Path | None = None
        else:
            self.dir = local_path_of(location).resolve()
            self.base = str(self.dir)
            self.fs = None
            self._root = self.base

    def __str__(self) -> str:
        return self.base

    def __reduce__(self):
        return (Store, (self.base,))

    def _fs_path(self, rel: str) -> str:
        return posixpath.join(self._root, rel) if rel else self._root

    def local(self, rel: str) -> Path:
        """The local path of `rel` (local stores only)."""
        assert self.dir is not None, "a remote store has no local paths"
        return self.dir / rel if rel else self.dir

    def url(self, rel: str = "") -> str:
        """`rel` as a path (local) or a URL (remote) that fsspec and medshard's readers open."""
        if not self.remote:
            return str(self.local(rel))
        return f"{self.base}/{rel}" if rel else self.base

    # -- queries -----------------------------------------------------------------------
    def exists(self, rel: str = "") -> bool:
        if not self.remote:
            return self.local(rel).exists()
        return bool(self.fs.exists(self._fs_path(rel)))

    def is_file(self, rel: str = "") -> bool:
        if not self.remote:
            return self.local(rel).is_file()
        return bool(self.fs.isfile(self._fs_path(rel)))

    def is_dir(self, rel: str = "") -> bool:
        if not self.remote:
            return self.local(rel).is_dir()
        return bool(self.fs.isdir(self._fs_path(rel)))

    def size(self, rel: str) -> int | None:
        """Bytes of the file `rel`; None when it does not exist."""
        try:
            if not self.remote:
                return self.local(rel).stat().st_size
            return int(self.fs.info(self._fs_path(rel))["size"])
        except FileNotFoundError:
            return None

    def listdir(self, rel: str = "") -> list[str]:
        """Names directly under `rel` (files and folders)."""
        if not self.remote:
            d = self.local(rel)
            return sorted(p.name for p in d.iterdir()) if d.is_dir() else []
        try:
            entries = self.fs.ls(self._fs_path(rel), detail=False)
        except FileNotFoundError:
            return []
        return sorted({posixpath.basename(e.rstrip("/")) for e in entries})

    def find(self, rel: str = "") -> list[str]:
        """Every file under `rel`, as paths relative to the store, sorted."""
        if not self.remote:
            d = self.local(rel)
            if not d.is_dir():
                return []
            return sorted(p.relative_to(self.dir).as_posix() for p in d.rglob("*")
                          if p.is_file())
        try:
            found = self.fs.find(self._fs_path(rel))
        except FileNotFoundError:
            return []
        return sorted(posixpath.relpath(p, self._root) for p in found)

    # -- reading -----------------------------------------------------------------------
    def read_bytes(self, rel: str) -> bytes:
        if not self.remote:
            return self.local(rel).read_bytes()
        return self.fs.cat_file(self._fs_path(rel))

    def open_read(self, rel: str):
        if not self.remote:
            return open(self.local(rel), "rb")
        return self.fs.open(self._fs_path(rel), "rb")

    # -- writing -----------------------------------------------------------------------
    def mkdir(self, rel: str = "") -> None:
        if not self.remote:
            self.local(rel).mkdir(parents=True, exist_ok=True)
        # object stores have no folders

    def local_temp(self, rel: str) -> Path:
        """Where to write the file that `publish(tmp, rel)` puts in place: beside the final
        name (local), or in this machine's temporary folder (remote)."""
        if not self.remote:
            final = self.local(rel)
            final.parent.mkdir(parents=True, exist_ok=True)
            return temp_name(final)
        d = Path(tempfile.gettempdir()) / UPLOAD_DIR
        d.mkdir(parents=True, exist_ok=True)
        return temp_name(d / posixpath.basename(rel))

    def publish(self, tmp: Path, rel: str) -> None:
        """Put the complete file `tmp` in place as `rel`; `tmp` is gone afterwards."""
        if not self.remote:
            os.replace(tmp, self.local(rel))
            return
        try:
            self.fs.put_file(str(tmp), self._fs_path(rel))
        finally:
            tmp.unlink(missing_ok=True)

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write `rel` whole: never visible under its name before it is complete."""
        tmp = self.local_temp(rel)
        try:
            tmp.write_bytes(data)
            self.publish(tmp, rel)
        finally:
            tmp.unlink(missing_ok=True)

    def remove(self, rel: str) -> None:
        if not self.remote:
            self.local(rel).unlink(missing_ok=True)
            return
        try:
            self.fs.rm_file(self._fs_path(rel))
        except FileNotFoundError:
            pass
