"""Every registered source passes the conformance kit on its fixture; the kit catches what it claims.

One session-scoped build over all fixtures (and its repeat) serves every check of every
source. Dataset-specific meaning (label tables, transforms) lives in the per-source tests.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from pathlib import Path

import pytest

from medshard.sources import available_sources, registry
from medshard.testing import CHECKS, ConformanceError, build_fixtures, check_sources, run_check
from tests import conformance_toy

BUILTINS = sorted(registry.BUILTIN_SOURCES)


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("slug", BUILTINS)
def test_builtin_source_conforms(kit, slug, check):
    run_check(kit, slug, check)


def test_every_builtin_is_registered_with_a_fixture():
    assert set(BUILTINS) <= set(available_sources())
    from medshard.sources import source_class

    assert all(source_class(s).fixture for s in BUILTINS)


@pytest.fixture
def registered(monkeypatch):
    """Register test sources by "module:Class" for the duration of a test."""

    def register(**targets: str) -> None:
        monkeypatch.setattr(registry, "BUILTIN_SOURCES", {**registry.BUILTIN_SOURCES, **targets})
        registry._registry.cache_clear()

    yield register
    registry._registry.cache_clear()


def test_the_toy_source_passes_every_check(registered, tmp_path):
    registered(**{"toy-eeg": "tests.conformance_toy:ToyEEG"})
    check_sources(["toy-eeg"], tmp_path)


@pytest.mark.parametrize("slug", sorted(conformance_toy.BROKEN))
def test_a_broken_source_fails_the_check_that_names_its_defect(registered, tmp_path, slug):
    cls, check, needs_build = conformance_toy.BROKEN[slug]
    registered(**{slug: f"tests.conformance_toy:{cls.__name__}"})
    with pytest.raises(ConformanceError, match=rf"^{slug}: {check}: "):
        kit = build_fixtures([slug], tmp_path, build=needs_build,
                             repeat=check == "rebuild_identical")
        run_check(kit, slug, check)


def test_every_check_a_source_can_break_has_a_broken_source():
    # formats_agree, sample_schema and loader_reads_all guard the pipeline's own writers:
    # no source can make the two formats differ or write an invalid sample (it is
    # quarantined at `validate` first); hf_datasets_reads is the client-side view of
    # stable_json, which a broken source fails first. The built-ins exercise them all.
    caught = {check for _, check, _ in conformance_toy.BROKEN.values()}
    assert set(CHECKS) - caught == {"formats_agree", "sample_schema", "loader_reads_all",
                                    "hf_datasets_reads"}


def test_a_third_party_package_registered_by_entry_point_passes(tmp_path, monkeypatch):
    pkg = tmp_path / "site"
    (pkg / "medshard_toy_plugin").mkdir(parents=True)
    (pkg / "medshard_toy_plugin" / "__init__.py").write_text(
        "from tests.conformance_toy import ToyEEG\n\n\n"
        "class PluginEEG(ToyEEG):\n"
        "    info = ToyEEG.info.model_copy(update={'name': 'plugin-eeg'})\n"
    )
    dist = pkg / "medshard_toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: medshard-toy-plugin\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[medshard.sources]\nplugin-eeg = medshard_toy_plugin:PluginEEG\n")
    monkeypatch.syspath_prepend(str(pkg))
    importlib.invalidate_caches()
    registry._registry.cache_clear()
    try:
        assert "plugin-eeg" in available_sources()
        check_sources(["plugin-eeg"], tmp_path / "work")
    finally:
        registry._registry.cache_clear()
        sys.modules.pop("medshard_toy_plugin", None)


def test_a_bad_listing_entry_is_no_duplicate_id(registered, tmp_path):
    """A source may yield a BadRow beside its records (a file its naming rule refuses):
    the id checks skip it instead of crashing the kit."""
    from medshard.schemas import BadRow

    class ListsABadEntry(conformance_toy.ToyEEG):
        info = conformance_toy._named("toy-bad-entry")

        def list_records(self, root):
            yield BadRow("labels.csv", 0, "a refused entry")
            yield from super().list_records(root)

    conformance_toy.ListsABadEntry = ListsABadEntry
    try:
        registered(**{"toy-bad-entry": "tests.conformance_toy:ListsABadEntry"})
        kit = build_fixtures(["toy-bad-entry"], tmp_path, build=False)
        run_check(kit, "toy-bad-entry", "unique_ids")
    finally:
        del conformance_toy.ListsABadEntry


def test_the_kit_built_in_a_child_process_equals_the_kit_built_here(tmp_path):
    """The session's kit builds in a child process (conftest), beside the other tests:
    what its checks read must be what `build_fixtures` gives in this process."""
    from medshard.testing import start_build_fixtures

    pending = start_build_fixtures(["tuev"], tmp_path / "child")
    here = build_fixtures(["tuev"], tmp_path / "here")
    child = pending.result()
    assert child.index == here.index and child.quarantine == here.quarantine
    assert child.manifest["sources"] == here.manifest["sources"]
    assert [r.record_id for r in child.traces["tuev"].records] == \
        [r.record_id for r in here.traces["tuev"].records]
    assert child.traces["tuev"].classes == here.traces["tuev"].classes

    def lines(kit, workdir):  # what the builds said, paths and timings aside, less what
        # other libraries log once per process (Beam's first import)
        return {re.sub(r"in \d+\.\d+s", "in Ns", line.replace(str(workdir), "W"))
                for line in kit.log_text.splitlines()
                if not re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) (?!medshard)", line)}

    assert lines(child, tmp_path / "child") == lines(here, tmp_path / "here")
    assert "channel 22 is not a TCP channel" in child.log_text  # a quarantined record
    for check in CHECKS:
        run_check(child, "tuev", check)


def test_a_check_failing_in_the_kits_child_process_fails_here_with_its_message(
        tmp_path, monkeypatch):
    """A source the child's build rejects (here: one registered by entry point, as a
    third-party package is, that lists an id twice) fails in this process with the
    check's own message; anything else the child dies of is reported with its output."""
    from medshard.testing import start_build_fixtures

    site = tmp_path / "site"
    dist = site / "medshard_dup_ids-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: medshard-dup-ids\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[medshard.sources]\ntoy-duplicate-ids = tests.conformance_toy:DuplicateIds\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(site), str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")]))
    pending = start_build_fixtures(["toy-duplicate-ids"], tmp_path / "dup")
    with pytest.raises(ConformanceError, match=r"^toy-duplicate-ids: unique_ids: record id "):
        pending.result()
    pending = start_build_fixtures(["no-such-source"], tmp_path / "unknown")
    with pytest.raises(RuntimeError, match=r"exited with 1(.|\n)*unknown source 'no-such-source'"):
        pending.result()


def test_a_manifest_that_differs_between_builds_is_reported_at_the_first_differing_field():
    from medshard.testing.kit import _first_json_difference

    first = {"sources": {"a": {"counts": {"train": {"written": 3, "quarantined": 0}}}},
             "shards": [{"path": "x"}, {"path": "y"}]}
    assert _first_json_difference(first, first) is None
    second = json.loads(json.dumps(first))
    second["sources"]["a"]["counts"]["train"]["written"] = 2
    assert (_first_json_difference(first, second)
            == ".sources.a.counts.train.written: 3 against 2")
    second = {**first, "shards": [{"path": "x"}]}
    assert _first_json_difference(first, second) == ".shards: 2 against 1 items"
    assert _first_json_difference(first, {**first, "extra": 1}) == ".extra: only in the second"
