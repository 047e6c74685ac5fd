"""Transfers: resumable, retried, verified, bounded-parallel downloads of single files.

A file is fetched to `<name>.part` and renamed to its final name only after its
size and checksum check out, so no corrupt or truncated file ever carries its
final name. A dropped connection resumes from the exact byte with an HTTP Range
request; 5xx, 429 (honouring Retry-After), 408 and connection errors are retried
with exponential backoff; a checksum mismatch is retried once from scratch and
then fails naming the file. 401/403/404 are not retried: the provider explains
them (what access is missing and where to get it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.auth
import urllib3

from medshard.acquire.download.credentials import strip_userinfo

log = logging.getLogger("medshard.download")

CHUNK = 1 << 20
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "medshard-download (+https://github.com/medshard)"


class DownloadError(Exception):
    """A file could not be fetched; the message is one line naming the file and what to do."""


class ChecksumMismatch(DownloadError):
    """A file's bytes did not match its published checksum twice in a row."""


class AccessDenied(DownloadError):
    """The server refused (401/403/404); the message says what access is missing."""


class Cancelled(Exception):
    """The user interrupted; the partial file stays as `.part` for the next run to resume."""


@dataclass
class Transfer:
    """One file to fetch into the source directory.

    `extract_to` marks an archive: after download it is unpacked into that folder
    (relative to the source directory; "" is the directory itself) and removed.
    Credentials travel in `auth`/`headers`, which never appear in repr or receipts.
    """

    path: str
    url: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    extract_to: str | None = None
    strip_components: int = 0
    auth: tuple[str, str] | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def origin(self) -> str:
        return strip_userinfo(self.url)


@dataclass
class RetryPolicy:
    retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_retry_after_s: float = 900.0
    timeout: tuple[float, float] = (30.0, 120.0)
    sleep: Callable[[float], None] = time.sleep


@dataclass
class FetchResult:
    transfer: Transfer
    size: int
    sha256: str
    downloaded: int = 0
    resumed_from: int = 0
    retries: int = 0
    skipped: bool = False


Explain = Callable[[int, Transfer], "str | None"]


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class Progress:
    """Thread-safe byte counter behind a tqdm bar (bytes, rate, ETA); silent when disabled."""

    def __init__(self, total: int | None, desc: str, enabled: bool | None) -> None:
        from tqdm import tqdm

        self._lock = threading.Lock()
        self.bar = tqdm(
            total=total or None, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
            disable=(not enabled) if enabled is not None else None, dynamic_ncols=True,
        )

    def update(self, n: int) -> None:
        if n:
            with self._lock:
                self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def url_origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the port made explicit for http and https."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class _NoAuth(requests.auth.AuthBase):
    """Explicitly no credentials: stops requests from taking them from ~/.netrc by host."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class OriginBoundSession(requests.Session):
    """A session that sends credentials only to the exact origin they were given for.

    requests would look up ~/.netrc by host name for every request without `auth`, and
    again on every redirect, so a login for a host reached the same host on any port.
    Here credentials come only from medshard's providers (which resolve netrc for the
    provider's origin), and a redirect to another (scheme, host, port) drops them.
    """

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        if request.auth is None and self.auth is None:
            request.auth = _NoAuth()
        return super().prepare_request(request)

    def rebuild_auth(self, prepared_request: requests.PreparedRequest,
                     response: requests.Response) -> None:
        old = url_origin(response.request.url or "")
        if "Authorization" in prepared_request.headers and old != url_origin(
                prepared_request.url or ""):
            del prepared_request.headers["Authorization"]


def new_session(jobs: int = 4) -> requests.Session:
    """A session (credentials bound to their origin) with a pool as large as the parallelism."""
    s = OriginBoundSession()
    adapter = requests.adapters.HTTPAdapter(pool_connections=jobs, pool_maxsize=max(jobs, 4))
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    s.headers["User-Agent"] = USER_AGENT
    return s


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def hash_file(path: Path) -> tuple[int, str, str]:
    """Size, sha256 and md5 of a file, read once."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest(), md5.hexdigest()


def _mismatch(t: Transfer, size: int, sha: str, md5: str) -> str | None:
    if t.size is not None and size != t.size:
        return f"size {size} != expected {t.size}"
    if t.sha256 and sha != t.sha256:
        return f"sha256 {sha[:12]}... != expected {t.sha256[:12]}..."
    if t.md5 and md5 != t.md5:
        return f"md5 {md5} != expected {t.md5}"
    return None


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _backoff(policy: RetryPolicy, attempt: int) -> float:
    base = min(policy.max_backoff_s, policy.backoff_s * 2 ** (attempt - 1))
    return base * (0.5 + random.random() / 2)  # jitter: parallel workers do not retry in lockstep


