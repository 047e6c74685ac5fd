"""`medshard publish`: copy a release to any fsspec URL or to the Hugging Face Hub.

Resumable and idempotent: a file already at the target with the release's size and
sha256 is skipped, so running the same command again after an interruption sends only
what is missing or wrong. Payloads go first and SHA256SUMS last, so a target with
SHA256SUMS holds a whole release. Then the target is verified as `medshard verify` would.

The license guard refuses a release containing a source whose terms forbid
redistribution, naming each; `recipe_only` publishes the card, manifest, Croissant,
notes, sums and figures (aggregates, and sample figures only of redistributable
sources) so that others can rebuild the payloads from their own copies.

Credentials come from the environment or the filesystem's own configuration (AWS_*,
~/.aws, GOOGLE_APPLICATION_CREDENTIALS, HF_TOKEN, ~/.cache/huggingface/token), never from
command-line options, and are never printed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from medshard.errors import UserError
from medshard.sharding.manifest import read_manifest
from medshard.sharding.release.make import (
    CARD,
    CROISSANT,
    MANIFEST,
    NOTES,
    SUMS,
    parse_sums,
    source_infos,
)
from medshard.sharding.release.verify import (
    RECIPE_MARKER,
    VerifyReport,
    target_fs,
    verify_release,
)

HF_URL = re.compile(r"^hf://datasets/(?P<repo>[\w.-]+/[\w.-]+)/?$")
RECIPE_TEXT = (
    "This is a recipe-only publication of a medshard release: card, manifest, Croissant,\n"
    "release notes, SHA256SUMS and figures, without the sample data. Rebuild the payloads\n"
    "from your own copies of the raw data:\n\n"
    "  medshard rebuild URL --data-root DATA_ROOT --out RELEASE\n\n"
    "The rebuilt files match SHA256SUMS byte for byte.\n"
)


@dataclass
class PublishReport:
    url: str
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    verify: VerifyReport | None = None


def redistribution_refusal(release: Path) -> str | None:
    """One line naming each source whose terms forbid publishing its data, or None."""
    manifest = read_manifest(release / MANIFEST)
    _, barriers = source_infos(manifest)
    refused = [f"{s} ({why})" for s, why in sorted(barriers.items()) if why]
    if not refused:
        return None
    return ("publishing refused: the terms of " + "; ".join(refused) + " forbid redistribution; "
            "publish with --recipe-only (card, manifest, Croissant; others rebuild from their "
            "own copies) or release a build without them (medshard build --license-allow ...)")


def release_files(release: Path, recipe_only: bool) -> list[str]:
    """The files to send, payloads first, SHA256SUMS last."""
    sums = parse_sums((release / SUMS).read_text())
    manifest = read_manifest(release / MANIFEST)
    payloads = {s.path for s in manifest.shards} | {"index.parquet", "quarantine.jsonl"}
    files = [p for p in sorted(sums) if not (recipe_only and p in payloads)]
    meta = {MANIFEST, CROISSANT, CARD, NOTES}
    return ([p for p in files if p not in meta and not p.startswith("plots/")]
            + [p for p in files if p.startswith("plots/")]
            + [p for p in files if p in meta] + [SUMS])


def _sha256_remote(fs, path: str) -> str:
    h = hashlib.sha256()
    with fs.open(path, "rb", block_size=1 << 20) as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _already_there(fs, path: str, size: int, sha: str) -> bool:
    try:
        if int(fs.info(path)["size"]) != size:
            return False
    except FileNotFoundError:
        return False
    return _sha256_remote(fs, path) == sha


def upload_file(fs, local: Path, remote: str) -> None:
    """Send one file; object stores make it visible whole, a local target via rename."""
    parent = remote.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "file" in protocols:
        tmp = f"{parent}/.{remote.rsplit('/', 1)[1]}.partial"
        fs.put_file(str(local), tmp)
        fs.mv(tmp, remote)
    else:
        fs.put_file(str(local), remote)


def publish_release(release: Path, url: str, recipe_only: bool = False,
                    progress: bool = True) -> PublishReport:
    release = Path(release)
    if not (release / SUMS).is_file() or not (release / MANIFEST).is_file():
        raise UserError(f"{release} is not a release folder (no {SUMS} or {MANIFEST}): "
                        "make one with `medshard release`")
    if read_manifest(release / MANIFEST).release is None:
        raise UserError(f"{release} holds a build, not a release: run `medshard release` first")
    if not recipe_only:
        refusal = redistribution_refusal(release)
        if refusal:
            raise UserError(refusal)
    files = release_files(release, recipe_only)
    sums = parse_sums((release / SUMS).read_text())
    if HF_URL.match(url):
        return _publish_hf(release, url, files, recipe_only, progress)
    fs, root = target_fs(url)
    report = PublishReport(url=url)
    total = sum((release / p).stat().st_size for p in files)
    marker = release.parent / f".{release.name}.{RECIPE_MARKER}"
    with tqdm(total=total, unit="B", unit_scale=True, desc="publish", disable=not progress,
              dynamic_ncols=True) as bar:
        if recipe_only:
            marker.write_text(RECIPE_TEXT)
            upload_file(fs, marker, f"{root}/{RECIPE_MARKER}")
            marker.unlink()
        elif fs.exists(f"{root}/{RECIPE_MARKER}"):  # the data now follows an earlier recipe
            fs.rm_file(f"{root}/{RECIPE_MARKER}")
        for path in files:
            local = release / path
            size = local.stat().st_size
            sha = sums.get(path) or hashlib.sha256(local.read_bytes()).hexdigest()
            if _already_there(fs, f"{root}/{path}", size, sha):
                report.skipped.append(path)
            else:
                upload_file(fs, local, f"{root}/{path}")
                report.sent.append(path)
            bar.update(size)
    report.verify = verify_release(url, progress=progress)
    return report


def _publish_hf(release: Path, url: str, files: list[str], recipe_only: bool,
                progress: bool) -> PublishReport:
    """Upload resumably (files the Hub already has are skipped), then tag `vX.Y.Z`.

    huggingface_hub < 2 resumes with `upload_large_folder`, >= 2 with `upload_folder`.
    The upload runs from a staging folder of hard links next to the release, because
    `upload_large_folder` keeps its resume state inside the folder it uploads.
    """
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError
    except ImportError:
        raise UserError("publishing to the Hub needs huggingface_hub: "
                        "pip install 'medshard[release]'") from None
    m = HF_URL.match(url)
    assert m is not None
    repo = m.group("repo")
    version = read_manifest(release / MANIFEST).release.version  # type: ignore[union-attr]
    stage = release.parent / f".{release.name}.hf-upload"
    for path in files:
        dst = stage / path
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                dst.hardlink_to(release / path)
            except OSError:
                shutil.copyfile(release / path, dst)
    if recipe_only:
        (stage / RECIPE_MARKER).write_text(RECIPE_TEXT)
    api = HfApi()  # token from HF_TOKEN or the huggingface_hub login cache
    try:
        api.create_repo(repo, repo_type="dataset", exist_ok=True, private=True)
        if hasattr(api, "upload_large_folder"):  # huggingface_hub < 2: the resumable path
            api.upload_large_folder(repo_id=repo, folder_path=stage, repo_type="dataset",
                                    print_report=progress)
        else:  # huggingface_hub >= 2: upload_folder itself resumes and batches commits
            api.upload_folder(repo_id=repo, folder_path=stage, repo_type="dataset",
                              commit_message=f"medshard release {version}")
        tags = {t.name for t in api.list_repo_refs(repo, repo_type="dataset").tags}
        if f"v{version}" not in tags:
            api.create_tag(repo, tag=f"v{version}", repo_type="dataset",
                           tag_message=f"medshard release {version}")
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", "?")
        raise UserError(f"the Hub refused the upload to {repo} (HTTP {status}); check that "
                        "HF_TOKEN has write access to it") from None
    shutil.rmtree(stage)
    report = PublishReport(url=url, sent=list(files))
    report.verify = verify_release(f"hf://datasets/{repo}@v{version}", progress=progress)
    return report
