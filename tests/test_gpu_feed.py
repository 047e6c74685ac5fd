"""benchmarks/gpu_feed.py runs end to end on CPU as a dry run (figures are not asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_feed_dry_run_covers_both_jobs_and_both_shard_locations(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_feed", ROOT / "benchmarks" / "gpu_feed.py")
    gpu_feed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_feed)
    out = tmp_path / "rows.json"
    rows = gpu_feed.main(["--dry-run", "--workers", "2", "--workdir", str(tmp_path),
                          "--json", str(out)])
    assert json.loads(out.read_text()) == rows
    assert {(r["job"], r["shards"]) for r in rows} == {
        ("ecg", "local"), ("ecg", "http"), ("image", "local"), ("image", "http")}
    for r in rows:
        assert r["device"] == "cpu" and r["workers"] == 2
        assert 0.0 <= r["wait_fraction"] <= 1.0
        assert r["step_ms"] >= r["wait_ms"] > 0
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert set(manifest["sources"]) == {"ptb-xl", "chexpert"}