def _wait_for(policy: RetryPolicy, t: Transfer, e: _Transient, attempt: int) -> float:
    if e.retry_after is None:
        return _backoff(policy, attempt)
    if e.retry_after > policy.max_retry_after_s:
        raise DownloadError(
            f"{t.path}: the server asks to wait {e.retry_after:.0f}s ({e.reason}) at {t.origin}; "
            f"rerun later, finished files and partial downloads are kept"
        )
    return e.retry_after


def _refused(status: int, t: Transfer, explain: Explain | None) -> DownloadError:
    detail = explain(status, t) if explain else None
    if detail:
        return AccessDenied(f"{t.path}: {detail}")
    if status == 404:
        return AccessDenied(f"{t.path}: not found (HTTP 404) at {t.origin}; the source's "
                            f"declared files may be out of date: report it")
    return AccessDenied(f"{t.path}: refused with HTTP {status} at {t.origin}")


def request_with_retries(
    session: requests.Session, url: str, policy: RetryPolicy, *, what: str,
    explain: Callable[[int], str | None] | None = None, **kwargs: Any,
) -> requests.Response:
    """GET a small resource (an API listing, a checksum file) with the same retry rules."""
    probe = Transfer(path=what, url=url)
    for attempt in range(1, policy.retries + 2):
        try:
            r = session.get(url, timeout=policy.timeout, **kwargs)
        except requests.RequestException as e:
            err = _Transient(type(e).__name__)
        else:
            if r.status_code < 400:
                return r
            if r.status_code not in RETRY_STATUSES:
                raise _refused(r.status_code, probe, (lambda s, _t: explain(s)) if explain else None)
            err = _Transient(f"HTTP {r.status_code}", retry_after_seconds(r.headers.get("Retry-After")))
        if attempt > policy.retries:
            break
        wait = _wait_for(policy, probe, err, attempt)
        log.warning("retrying %s in %.1fs after %s", what, wait, err.reason)
        policy.sleep(wait)
    raise DownloadError(f"{what}: gave up after {policy.retries} retries ({err.reason}) at "
                        f"{probe.origin}; check the network and rerun")


def _transfer_once(
    session: requests.Session, t: Transfer, part: Path, offset: int, policy: RetryPolicy,
    explain: Explain | None, progress: Progress | None, stop: threading.Event | None = None,
) -> int:
    """Append the bytes from `offset` on to `part`; returns how many arrived."""
    # Byte ranges and checksums refer to the file as stored, not a compressed transfer of it.
    headers = {"Accept-Encoding": "identity", **t.headers}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    got = 0
    try:
        with session.get(t.url, headers=headers, auth=t.auth, stream=True,
                         timeout=policy.timeout) as r:
            if r.status_code == 416 and offset:
                if t.size is None or offset == t.size:
                    return 0  # the part is already whole; verification decides
                part.unlink()
                raise _Transient("range not satisfiable; restarting the file", 0.0)
            if r.status_code in RETRY_STATUSES:
                raise _Transient(f"HTTP {r.status_code}", retry_after_seconds(r.headers.get("Retry-After")))
            if r.status_code >= 400:
                raise _refused(r.status_code, t, explain)
            mode = "ab"
            if offset and r.status_code == 206 and _range_start(r) != offset:
                part.unlink()
                raise _Transient(f"server answered a different range than bytes={offset}-; "
                                 f"restarting the file", 0.0)
            if offset and r.status_code != 206:
                # The server ignored the Range header and sends everything: start over.
                mode = "wb"
                if progress:
                    progress.update(-offset)
            expected = _expected_length(r)
            with open(part, mode) as f:
                while True:
                    try:
                        # read1: every byte that arrived is kept, even when the connection drops.
                        chunk = r.raw.read1(CHUNK, decode_content=True)
                    except (urllib3.exceptions.HTTPError, OSError) as e:
                        raise _Transient(f"{type(e).__name__} after {got} bytes") from None
                    if not chunk:
                        break
                    if stop is not None and stop.is_set():
                        raise Cancelled(t.path)
                    f.write(chunk)
                    got += len(chunk)
                    if progress:
                        progress.update(len(chunk))
            if expected is not None and got < expected:
                raise _Transient(f"connection closed after {got} of {expected} bytes")
    except requests.RequestException as e:
        raise _Transient(f"{type(e).__name__} after {got} bytes") from None
    return got


