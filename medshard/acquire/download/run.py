"""`download_source`: consent, plan, fetch, verify, unpack, receipt, summary for one source.

Files land in `DATA_ROOT/<slug>/` in the layout the dataset ships, with a receipt
`DATA_ROOT/<slug>/.medshard-receipt.json` listing every file (size, sha256, the
URL it came from without credentials). Running it again is cheap: when the
receipt matches the source's declared download and every file is in place,
nothing is fetched; otherwise partial files resume.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medshard import __version__ as _medshard_version
from medshard.acquire.consent import medshard_home, require_consent
from medshard.acquire.download.archive import UnsafeArchive, extract_archive, safe_member_path
from medshard.acquire.download.credentials import has_userinfo, strip_userinfo
from medshard.acquire.download.engine import (
    DiskFull,
    DownloadError,
    Progress,
    RetryPolicy,
    Transfer,
    check_free_space,
    fetch_all,
    hash_file,
    human_bytes,
    new_session,
    utc_now,
)
from medshard.acquire.download.providers import ProviderContext, get_provider, manual
from medshard.errors import UserError
from medshard.schemas.download import RECEIPT_NAME, DownloadSpec, Receipt, ReceiptFile
from medshard.sources.base import MissingRawData, Source

log = logging.getLogger("medshard.download")
MIRRORS_FILE = "mirrors.json"


class DownloadFailed(DownloadError):
    """Some files of a source could not be fetched; the message names the first."""


@dataclass
class DownloadSummary:
    source: str
    dest: Path
    files: int
    total_bytes: int
    downloaded_bytes: int = 0
    present: int = 0
    resumed: int = 0
    retries: int = 0
    seconds: float = 0.0
    up_to_date: bool = False
    via: str = ""

    def line(self) -> str:
        """One line for people: what is there now and what this run did."""
        head = f"{self.source}: {self.files} files, {human_bytes(self.total_bytes)} in {self.dest}"
        if self.up_to_date:
            return head + " (up to date)"
        if self.downloaded_bytes == 0 and self.present == self.files:
            return f"{head} (verified, nothing to download; {self.seconds:.1f}s, via {self.via})"
        parts = [f"downloaded {human_bytes(self.downloaded_bytes)}"]
        if self.present:
            parts.append(f"{self.present} already present")
        if self.resumed:
            parts.append(f"{self.resumed} resumed")
        if self.retries:
            parts.append(f"{self.retries} retries")
        rate = self.downloaded_bytes / self.seconds if self.seconds > 0 else 0
        return (f"{head} ({', '.join(parts)}; {self.seconds:.1f}s, {human_bytes(rate)}/s"
                f"{', via ' + self.via if self.via else ''})")


def spec_hash(spec: DownloadSpec) -> str:
    """A short stable hash of a download declaration: a changed declaration refetches."""
    canon = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def read_receipt(dest: Path) -> Receipt | None:
    p = dest / RECEIPT_NAME
    if not p.is_file():
        return None
    try:
        return Receipt.model_validate_json(p.read_bytes())
    except ValueError:
        log.warning("%s is damaged; files will be checked again", p)
        return None


def write_receipt(dest: Path, receipt: Receipt) -> Path:
    """Write the receipt atomically (temporary name, then rename)."""
    p = dest / RECEIPT_NAME
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(receipt.model_dump(), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, p)
    return p


def _receipt_intact(dest: Path, receipt: Receipt, verify: bool) -> bool:
    for f in receipt.files:
        p = dest.joinpath(*f.path.split("/"))
        if not p.is_file() or p.stat().st_size != f.size:
            return False
        if verify and hash_file(p)[1] != f.sha256:
            log.warning("%s: %s changed since download; fetching again", receipt.source, f.path)
            return False
    return True


def resolve_mirror(slug: str, mirror: str | None) -> str | None:
    """The mirror for `slug`: --mirror, else $MEDSHARD_MIRROR, else $MEDSHARD_HOME/mirrors.json.

    mirrors.json maps a slug (or "*" for all) to a mirror URL. Mirror URLs must not
    carry credentials: those belong in ~/.netrc.
    """
    chosen = mirror or os.environ.get("MEDSHARD_MIRROR")
    if not chosen:
        cfg = medshard_home() / MIRRORS_FILE
        if cfg.is_file():
            try:
                table = json.loads(cfg.read_text(encoding="utf-8"))
            except ValueError as e:
                raise UserError(f"{cfg} is not valid JSON; fix it or delete it") from e
            chosen = table.get(slug) or table.get("*")
    if chosen and has_userinfo(chosen):
        raise UserError(f"mirror URL {strip_userinfo(chosen)} carries a login; remove it from the "
                        f"URL and put it in ~/.netrc (machine <host> login <user> password <pw>)")
    return chosen or None


def _check_paths(slug: str, transfers: list[Transfer]) -> None:
    for t in transfers:
        for rel in (t.path, t.extract_to):
            try:
                clean = safe_member_path(rel) if rel else rel
            except UnsafeArchive:
                clean = None
            if clean != rel:
                raise DownloadError(f"{slug}: refusing unsafe file path {rel!r} from {t.origin}")


def _needed_bytes(dest: Path, approx: int | None, transfers: list[Transfer]) -> int:
    known = 0
    for t in transfers:
        if t.size is None or dest.joinpath(*t.path.split("/")).is_file():
            continue
        # An archive needs room for itself and its unpacked content (rough: twice its size).
        known += t.size * (3 if t.extract_to is not None else 1)
    if known or not approx:
        return known
    # Only an estimate is declared: what is already on disk counts against it (resumed runs).
    present = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    return max(0, approx - present)


def _files_under(dest: Path) -> list[str]:
    out = []
    for p in sorted(dest.rglob("*")):
        rel = p.relative_to(dest).as_posix()
        if p.is_file() and rel != RECEIPT_NAME and not rel.endswith(".part"):
            out.append(rel)
    return out


def _manual(source: type[Source] | Source, spec: DownloadSpec, dest: Path, data_root: Path,
            progress: bool | None, echo: Callable[[str], None], t0: float) -> DownloadSummary:
    info = source.info
    steps = spec.manual
    assert steps is not None
    echo(manual.instructions(info, steps, dest))
    if not steps.layouts:  # the source's own check of its root says whether the copy is there
        instance = source() if isinstance(source, type) else source
        try:
            instance.check_root(dest)
        except MissingRawData as e:
            raise UserError(f"{e}; follow the steps above (DATA_ROOT is {data_root}), then rerun "
                            f"`medshard download {info.name} --data-root {data_root}`") from None
        return _receipt_for_placed(info.name, dest, spec_hash(spec), progress, t0, via="manual")
    name, _ = manual.complete_layout(steps, dest)
    if name is None:
        try:
            manual.unpack_placed_archives(spec, dest)
        except UnsafeArchive as e:
            raise UserError(f"{info.name}: refusing the archive you placed: {e}") from e
        name, problems = manual.complete_layout(steps, dest)
        if name is None:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise UserError(
                f"{info.name}: {problems[0]}{more} under {dest}; follow the steps above, then rerun "
                f"`medshard download {info.name} --data-root {data_root}`"
            )
    return _receipt_for_placed(info.name, dest, spec_hash(spec), progress, t0,
                               via=f"manual ({name} layout)")


def _receipt_for_placed(slug: str, dest: Path, declared: str, progress: bool | None, t0: float,
                        via: str) -> DownloadSummary:
    """Hash every file a person placed under `dest` and write the receipt."""
    rels = _files_under(dest)
    total = sum(dest.joinpath(r).stat().st_size for r in rels)
    bar = Progress(total, f"{slug} verify", progress)
    files = []
    try:
        for rel in rels:
            size, sha, _ = hash_file(dest / rel)
            bar.update(size)
            files.append(ReceiptFile(path=rel, size=size, sha256=sha, origin="manual"))
    finally:
        bar.close()
    write_receipt(dest, Receipt(source=slug, provider="manual", spec_hash=declared,
                                completed_at=utc_now(), medshard_version=_medshard_version,
                                files=files))
    return DownloadSummary(slug, dest, len(files), total, present=len(files),
                           seconds=time.monotonic() - t0, via=via)


def download_source(
    source: type[Source] | Source, data_root: Path, *, mirror: str | None = None, jobs: int = 4,
    policy: RetryPolicy | None = None, progress: bool | None = None, verify: bool = False,
    echo: Callable[[str], None] = print, base_url: str | None = None,
) -> DownloadSummary:
    """Fetch one source's raw files into `data_root/<slug>/`, verified, with a receipt.

    Requires consent to the source's current terms (UserError otherwise). Raises
    UserError for what a person must fix (consent, manual steps, disk space, a
    mirror URL with a login) and DownloadError, naming the file, for transfers that
    failed after retries. `base_url` points the provider's API elsewhere (tests).
    """
    info = source.info
    spec: DownloadSpec | None = source.download
    dest = Path(data_root).expanduser() / info.name
    if spec is None:
        raise UserError(f"{info.name} declares no download yet; place its files under {dest} "
                        f"as described at {info.homepage}")
    require_consent(info)
    dest.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    h = spec_hash(spec)
    mirror = resolve_mirror(info.name, mirror)
    old = read_receipt(dest)
    if old and old.spec_hash == h and _receipt_intact(dest, old, verify):
        return DownloadSummary(info.name, dest, len(old.files), sum(f.size for f in old.files),
                               up_to_date=True)
    if spec is not None and spec.provider == "manual" and not mirror:
        return _manual(source, spec, dest, Path(data_root), progress, echo, t0)

    policy = policy or RetryPolicy()
    session = new_session(jobs)
    ctx = ProviderContext(info=info, session=session, policy=policy,
                          base_url=mirror if mirror else base_url)
    provider = get_provider("mirror" if mirror else spec.provider)
    approx = spec.approx_bytes if spec else None
    try:
        try:
            transfers = provider.plan(spec, ctx)
        except (ValueError, KeyError, TypeError) as e:
            raise DownloadError(
                f"{info.name}: the {provider.__name__.rsplit('.', 1)[1]} listing did not look as "
                f"expected ({type(e).__name__}); the service may have changed: report it"
            ) from None
        _check_paths(info.name, transfers)
        try:
            check_free_space(dest, _needed_bytes(dest, approx, transfers))
        except DiskFull as e:
            raise UserError(f"{info.name}: {e}") from e
        # Exact when every size is known; else the declared estimate gives a rough ETA.
        sizes_known = all(t.size is not None for t in transfers)
        total = sum(t.size or 0 for t in transfers) if sizes_known else approx
        bar = Progress(total, info.name, progress)
        try:
            results, errors = fetch_all(
                session, transfers, dest, jobs=jobs, policy=policy, progress=bar,
                explain=lambda status, t: provider.explain(status, t, spec, ctx),
            )
        finally:
            bar.close()
    finally:
        session.close()
    if errors:
        for e in errors[1:]:
            log.error("%s", e)
        more = f" ({len(errors) - 1} more failed, listed above)" if len(errors) > 1 else ""
        raise DownloadFailed(f"{info.name}: {errors[0]}{more}")

    files: list[ReceiptFile] = []
    for r in results:
        t = r.transfer
        if t.extract_to is None:
            files.append(ReceiptFile(path=t.path, size=r.size, sha256=r.sha256, origin=t.origin))
            continue
        archive = dest.joinpath(*t.path.split("/"))
        target = dest.joinpath(*t.extract_to.split("/")) if t.extract_to else dest
        try:
            extracted = extract_archive(archive, target, t.strip_components)
        except UnsafeArchive as e:
            raise DownloadFailed(f"{info.name}: refusing to unpack {t.path} from {t.origin}: {e}; "
                                 f"nothing was written from it: report it") from e
        prefix = f"{t.extract_to}/" if t.extract_to else ""
        files += [ReceiptFile(path=prefix + x.path, size=x.size, sha256=x.sha256,
                              origin=f"{t.origin}!{x.member}") for x in extracted]
        archive.unlink()  # unpacked and recorded: the archive would only double the disk use
    files.sort(key=lambda f: f.path)
    receipt = Receipt(source=info.name, provider="mirror" if mirror else spec.provider,
                      spec_hash=h, completed_at=utc_now(), medshard_version=_medshard_version,
                      files=files)
    write_receipt(dest, receipt)
    return DownloadSummary(
        info.name, dest, len(files), sum(f.size for f in files),
        downloaded_bytes=sum(r.downloaded for r in results),
        present=sum(r.skipped for r in results),
        resumed=sum(1 for r in results if r.resumed_from),
        retries=sum(r.retries for r in results),
        seconds=time.monotonic() - t0,
        via=f"mirror {strip_userinfo(mirror)}" if mirror else spec.provider,
    )
