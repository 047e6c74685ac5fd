"""`medshard verify`: check a release, local or at any fsspec URL, against SHA256SUMS and manifest.

Every file listed in SHA256SUMS is streamed once (sha256 and size; WebDataset shards are
counted sample by sample in the same pass), and the manifest is checked against the
sums: every shard listed with the same sha256, its bytes and sample count as recorded,
and per source and split the samples adding up to the release's counts.
"""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import fsspec
from tqdm import tqdm

from medshard.schemas import Manifest
from medshard.sharding.members import split_member_name
from medshard.sharding.release.make import MANIFEST, SUMS, parse_sums

RECIPE_MARKER = "RECIPE_ONLY"


def target_fs(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, root path) for a local path or URL."""
    fs, root = fsspec.core.url_to_fs(url.rstrip("/") or "/")
    return fs, root.rstrip("/")


class _HashingReader(io.RawIOBase):
    """Reads through a file object, hashing and counting every byte read."""

    def __init__(self, f) -> None:
        self._f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._f.read(len(b))
        n = len(data)
        b[:n] = data
        self.sha.update(data)
        self.size += n
        return n

    def drain(self, bar) -> None:
        while block := self._f.read(1 << 20):
            self.sha.update(block)
            self.size += len(block)
            bar.update(len(block))


@dataclass
class VerifyReport:
    url: str
    checked: int = 0
    bytes: int = 0
    bad: list[str] = field(default_factory=list)
    recipe_only: bool = False
    skipped_payloads: int = 0


def _stream_file(fs, path: str, is_tar: bool, bar) -> tuple[str, int, int | None]:
    """(sha256, size, samples in a tar or None), reading the file once."""
    with fs.open(path, "rb", block_size=1 << 20) as f:
        reader = _HashingReader(f)
        samples = None
        if is_tar:
            import tarfile

            keys: set[str] = set()
            before = 0
            buffered = io.BufferedReader(reader, 1 << 20)
            with tarfile.open(fileobj=buffered, mode="r|") as tar:
                for info in tar:
                    if info.isfile():
                        keys.add(split_member_name(info.name)[0])
                    bar.update(reader.size - before)
                    before = reader.size
            samples = len(keys)
            # what tarfile did not need (end-of-archive padding) still counts for the hash
            rest = buffered.read()
            while rest:
                rest = buffered.read()
            bar.update(reader.size - before)
        reader.drain(bar)
        return reader.sha.hexdigest(), reader.size, samples


def verify_release(url: str, progress: bool = True) -> VerifyReport:
    """Check every file and the manifest; the report names each bad file."""
    fs, root = target_fs(url)
    report = VerifyReport(url=url)

    def read(name: str) -> bytes | None:
        try:
            with fs.open(f"{root}/{name}", "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    sums_text = read(SUMS)
    if sums_text is None:
        report.bad.append(f"{SUMS}: missing (not a release, or a publish that did not finish)")
        return report
    try:
        sums = parse_sums(sums_text.decode())
    except ValueError as exc:
        report.bad.append(f"{SUMS}: malformed ({exc})")
        return report
    report.recipe_only = read(RECIPE_MARKER) is not None
    manifest_bytes = read(MANIFEST)
    manifest: Manifest | None = None
    if manifest_bytes is None:
        report.bad.append(f"{MANIFEST}: missing")
    else:
        try:
            manifest = Manifest.model_validate_json(manifest_bytes)
        except ValueError:
            report.bad.append(f"{MANIFEST}: not a medshard manifest")
    shards = {s.path: s for s in manifest.shards} if manifest else {}
    payloads = set(shards) | {"index.parquet", "quarantine.jsonl"}

    sizes: dict[str, int] = {}
    for path in sums:
        try:
            sizes[path] = int(fs.info(f"{root}/{path}")["size"])
        except FileNotFoundError:
            sizes[path] = -1
    counted: dict[str, int | None] = {}
    with tqdm(total=sum(s for s in sizes.values() if s > 0), unit="B", unit_scale=True,
              desc="verify", disable=not progress, dynamic_ncols=True) as bar:
        for path, expected in sorted(sums.items()):
            if sizes[path] < 0:
                if report.recipe_only and path in payloads:
                    report.skipped_payloads += 1
                else:
                    report.bad.append(f"{path}: missing")
                continue
            is_tar = path.endswith(".tar") and path in shards
            try:
                digest, size, samples = _stream_file(fs, f"{root}/{path}", is_tar, bar)
            except Exception as exc:  # unreadable shard: name it, keep checking the rest
                report.bad.append(f"{path}: unreadable ({type(exc).__name__}: {exc})")
                continue
            report.checked += 1
            report.bytes += size
            counted[path] = samples
            if digest != expected:
                report.bad.append(f"{path}: sha256 {digest[:12]}.. != {expected[:12]}.. "
                                  "in SHA256SUMS")
    if manifest is not None:
        _check_manifest(manifest, sums, sizes, counted, report)
    return report


def _check_manifest(manifest: Manifest, sums: dict[str, str], sizes: dict[str, int],
                    counted: dict[str, int | None], report: VerifyReport) -> None:
    if manifest.release is None:
        report.bad.append(f"{MANIFEST}: a build manifest, not a release")
        return
    per_split: dict[tuple[str, str], int] = defaultdict(int)
    for shard in manifest.shards:
        if shard.format == "webdataset":
            per_split[(shard.source, shard.split)] += shard.samples
        if shard.path not in sums:
            report.bad.append(f"{shard.path}: in the manifest but not in {SUMS}")
            continue
        if sums[shard.path] != shard.sha256:
            report.bad.append(f"{shard.path}: {SUMS} and {MANIFEST} disagree on its sha256")
        if sizes.get(shard.path, -1) >= 0 and sizes[shard.path] != shard.bytes:
            report.bad.append(f"{shard.path}: {sizes[shard.path]} bytes, manifest says "
                              f"{shard.bytes}")
        n = counted.get(shard.path)
        if n is not None and n != shard.samples:
            report.bad.append(f"{shard.path}: {n} samples, manifest says {shard.samples}")
    if not per_split:  # Parquet-only release
        for shard in manifest.shards:
            per_split[(shard.source, shard.split)] += shard.samples
    for slug, splits in manifest.release.splits.items():
        for split, content in splits.items():
            shard_total = per_split.get((slug, split), 0)
            summary = manifest.sources.get(slug)
            listed = summary.counts[split].samples if summary and split in summary.counts else -1
            if not (content.samples == shard_total == listed == len(content.sample_hashes)):
                report.bad.append(f"{MANIFEST}: {slug}/{split} counts disagree (release "
                                  f"{content.samples}, shards {shard_total}, source {listed})")
