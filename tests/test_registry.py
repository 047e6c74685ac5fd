"""The source registry: built-ins, and third-party sources through the entry point."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from medshard.schemas import License, SourceInfo
from medshard.sources import registry
from medshard.sources.base import MissingRawData, Source
from medshard.sources.registry import UnknownSource, available_sources, get_source


class ThirdParty(Source):
    payload_members = ("signal.npy",)
    info = SourceInfo(
        name="third-party", title="A plugin dataset", version="1", modality="ecg",
        tasks=["classification"], access="open", homepage="https://example.org",
        citation="-", label_space=["a"], split_policy="keyed hash",
        license=License(name="CC0", spdx="CC0-1.0", terms_version="1"),
    )


@pytest.fixture
def plugin(monkeypatch):
    ep = EntryPoint(name="third-party", value=f"{__name__}:ThirdParty", group="medshard.sources")

    def fake_entry_points(group=None):
        return [ep] if group == "medshard.sources" else []

    registry._registry.cache_clear()
    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    yield
    registry._registry.cache_clear()


def test_entry_point_sources_are_registered(plugin):
    assert "third-party" in available_sources()
    assert isinstance(get_source("third-party"), ThirdParty)
    assert {"ptb-xl", "chexpert"} <= set(available_sources())


def test_unknown_source_says_what_to_do():
    with pytest.raises(UnknownSource, match="medshard sources"):
        get_source("no-such-dataset")


def test_unknown_option_is_refused():
    with pytest.raises(ValueError, match="unknown option"):
        get_source("ptb-xl", colour="blue")


class WithLabelFiles(ThirdParty):
    required_files = ("labels.csv", "meta/codes.csv")
    root_hint = "unpack the release there"


def test_required_files_are_checked_in_order_and_are_the_label_files(tmp_path):
    src = WithLabelFiles()
    with pytest.raises(MissingRawData, match=r"^third-party: raw data directory .* does not exist"):
        src.check_root(tmp_path / "absent")
    with pytest.raises(MissingRawData,
                       match=r"^third-party: labels.csv not found in .*; unpack the release there$"):
        src.check_root(tmp_path)
    assert src.label_files(tmp_path) == []
    (tmp_path / "labels.csv").write_text("id\n")
    with pytest.raises(MissingRawData, match=r"^third-party: meta/codes.csv not found in "):
        src.check_root(tmp_path)
    assert src.label_files(tmp_path) == ["labels.csv"]
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "codes.csv").write_text("code\n")
    src.check_root(tmp_path)
    assert src.label_files(tmp_path) == ["labels.csv", "meta/codes.csv"]
    # no hint declared: the message still says where to look
    WithLabelFiles.root_hint = ""
    try:
        with pytest.raises(MissingRawData, match=r"see `medshard info third-party`$"):
            src.check_root(tmp_path / "meta")
    finally:
        WithLabelFiles.root_hint = "unpack the release there"
