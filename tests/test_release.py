"""Releases: the folder, SHA256SUMS, Croissant, card, diff, publish (file://, S3 on loopback),
verify, the license guard, recipe-only publishing with a byte-identical rebuild, and
license-filtered builds. One demo build of all sources and one of the open-licence
sources are shared by the tests of this module."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from medshard.cli import main
from medshard.pipeline.build import BuildConfig, run_build
from medshard.schemas.download import RECEIPT_NAME, Receipt, ReceiptFile
from medshard.sharding.manifest import read_manifest
from medshard.sharding.release import publish as publish_mod
from medshard.sharding.release.make import create_release, parse_sums
from medshard.sharding.release.verify import verify_release
from medshard.testing import write_fixtures
from medshard.testing.demo import demo_sources

OPEN_SOURCES = ["ptb-xl", "kits23"]  # CC-BY-4.0 and CC-BY-NC-SA-4.0: redistributable


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _build(raw: Path, out: Path, sources: list[str], **kw) -> Path:
    kw.setdefault("formats", ("webdataset", "parquet"))
    kw.setdefault("shard_size", 4 << 20)
    run_build(BuildConfig(sources=sources, data_root=raw, out=out, progress=False, **kw))
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Path]:
    """Raw fixtures of every demo source, their build, and a release of it."""
    root = tmp_path_factory.mktemp("rel-demo")
    write_fixtures(demo_sources(), root / "raw")
    build = _build(root / "raw", root / "build", sorted(os.listdir(root / "raw")))
    create_release(build, "1.0.0", root / "rel", progress=False)
    return {"root": root, "raw": root / "raw", "build": build, "rel": root / "rel"}


@pytest.fixture(scope="module")
def open_release(demo, tmp_path_factory) -> Path:
    """A release of the open-licence sources, with a download receipt for ptb-xl."""
    root = tmp_path_factory.mktemp("rel-open")
    raw = root / "raw"
    for s in OPEN_SOURCES:
        shutil.copytree(demo["raw"] / s, raw / s)
    csv_path = raw / "ptb-xl" / "ptbxl_database.csv"
    Path(raw / "ptb-xl" / RECEIPT_NAME).write_text(Receipt(
        source="ptb-xl", provider="https", spec_hash="0" * 64,
        completed_at="2026-01-01T00:00:00Z", medshard_version="0.1.0",
        files=[ReceiptFile(path="ptbxl_database.csv", size=csv_path.stat().st_size,
                           sha256=hashlib.sha256(csv_path.read_bytes()).hexdigest(),
                           origin="https://example.org/ptbxl_database.csv")],
    ).model_dump_json())
    build = _build(raw, root / "build", OPEN_SOURCES)
    create_release(build, "1.0.0", root / "rel", progress=False)
    return root / "rel"


# --- the release folder -----------------------------------------------------------------


def test_release_folder_checks_with_sha256sum(demo):
    rel = demo["rel"]
    for name in ("manifest.json", "SHA256SUMS", "croissant.json", "README.md",
                 "RELEASE_NOTES.md", "index.parquet"):
        assert (rel / name).is_file(), name
    run = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=rel,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    listed = set(parse_sums((rel / "SHA256SUMS").read_text()))
    assert listed == set(_files(rel)) - {"SHA256SUMS"}


def test_the_build_working_folder_is_never_released_or_listed(demo):
    """.medshard/ (plans, parts) lives inside the build: no manifest, index or release has it."""
    assert list((demo["build"] / ".medshard").rglob("*.json"))  # the build has one
    rel = demo["rel"]
    assert not [p for p in rel.rglob("*") if ".medshard" in p.relative_to(rel).parts]
    for where in (demo["build"], rel):
        m = read_manifest(where / "manifest.json")
        assert not any(s.path.startswith(".medshard") for s in m.shards)
        index = pq.read_table(where / "index.parquet").to_pylist()
        assert not any(".medshard" in (r["shard_webdataset"] or "") + (r["shard_parquet"] or "")
                       for r in index)
    assert not any(".medshard" in p for p in parse_sums((rel / "SHA256SUMS").read_text()))


def test_release_manifest_has_content_hashes_and_histograms(demo):
    m = read_manifest(demo["rel"] / "manifest.json")
    build = read_manifest(demo["build"] / "manifest.json")
    rel = m.release
    assert rel is not None and rel.version == "1.0.0" and rel.required_bump == "initial"
    assert set(rel.adapters) == set(build.sources)
    index = pq.read_table(demo["build"] / "index.parquet").to_pylist()
    for slug, summary in build.sources.items():
        for split, counts in summary.counts.items():
            if counts.samples == 0:  # e.g. "unlisted": index rows that made no record
                assert rel.splits.get(slug, {}).get(split) is None or \
                    rel.splits[slug][split].samples == 0
                continue
            content = rel.splits[slug][split]
            rows = [r for r in index if r["source"] == slug and r["split"] == split]
            assert content.samples == counts.samples == len(content.sample_hashes) == len(rows)
            assert set(content.sample_hashes) == {r["key"] for r in rows}
            hist: dict[str, int] = {}
            for r in rows:
                for lab in r["labels"]:
                    hist[lab] = hist.get(lab, 0) + 1
            assert content.label_histogram == hist
    # the release manifest is the build manifest plus the release section
    assert m.model_dump(exclude={"release"}) == build.model_dump(exclude={"release"})


def test_receipt_digest_is_recorded(open_release):
    m = read_manifest(open_release / "manifest.json")
    assert set(m.raw_receipts) == {"ptb-xl"} and re.fullmatch(r"[0-9a-f]{64}",
                                                              m.raw_receipts["ptb-xl"])


def test_same_build_gives_the_same_release_bytes(demo, tmp_path):
    create_release(demo["build"], "1.0.0", tmp_path / "again", progress=False)
    assert _files(tmp_path / "again") == _files(demo["rel"])


def test_release_refuses_a_build_that_does_not_match_its_manifest(demo, tmp_path, capsys):
    build = tmp_path / "build"
    shutil.copytree(demo["build"], build)
    shard = read_manifest(build / "manifest.json").shards[0].path
    (build / shard).write_bytes((build / shard).read_bytes()[:-512])
    rc = main(["release", str(build), "--version", "1.0.0", "--out", str(tmp_path / "rel"),
               "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert shard in err and err.count("\n") == 1
    assert not (tmp_path / "rel").exists()


def test_existing_release_folder_is_never_overwritten(demo, capsys):
    before = _files(demo["rel"])
    rc = main(["release", str(demo["build"]), "--version", "1.0.1", "--out", str(demo["rel"]),
               "--no-progress"])
    assert rc == 2
    assert "never overwritten" in capsys.readouterr().err
    assert _files(demo["rel"]) == before


# --- Croissant and the card -------------------------------------------------------------


def test_croissant_passes_mlcroissant_offline(demo):
    env = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "NO_PROXY": ""}  # any attempt to fetch something fails
    exe = Path(sys.executable).with_name("mlcroissant")
    run = subprocess.run([str(exe), "validate", "--jsonld", "croissant.json"], cwd=demo["rel"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "error(s)" not in run.stderr


def test_croissant_lists_every_file_with_its_sha256(demo):
    doc = json.loads((demo["rel"] / "croissant.json").read_text())
    assert "http://mlcommons.org/croissant/1.1" in doc["conformsTo"]
    sums = parse_sums((demo["rel"] / "SHA256SUMS").read_text())
    objects = {d["contentUrl"]: d["sha256"] for d in doc["distribution"]
               if d["@type"] == "cr:FileObject"}
    assert objects == {p: h for p, h in sums.items() if p != "croissant.json"}
    sets = {d["@id"] for d in doc["distribution"] if d["@type"] == "cr:FileSet"}
    build = read_manifest(demo["build"] / "manifest.json")
    assert sets == {f"{s.source}-{s.format}" for s in build.shards}
    fields = {f["name"] for f in doc["recordSet"][0]["field"]}
    assert fields == set(pq.read_schema(demo["rel"] / "index.parquet").names)
    for rai in ("rai:dataCollection", "rai:personalSensitiveInformation", "rai:dataBiases",
                "rai:dataLimitations", "rai:dataUseCases", "rai:dataReleaseMaintenancePlan"):
        assert doc[rai].strip(), rai
    assert "vindr-cxr" in doc["rai:personalSensitiveInformation"]


def test_card_header_parses_and_every_image_exists(demo):
    rel = demo["rel"]
    text = (rel / "README.md").read_text()
    _, header, body = text.split("---\n", 2)
    meta = yaml.safe_load(header)
    build = read_manifest(demo["build"] / "manifest.json")
    assert meta["license"] == "other" and set(meta["license_details"]) == set(build.sources)
    configs = {c["config_name"]: c["data_files"] for c in meta["configs"]}
    assert set(configs) == set(build.sources)
    for slug, files in configs.items():
        for entry in files:
            assert list(rel.glob(entry["path"])), (slug, entry)
    gated = " ".join(meta["extra_gated_fields"])
    assert "vindr-cxr" in gated and "ptb-xl" not in gated
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", body)
    assert "plots/samples-per-split.png" in images
    for path in images:
        with Image.open(rel / path) as im:
            assert im.format == "PNG" and im.size[0] > 100
    # sample figures only where the terms allow redistributing derived images
    assert "plots/kits23-thumbnails.png" in images and "plots/ptb-xl-trace.png" in images
    assert not [p for p in images if p.startswith(("plots/vindr-cxr-thumb", "plots/chexpert-thumb"))]
    ptb = build.sources["ptb-xl"].counts["train"]
    assert f"| train | {ptb.listed} | {ptb.written} | {ptb.samples} |" in body
    assert "17,476" in body  # CLIMB's published PTB-XL train count beside ours


# --- diff -------------------------------------------------------------------------------


def _edit_ptbxl(raw: Path) -> dict[str, int]:
    """Change one train record's labels, move one to test, remove one, add one."""
    path = raw / "ptb-xl" / "ptbxl_database.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    train = [r for r in rows if int(r["strat_fold"]) <= 8 and r["ecg_id"] != "6"]
    changed, moved, removed, template = train[0], train[1], train[2], train[3]
    changed["scp_codes"] = repr({"AFIB": 100.0})
    moved["strat_fold"] = "10"
    rows.remove(removed)
    added = dict(template, ecg_id=str(max(int(r["ecg_id"]) for r in rows) + 1))
    rows.append(added)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return {k: int(r["ecg_id"]) for k, r in
            (("changed", changed), ("moved", moved), ("removed", removed), ("added", added))}


