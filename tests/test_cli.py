"""The `medshard` command: listing, errors a person can act on, inspect/validate, schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medshard.cli import parse_size
from medshard.schemas.export import json_schemas

SCHEMA_DIR = Path(__file__).parents[1] / "medshard" / "schemas" / "jsonschema"


def medshard(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medshard.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_sources_json_lists_both_core_sources():
    proc = medshard("sources", "--json")
    assert proc.returncode == 0
    names = {s["name"] for s in json.loads(proc.stdout)}
    assert {"ptb-xl", "chexpert"} <= names


def test_info_prints_license_layout_options_and_the_download_route():
    proc = medshard("info", "chexpert")
    assert proc.returncode == 0
    assert "Research Use Agreement" in proc.stdout
    assert "by hand (medshard prints these steps" in proc.stdout  # from the DownloadSpec
    assert "uncertain (one of 'negative', 'positive', default 'negative')" in proc.stdout
    assert "val_fraction (float (>= 0.0, < 1.0), default 0.1)" in proc.stdout
    proc = medshard("info", "vindr-cxr")
    assert "PhysioNet project vindr-cxr 1.0.0" in proc.stdout and "wget" not in proc.stdout
    assert "raw layout:" in proc.stdout and "annotations/image_labels_" in proc.stdout


def test_vocab_json_has_concepts_and_maps():
    data = json.loads(medshard("vocab", "--json").stdout)
    concept = data["concepts"][0]
    assert {"id", "name", "synonyms", "modality"} <= set(concept)
    assert data["sources"]["ptb-xl"]["AFIB"] == ["ecg.afib"]


@pytest.mark.parametrize("args", [
    ["build", "no-such-source", "--data-root", ".", "--out", "x"],
    ["build", "ptb-xl", "--data-root", "/nonexistent-medshard-root", "--out", "x"],
    ["build", "ptb-xl", "--data-root", ".", "--out", "x", "--format", "zip"],
    ["build", "ptb-xl", "--data-root", ".", "--out", "x", "--shard-size", "lots"],
    ["build", "ptb-xl", "--data-root", ".", "--out", "x", "--option", "nodot=1"],
    ["build", "ptb-xl", "--out", "x"],
    ["build", "ptb-xl", "--data-root", ".", "--out", "x", "--split-fractions", "0.8,0.3,0.2"],
    ["build", "ptb-xl", "--data-root", ".", "--out", "x", "--split-fractions", "most,some,few"],
    ["info", "no-such-source"],
    ["inspect", "/nonexistent-medshard-build"],
    ["frobnicate"],
])
def test_bad_user_input_is_one_line_exit_2(args, tmp_path):
    proc = medshard(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("medshard: error:")
    assert "Traceback" not in proc.stderr


def test_parse_size():
    assert parse_size("512MB") == 512_000_000
    assert parse_size("1GiB") == 2**30
    assert parse_size("4096") == 4096


def test_inspect_and_validate_catch_a_tampered_shard(demo_raw, tmp_path):
    out = tmp_path / "out"
    proc = medshard("build", "ptb-xl", "--data-root", str(demo_raw), "--out", str(out),
                    "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "ptb-xl" in medshard("inspect", str(out)).stdout
    assert medshard("validate", str(out)).returncode == 0
    shard = next(out.rglob("*.tar"))
    data = bytearray(shard.read_bytes())
    data[600] ^= 0xFF
    shard.write_bytes(bytes(data))
    proc = medshard("validate", str(out))
    assert proc.returncode == 1
    assert shard.name in proc.stdout


def test_checked_in_json_schemas_match_the_models():
    """Schema changes must be exported deliberately: `medshard schema --out medshard/schemas/jsonschema`."""
    for name, schema in json_schemas().items():
        path = SCHEMA_DIR / f"{name}.schema.json"
        assert path.is_file(), f"run `medshard schema --out {SCHEMA_DIR}`"
        assert json.loads(path.read_text()) == schema, f"{path.name} is stale"


def test_sample_key_with_a_dot_is_rejected():
    from pydantic import ValidationError

    from medshard.schemas import SampleMeta

    with pytest.raises(ValidationError, match="key"):
        SampleMeta.model_validate({
            "key": "a.b", "source": "x", "modality": "ecg", "split": "train", "subject": "s",
            "task": "t", "labels": [], "source_labels": {}, "members": [],
            "provenance": {"files": {}, "source_version": "1", "transform_config_hash": "h",
                           "medshard_version": "0"},
        })


def test_split_fractions_reach_sources_without_an_official_split(tmp_path):
    from medshard.sources.imu.hugadb_fixture import write_fixture

    write_fixture(tmp_path / "raw" / "hugadb")  # no official split: keyed participant hash
    out = tmp_path / "out"
    proc = medshard("build", "hugadb", "--data-root", str(tmp_path / "raw"), "--out", str(out),
                    "--format", "webdataset", "--split-fractions", "0.5,0,0.5", "--no-progress",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["split_fractions"] == {"test": 0.5, "train": 0.5, "val": 0.0}
    counts = manifest["sources"]["hugadb"]["counts"]
    assert counts.get("val", {}).get("samples", 0) == 0
    assert counts["train"]["samples"] > 0 and counts["test"]["samples"] > 0
