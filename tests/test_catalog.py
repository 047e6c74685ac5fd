"""The README's source and demo tables are generated from the registry and kept current."""

from __future__ import annotations

from pathlib import Path

from medshard.cli import main
from medshard.sources import available_sources
from medshard.sources.catalog import refresh_readme, source_rows

README = Path(__file__).parents[1] / "README.md"


def test_checked_in_readme_tables_are_current():
    text = README.read_text()
    assert refresh_readme(text) == text, (
        "README tables are stale: run `medshard sources --markdown` and paste, or "
        "python -c 'from medshard.sources.catalog import refresh_readme; ...'")


def test_every_registered_source_has_a_row():
    assert [r[0].strip("`") for r in source_rows()] == available_sources()


def test_sources_lists_a_header_and_every_source(capsys):
    assert main(["sources"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["SOURCE", "MODALITY", "ACCESS"]
    assert [line.split()[0] for line in lines[1:]] == available_sources()
