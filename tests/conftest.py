"""Shared fixtures: an isolated MEDSHARD_HOME, and miniature raw sources in their real layouts."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_HOME = tempfile.mkdtemp(prefix="medshard-home-")
os.environ["MEDSHARD_HOME"] = _HOME
os.environ["MEDSHARD_SECRET"] = "test-installation-secret"
# real recordings come from the cache the test command fills first; tests never fetch
os.environ["MEDSHARD_REALDATA_OFFLINE"] = "1"


def pytest_addoption(parser):
    parser.addoption("--sources", default=None, metavar="SLUG,SLUG",
                     help="build and check only these built-in sources in the conformance kit "
                     "(default: all); tests that need the whole build are skipped")


def kit_sources(config) -> list[str]:
    from medshard.sources import registry

    chosen = config.getoption("--sources")
    every = sorted(registry.BUILTIN_SOURCES)
    if not chosen:
        return every
    slugs = sorted({s.strip() for s in chosen.split(",") if s.strip()})
    unknown = [s for s in slugs if s not in every]
    if unknown:
        raise pytest.UsageError(f"--sources: no built-in source {unknown}; choose from {every}")
    return slugs


def _reads_kit(item) -> bool:
    return "kit" in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected
def pytest_collection_modifyitems(config, items):
    """`--sources` keeps only those sources' conformance tests; the tests that read the
    kit's build run last, so that the build (a child process started when collection
    ends) overlaps every other test."""
    if config.getoption("--sources"):
        chosen = set(kit_sources(config))
        keep, drop = [], []
        for item in items:
            slug = getattr(item, "callspec", None) and item.callspec.params.get("slug")
            is_builtin = item.originalname == "test_builtin_source_conforms"
            (drop if is_builtin and slug not in chosen else keep).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    items[:] = [i for i in items if not _reads_kit(i)] + [i for i in items if _reads_kit(i)]


_PENDING_KIT = pytest.StashKey()


def pytest_collection_finish(session):
    """Start the conformance kit's build in a child process as soon as the tests that read
    it are known: the session runs its other tests meanwhile (CI has two cores; pytest
    uses one)."""
    if not session.config.option.collectonly and any(_reads_kit(i) for i in session.items):
        from medshard.testing.kit import start_build_fixtures

        workdir = Path(tempfile.mkdtemp(prefix="conformance-", dir=_HOME))
        session.config.stash[_PENDING_KIT] = start_build_fixtures(
            kit_sources(session.config), workdir)


def pytest_sessionfinish(session, exitstatus):
    pending = session.config.stash.get(_PENDING_KIT, None)
    if pending is not None:
        pending.cancel()
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory) -> Path:
    """PTB-XL and CheXpert miniatures (real ECG / real radiograph pixels); treat as read-only."""
    from medshard.sources.cxr import chexpert_fixture as chexpert
    from medshard.sources.ecg import ptbxl_fixture as ptbxl

    root = tmp_path_factory.mktemp("raw")
    ptbxl.write_raw(root / "ptb-xl")
    chexpert.write_raw(root / "chexpert")
    return root


@pytest.fixture
def raw_copy(demo_raw, tmp_path) -> Path:
    """A private, writable copy of the miniature raw sources (for corrupting)."""
    dst = tmp_path / "raw"
    shutil.copytree(demo_raw, dst)
    return dst


@pytest.fixture(scope="session")
def demo_build(demo_raw, tmp_path_factory) -> Path:
    """The PTB-XL and CheXpert miniatures built once by the real pipeline (WebDataset)."""
    from medshard.pipeline.build import BuildConfig, run_build

    out = tmp_path_factory.mktemp("demo-build")
    run_build(BuildConfig(sources=["ptb-xl", "chexpert"], data_root=demo_raw, out=out,
                          formats=("webdataset",), progress=False))
    return out


@pytest.fixture(scope="session")
def kit(request, tmp_path_factory):
    """One build (both formats) of every built-in source's fixture (or of `--sources`), and
    its repeat: the conformance kit's build, shared by the whole-build reader tests. It was
    started in a child process when collection ended; this waits for it."""
    from medshard.testing.kit import start_build_fixtures

    pending = request.config.stash.get(_PENDING_KIT, None)
    if pending is None:  # a kit test that collection did not see (pytest --lf, -p ...)
        pending = start_build_fixtures(kit_sources(request.config),
                                       tmp_path_factory.mktemp("conformance"))
        request.config.stash[_PENDING_KIT] = pending
    return pending.result()

