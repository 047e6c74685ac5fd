"""The consent ledger: acceptance binds to the declared terms; revocation and changes count."""

from __future__ import annotations

import getpass
import json

import pytest

from medshard.acquire import consent
from medshard.cli import main
from medshard.errors import UserError
from medshard.schemas.download import DownloadSpec
from medshard.sources.registry import source_class
from tests.http_fixtures import make_source

SPEC = DownloadSpec(provider="https", files=[{"path": "a.txt", "url": "http://127.0.0.1:9/a"}])


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSHARD_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_acceptance_is_recorded_with_terms_user_and_utc_time(home):
    src = make_source("alpha", SPEC, terms_version="2024-01")
    assert consent.consent_status(src.info) == "missing"
    entry = consent.record_acceptance(src.info)
    line = json.loads((home / "consent.jsonl").read_text().splitlines()[0])
    assert line["source"] == "alpha" and line["action"] == "accept"
    assert line["terms_url"] == "https://example.org/alpha/terms"
    assert line["terms_version"] == "2024-01" and line["terms_name"] == "Test License"
    assert line["user"] == getpass.getuser() and line["at"].endswith("Z")
    assert entry.at == line["at"]
    assert consent.consent_status(src.info) == "accepted"
    consent.require_consent(src.info)


def test_missing_consent_refused_with_the_command_to_run():
    src = make_source("beta", SPEC)
    with pytest.raises(UserError) as e:
        consent.require_consent(src.info)
    msg = str(e.value)
    assert "`medshard consent beta`" in msg and "\n" not in msg


@pytest.mark.parametrize("change", [{"terms_version": "2"}, {"url": "https://example.org/new-terms"}])
def test_changed_terms_invalidate_earlier_consent(change):
    consent.record_acceptance(make_source("gamma", SPEC).info)
    changed = make_source("gamma", SPEC, **change)
    assert consent.consent_status(changed.info) == "stale"
    with pytest.raises(UserError, match="terms changed"):
        consent.require_consent(changed.info)
    consent.record_acceptance(changed.info)
    consent.require_consent(changed.info)


def test_revocation_refuses_until_accepted_again():
    src = make_source("delta", SPEC)
    consent.record_acceptance(src.info)
    consent.record_revocation(src.info)
    with pytest.raises(UserError, match="revoked"):
        consent.require_consent(src.info)
    consent.record_acceptance(src.info)
    assert consent.consent_status(src.info) == "accepted"
    assert [e.action for e in consent.read_ledger()] == ["accept", "revoke", "accept"]


def test_damaged_ledger_line_is_named(home):
    home.mkdir(parents=True)
    (home / "consent.jsonl").write_text('{"not": "an entry"}\n')
    with pytest.raises(UserError, match="line 1"):
        consent.read_ledger()


def test_cli_consent_shows_terms_and_records(capsys):
    assert main(["consent", "ptb-xl", "--accept"]) == 0
    out = capsys.readouterr().out
    info = source_class("ptb-xl").info
    assert info.license.url in out and "terms version:  1.0.3" in out
    assert "non-commercial: no" in out and "credentialed:   no" in out
    assert consent.consent_status(info) == "accepted"

    assert main(["consent", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "ptb-xl" in listing and "accepted" in listing

    assert main(["consent", "ptb-xl", "--revoke"]) == 0
    assert consent.consent_status(info) == "revoked"
    assert main(["consent", "--list"]) == 0
    assert "revoked" in capsys.readouterr().out


def test_cli_consent_without_terminal_asks_for_accept_flag(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["consent", "chexpert"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "medshard consent chexpert --accept" in err
    assert consent.consent_status(source_class("chexpert").info) == "missing"


def test_cli_consent_interactive_yes_and_no(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    assert main(["consent", "chexpert"]) == 1
    assert consent.consent_status(source_class("chexpert").info) == "missing"
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    assert main(["consent", "chexpert"]) == 0
    assert consent.consent_status(source_class("chexpert").info) == "accepted"
    assert "non-commercial: yes" in capsys.readouterr().out