@pytest.fixture(scope="module")
def two_releases(demo, tmp_path_factory):
    root = tmp_path_factory.mktemp("rel-diff")
    shutil.copytree(demo["raw"] / "ptb-xl", root / "raw-a" / "ptb-xl")
    shutil.copytree(demo["raw"] / "ptb-xl", root / "raw-b" / "ptb-xl")
    ids = _edit_ptbxl(root / "raw-b")
    build_a = _build(root / "raw-a", root / "build-a", ["ptb-xl"])
    build_b = _build(root / "raw-b", root / "build-b", ["ptb-xl"])
    create_release(build_a, "1.0.0", root / "rel-a", progress=False)
    return root, ids, build_a, build_b


def _key(release: Path, ecg_id: int) -> str:
    m = read_manifest(release / "manifest.json")
    keys = [k for sp in m.release.splits["ptb-xl"].values() for k in sp.sample_hashes]
    return next(k for k in keys if k.endswith(f"{ecg_id:05d}"))


def test_diff_reports_added_changed_removed_moved_and_major(two_releases, capsys):
    root, ids, _, build_b = two_releases
    create_release(build_b, "2.0.0", root / "rel-b", previous=str(root / "rel-a"),
                   progress=False)
    assert main(["diff", str(root / "rel-a"), str(root / "rel-b"), "--json",
                 "--no-progress"]) == 0
    d = json.loads(capsys.readouterr().out)
    src = d["sources"]["ptb-xl"]
    a, b = root / "rel-a", root / "rel-b"
    assert src["changed"] == {"train": [_key(a, ids["changed"])]}
    assert src["removed"] == {"train": [_key(a, ids["removed"])]}
    assert src["added"] == {"train": [_key(b, ids["added"])]}
    assert [(m["key"], m["from"], m["to"]) for m in src["moved"]] == [
        (_key(a, ids["moved"]), "train", "test")]
    assert src["label_histogram_delta"]  # the changed labels show in the histograms
    assert d["required_bump"] == "major"
    assert main(["diff", str(a), str(b), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "MAJOR" in text and "LEAK RISK" in text
    notes = (b / "RELEASE_NOTES.md").read_text()
    assert "Changes since 1.0.0 (MAJOR)" in notes


def test_release_refuses_a_version_that_understates_the_change(two_releases, capsys):
    root, _, _, build_b = two_releases
    for version in ("1.1.0", "1.0.1", "1.0.0"):
        rc = main(["release", str(build_b), "--version", version, "--out",
                   str(root / f"bad-{version}"), "--previous", str(root / "rel-a"),
                   "--no-progress"])
        assert rc == 2
        assert "MAJOR" in capsys.readouterr().err or version == "1.0.0"
        assert not (root / f"bad-{version}").exists()


def test_reserialized_build_is_a_patch(two_releases, demo, capsys):
    root, _, _, _ = two_releases
    build_c = _build(root / "raw-a", root / "build-c", ["ptb-xl"], formats=("parquet",),
                     shard_size=1)
    assert main(["diff", str(root / "rel-a"), str(build_c), "--json", "--no-progress"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["required_bump"] == "patch" and d["sources"] == {}
    assert "shard_size" in d["config"] and "formats" in d["config"]
    rc = main(["release", str(build_c), "--version", "1.0.1", "--out", str(root / "rel-c"),
               "--previous", str(root / "rel-a"), "--no-progress"])
    assert rc == 0
    assert read_manifest(root / "rel-c" / "manifest.json").release.required_bump == "patch"


# --- publish and verify -----------------------------------------------------------------


def _publish_interrupted(monkeypatch, rel: Path, url: str, after: int) -> list[str]:
    """Publish, failing on the upload after `after` files; returns the files sent."""
    real = publish_mod.upload_file
    sent: list[str] = []

    def flaky(fs, local, remote):
        if len(sent) == after:
            raise ConnectionError("network went away")
        real(fs, local, remote)
        sent.append(Path(local).relative_to(rel).as_posix())

    monkeypatch.setattr(publish_mod, "upload_file", flaky)
    with pytest.raises(ConnectionError):
        publish_mod.publish_release(rel, url, progress=False)
    monkeypatch.setattr(publish_mod, "upload_file", real)
    return sent


def _check_publish_resume_verify(monkeypatch, rel: Path, url: str) -> None:
    sent = _publish_interrupted(monkeypatch, rel, url, after=3)
    assert len(sent) == 3
    assert verify_release(url, progress=False).bad  # incomplete: no SHA256SUMS yet
    report = publish_mod.publish_release(rel, url, progress=False)
    assert set(sent) <= set(report.skipped) and not set(sent) & set(report.sent)
    assert len(report.sent) + len(report.skipped) == len(parse_sums(
        (rel / "SHA256SUMS").read_text())) + 1
    assert report.verify is not None and report.verify.bad == []
    again = publish_mod.publish_release(rel, url, progress=False)
    assert again.sent == []  # idempotent


def test_publish_to_file_url_resumes_and_verify_names_a_flipped_byte(
        open_release, tmp_path, monkeypatch, capsys):
    target = tmp_path / "mirror"
    url = f"file://{target}"
    _check_publish_resume_verify(monkeypatch, open_release, url)
    assert main(["verify", url, "--no-progress"]) == 0
    shard = read_manifest(open_release / "manifest.json").shards[0].path
    data = bytearray((target / shard).read_bytes())
    data[len(data) // 2] ^= 0x01
    (target / shard).write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", url, "--no-progress"]) == 1
    out = capsys.readouterr().out
    bad = [line for line in out.splitlines() if line.startswith("BAD")]
    assert bad and all(shard in line for line in bad)
    # the release itself is untouched: hard links were not written through
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"],
                          cwd=open_release).returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_endpoint(monkeypatch):
    """moto's S3 server on loopback, with fake credentials in the environment only."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                 "FSSPEC_S3_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(k, v)
    import fsspec

    fsspec.filesystem("s3").clear_instance_cache()
    fs = fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True)
    fs.mkdir("medshard-releases")
    yield fs
    server.stop()


def test_publish_to_s3_on_loopback_resumes_and_verifies(open_release, s3_endpoint,
                                                        monkeypatch, capsys):
    url = "s3://medshard-releases/demo/1.0.0"
    _check_publish_resume_verify(monkeypatch, open_release, url)
    shard = read_manifest(open_release / "manifest.json").shards[-1].path
    key = f"medshard-releases/demo/1.0.0/{shard}"
    data = bytearray(s3_endpoint.cat_file(key))
    data[-1] ^= 0x01
    s3_endpoint.pipe_file(key, bytes(data))
    s3_endpoint.invalidate_cache()
    capsys.readouterr()
    assert main(["verify", url, "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert f"BAD {shard}: sha256" in out
    assert "testing" not in out  # no credential in any output


def test_publish_refuses_sources_that_forbid_redistribution(demo, tmp_path, capsys):
    rc = main(["publish", str(demo["rel"]), f"file://{tmp_path / 'pub'}", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for slug in ("vindr-cxr", "chexpert", "tuab", "tuev", "echonet-dynamic"):
        assert slug in err
    for slug in OPEN_SOURCES:
        assert f" {slug} (" not in err
    assert not (tmp_path / "pub").exists()


def test_recipe_only_publish_and_byte_identical_rebuild(demo, tmp_path, capsys):
    target = tmp_path / "recipe"
    url = f"file://{target}"
    assert main(["publish", str(demo["rel"]), url, "--recipe-only", "--no-progress"]) == 0
    published = _files(target)
    manifest = read_manifest(demo["rel"] / "manifest.json")
    assert not {s.path for s in manifest.shards} & set(published)
    assert {"manifest.json", "croissant.json", "README.md", "RELEASE_NOTES.md",
            "SHA256SUMS", "RECIPE_ONLY"} <= set(published)
    assert "payload files not published (recipe only)" in capsys.readouterr().out
    assert main(["verify", url, "--no-progress"]) == 0
    capsys.readouterr()
    rc = main(["rebuild", url, "--data-root", str(demo["raw"]), "--out",
               str(tmp_path / "rebuilt"), "--no-progress"])
    assert rc == 0, capsys.readouterr()
    assert _files(tmp_path / "rebuilt") == _files(demo["rel"])


# --- license-filtered builds ------------------------------------------------------------


def test_license_filter_drops_sources_before_reading_them(demo, tmp_path, capsys):
    raw = tmp_path / "raw"
    shutil.copytree(demo["raw"] / "ptb-xl", raw / "ptb-xl")  # no raw files for the others
    rc = main(["build", "ptb-xl", "vindr-cxr", "chexpert", "kits23", "--data-root", str(raw),
               "--out", str(tmp_path / "b"), "--license-allow", "commercial",
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    m = read_manifest(tmp_path / "b" / "manifest.json")
    assert set(m.sources) == {"ptb-xl"}
    flt = m.config["source_filter"]
    assert flt["license_allow"] == ["commercial"]
    assert set(flt["excluded"]) == {"vindr-cxr", "chexpert", "kits23"}
    assert "non-commercial" in flt["excluded"]["kits23"]


def test_access_filter_and_bad_values(demo, tmp_path, capsys):
    rc = main(["build", "tuab", "chexpert", "--data-root", str(demo["raw"]), "--out",
               str(tmp_path / "b"), "--access", "open", "--no-progress"])
    assert rc == 2
    assert "excludes every source" in capsys.readouterr().err
    rc = main(["build", "ptb-xl", "--data-root", str(demo["raw"]), "--out", str(tmp_path / "c"),
               "--license-allow", "free", "--no-progress"])
    assert rc == 2
    assert "--license-allow got 'free'" in capsys.readouterr().err