def _range_start(r: requests.Response) -> int | None:
    """First byte of a 206 answer, from `Content-Range: bytes START-END/TOTAL`."""
    value = r.headers.get("Content-Range", "")
    head = value.removeprefix("bytes ").split("-", 1)[0].strip()
    return int(head) if head.isdigit() else None


def _expected_length(r: requests.Response) -> int | None:
    """Bytes the body should have, when the server says and sends it unencoded."""
    if r.headers.get("Content-Encoding", "identity") != "identity":
        return None
    value = r.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def fetch_file(
    session: requests.Session, t: Transfer, dest: Path, policy: RetryPolicy | None = None,
    explain: Explain | None = None, progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> FetchResult:
    """Fetch `t` to `dest/t.path`, resuming a partial `.part` file; verify; rename into place.

    An existing final file that matches the declared size/checksum is kept. Raises
    DownloadError (ChecksumMismatch, AccessDenied) with a message naming the file.
    """
    policy = policy or RetryPolicy()
    final = dest.joinpath(*t.path.split("/"))
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.is_file():
        size, sha, md5 = hash_file(final)
        if _mismatch(t, size, sha, md5) is None:
            if progress:
                progress.update(size)
            return FetchResult(t, size, sha, skipped=True)
        final.unlink()  # a corrupt file must not keep its final name
    part = final.with_name(final.name + ".part")
    retries = checksum_failures = downloaded = 0
    resumed_from = part.stat().st_size if part.exists() else 0
    if resumed_from and progress:
        progress.update(resumed_from)
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if t.size is not None and offset > t.size:
            part.unlink()
            if progress:
                progress.update(-offset)
            offset = 0
        try:
            downloaded += _transfer_once(session, t, part, offset, policy, explain, progress, stop)
            size = part.stat().st_size if part.exists() else 0
            if t.size is not None and size < t.size:
                raise _Transient(f"connection closed at byte {size} of {t.size}")
        except _Transient as e:
            retries += 1
            if retries > policy.retries:
                raise DownloadError(
                    f"{t.path}: gave up after {policy.retries} retries ({e.reason}) at {t.origin}; "
                    f"rerun to resume from the bytes already fetched"
                ) from None
            wait = _wait_for(policy, t, e, retries)
            log.warning("retrying %s in %.1fs after %s (%d/%d)", t.path, wait, e.reason,
                     retries, policy.retries)
            policy.sleep(wait)
            continue
        size, sha, md5 = hash_file(part)
        problem = _mismatch(t, size, sha, md5)
        if problem is None:
            os.replace(part, final)
            return FetchResult(t, size, sha, downloaded, resumed_from, retries)
        part.unlink()
        if progress:
            progress.update(-size)
        checksum_failures += 1
        if checksum_failures >= 2:
            raise ChecksumMismatch(
                f"{t.path}: {problem} twice in a row from {t.origin}; the upstream copy or a proxy "
                f"is corrupt: try again later, another --mirror, or report it"
            )
        log.warning("%s: %s; fetching it again from scratch", t.path, problem)


def fetch_all(
    session: requests.Session, transfers: Iterable[Transfer], dest: Path, *, jobs: int = 4,
    policy: RetryPolicy | None = None, explain: Explain | None = None,
    progress: Progress | None = None,
) -> tuple[list[FetchResult], list[DownloadError]]:
    """Fetch every transfer with at most `jobs` in flight; one failure does not stop the rest.

    Returns the results and the errors (each naming its file); partial files stay
    as `.part` so the next run resumes them.
    """
    results: list[FetchResult] = []
    errors: list[DownloadError] = []
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="medshard-dl")
    try:
        futures = [pool.submit(fetch_file, session, t, dest, policy, explain, progress, stop)
                   for t in transfers]
        for fut in as_completed(futures):
            try:
                results.append(fut.result())
            except DownloadError as e:
                errors.append(e)
    except BaseException:
        # Ctrl-C: stop transfers at the next chunk instead of waiting for every file to finish.
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    results.sort(key=lambda r: r.transfer.path)
    return results, errors


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_free_space(dest: Path, needed: int, margin: float = 0.05) -> None:
    """Raise DiskFull when the filesystem of `dest` has less than `needed` bytes (+ margin) free."""
    probe = dest
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    want = int(needed * (1 + margin))
    if needed and free < want:
        raise DiskFull(
            f"{dest} needs about {human_bytes(want)} free but has {human_bytes(free)}: "
            f"free space or choose another --data-root"
        )


class DiskFull(DownloadError):
    """Not enough free space for the download."""
