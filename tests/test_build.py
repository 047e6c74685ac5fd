"""End-to-end builds: determinism, resume, failure model, other readers, other runners."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from medshard.pipeline.build import BuildConfig, run_build
from medshard.pipeline.shard_task import PARTS_DIR
from medshard.sharding.members import npy_array
from tests.helpers import PortableServices, output_files

SOURCES = ["ptb-xl", "chexpert"]


def config(raw: Path, out: Path, **kw) -> BuildConfig:
    kw.setdefault("formats", ("webdataset", "parquet"))
    kw.setdefault("shard_size", 400_000)
    return BuildConfig(sources=SOURCES, data_root=raw, out=out, progress=False, **kw)


@pytest.fixture(scope="module")
def reference(demo_raw, tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path_factory.mktemp("ref")
    run_build(config(demo_raw, out))
    return out, output_files(out)


def test_build_writes_the_documented_layout(reference):
    out, files = reference
    manifest = json.loads(files["manifest.json"])
    for field in ("schema_version", "medshard_version", "config", "config_hash",
                  "vocabulary_version", "sources", "shards"):
        assert field in manifest
    assert {s["path"] for s in manifest["shards"]} <= set(files)
    for shard in manifest["shards"]:
        assert shard["path"].startswith(f"{shard['format']}/{shard['source']}/{shard['split']}/")
        assert Path(shard["path"]).name.startswith(f"{shard['source']}-{shard['split']}-")
    ptb = manifest["sources"]["ptb-xl"]
    assert ptb["counts"]["train"]["filtered_reasons"] == {
        "first 15 samples zero on all channels": 1
    }
    assert "quarantine.jsonl" in files and "index.parquet" in files


def test_multiprocess_build_is_byte_identical(demo_raw, reference, tmp_path):
    _, files = reference
    run_build(config(demo_raw, tmp_path / "mp", workers=2))
    assert output_files(tmp_path / "mp") == files


def test_deleted_shard_is_rebuilt_alone(demo_raw, reference, tmp_path):
    _, files = reference
    out = tmp_path / "out"
    run_build(config(demo_raw, out))
    shards = sorted(p for p in out.rglob("*") if p.suffix in (".tar", ".parquet")
                    and p.name != "index.parquet")
    before = {p: p.stat().st_mtime_ns for p in shards}
    victim = next(p for p in shards if p.suffix == ".tar")
    victim.unlink()
    time.sleep(0.05)
    result = run_build(config(demo_raw, out))
    assert result.shards_written == 1
    assert victim.exists()
    for p, mtime in before.items():
        if p.stem != victim.stem:  # the same shard in the other format is rewritten too
            assert p.stat().st_mtime_ns == mtime, f"{p.name} was rewritten"
    assert output_files(out) == files


def test_killed_build_resumes_to_the_same_bytes(tmp_path):
    from medshard.sources.ecg import ptbxl_fixture as ptbxl

    raw = tmp_path / "raw"
    ptbxl.write_raw(raw / "ptb-xl", n_records=60)
    cmd = [sys.executable, "-m", "medshard.cli", "build", "ptb-xl", "--data-root", str(raw),
           "--shard-size", "1", "--no-progress", "--format", "both"]
    ref = tmp_path / "ref"
    subprocess.run([*cmd, "--out", str(ref)], check=True, capture_output=True)

    out = tmp_path / "out"
    proc = subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    parts = out / PARTS_DIR
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(parts.rglob("*.json")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(parts.rglob("*.json")))
    assert 0 < done < 60, "the build was not interrupted mid-way"
    assert not (out / "manifest.json").exists()

    rerun = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done} already built" in rerun.stdout or "already built" in rerun.stdout
    assert output_files(out) == output_files(ref)
    assert not [p for p in out.rglob("*.tmp")], "temporary files left behind"


def _write_nan_record(root: Path) -> None:
    """Overwrite record 00005 with a real WFDB record whose lead V2 is NaN from 1 s on."""
    import wfdb

    base = root / "records500/00000/00005_hr"
    sig, fields = wfdb.rdsamp(str(base))
    sig[500:, 7] = np.nan
    wfdb.wrsamp("00005_hr", fs=fields["fs"], units=fields["units"], sig_name=fields["sig_name"],
                p_signal=sig, fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                write_dir=str(base.parent))


def test_corrupt_inputs_are_quarantined_with_reasons(raw_copy, tmp_path):
    ptb = raw_copy / "ptb-xl"
    dat = ptb / "records500/00000/00002_hr.dat"
    dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 3])  # truncated .dat
    (ptb / "records500/00000/00003_hr.hea").write_text("this is not a WFDB header\n")
    (ptb / "records500/00000/00004_hr.dat").unlink()  # missing file
    _write_nan_record(ptb)
    jpg = next((raw_copy / "chexpert").rglob("view2_lateral.jpg"))
    jpg.write_bytes(jpg.read_bytes()[:300])  # unreadable JPEG

    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "medshard.cli", "build", *SOURCES, "--data-root", str(raw_copy),
         "--out", str(out), "--no-progress"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "5 records quarantined" in proc.stdout

    lines = [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]
    by_key = {line["key"]: line for line in lines}
    assert set(by_key) == {"ptb-xl_00002", "ptb-xl_00003", "ptb-xl_00004", "ptb-xl_00005",
                           "chexpert_patient00002_study1_view2_lateral"}
    for line in lines:
        assert set(line) >= {"key", "source", "files", "stage", "error_type", "message"}
        assert line["message"]
    assert "samples" in by_key["ptb-xl_00002"]["message"] or "WFDB" in by_key["ptb-xl_00002"]["message"]
    assert "missing" in by_key["ptb-xl_00004"]["message"]
    assert "NaN" in by_key["ptb-xl_00005"]["message"]
    assert by_key["ptb-xl_00005"]["stage"] == "transform"
    assert "image" in by_key["chexpert_patient00002_study1_view2_lateral"]["message"]

    manifest = json.loads((out / "manifest.json").read_text())
    for slug, summary in manifest["sources"].items():
        for split, c in summary["counts"].items():
            assert c["listed"] == c["written"] + c["quarantined"] + c["filtered"], (slug, split)
    total_q = sum(c["quarantined"] for s in manifest["sources"].values()
                  for c in s["counts"].values())
    assert total_q == 5
    index = pq.read_table(out / "index.parquet").to_pylist()
    assert not {r["key"] for r in index} & set(by_key)


def test_webdataset_library_reads_the_tar_shards(reference):
    import webdataset as wds

    out, _ = reference
    manifest = json.loads((out / "manifest.json").read_text())
    tars = [str(out / s["path"]) for s in manifest["shards"]
            if s["format"] == "webdataset" and s["source"] == "ptb-xl"]
    samples = list(wds.WebDataset(tars, shardshuffle=False, empty_check=False).decode())
    expected = sum(s["samples"] for s in manifest["shards"]
                   if s["format"] == "webdataset" and s["source"] == "ptb-xl")
    assert len(samples) == expected
    for s in samples:
        meta = s["json"]
        assert s["__key__"] == meta["key"]
        assert s["signal.npy"].shape == (12, 5000)
        assert s["signal.npy"].dtype == np.float32
        assert meta["payloads"]["signal"]["channels"][3] == "aVR"

    images = list(wds.WebDataset(
        [str(out / s["path"]) for s in manifest["shards"]
         if s["format"] == "webdataset" and s["source"] == "chexpert"],
        shardshuffle=False, empty_check=False).decode("pil"))
    assert images and all(im["image.jpg"].size[0] > 0 for im in images)


def test_pyarrow_and_duckdb_read_parquet_shards_and_index(reference):
    import duckdb

    out, _ = reference
    manifest = json.loads((out / "manifest.json").read_text())
    for s in manifest["shards"]:
        if s["format"] != "parquet":
            continue
        table = pq.read_table(out / s["path"])
        assert table.num_rows == s["samples"]
        if s["source"] == "ptb-xl" and table.num_rows:
            arr = npy_array(table.column("signal_npy")[0].as_py())
            assert arr.shape == (12, 5000)
    index = pq.read_table(out / "index.parquet")
    assert {"key", "source", "split", "labels", "shard_webdataset", "shard_parquet"} <= set(
        index.column_names)
    n = duckdb.sql(
        f"select count(*) from read_parquet('{out}/parquet/ptb-xl/*/*.parquet')").fetchall()[0][0]
    assert n == sum(1 for src in index.column("source").to_pylist() if src == "ptb-xl")


@pytest.mark.slow
def test_portable_runner_with_external_worker_pool_gives_same_bytes(demo_raw, reference, tmp_path):
    _, files = reference
    out = tmp_path / "portable"
    with PortableServices() as services:
        run_build(config(demo_raw, out, beam_args=services.beam_args()))
    assert output_files(out) == files


def test_parquet_payload_compression_is_a_recorded_choice(demo_raw, tmp_path):
    out = {}
    for codec in ("none", "zstd"):
        out[codec] = tmp_path / codec
        run_build(BuildConfig(sources=["ptb-xl"], data_root=demo_raw, out=out[codec],
                              formats=("parquet",), progress=False,
                              parquet_payload_compression=codec))
    for codec, path in out.items():
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["config"]["parquet_payload_compression"] == codec
        shard = next(s for s in manifest["shards"] if s["samples"])
        meta = pq.ParquetFile(path / shard["path"]).metadata.row_group(0)
        codecs = {meta.column(i).path_in_schema: meta.column(i).compression
                  for i in range(meta.num_columns)}
        assert codecs["signal_npy"] == ("UNCOMPRESSED" if codec == "none" else "ZSTD")
        assert codecs["json"] == "ZSTD"
    manifests = [json.loads((p / "manifest.json").read_text()) for p in out.values()]
    assert manifests[0]["config_hash"] != manifests[1]["config_hash"]


def test_png_level_changes_bytes_not_pixels_and_enters_the_config_hash(tmp_path):
    """`--png-level`: every zlib level stores the same pixels (Pillow decodes them back);
    the bytes differ, so the level is in the config hash and a resume cannot mix them."""
    import io

    import pydicom
    from PIL import Image
    from pydicom.data import get_testdata_file

    from medshard.cli import build_config_from_args, make_parser
    from medshard.errors import UserError
    from medshard.pipeline.build import config_record
    from medshard.pipeline.encoders import encode_payloads
    from medshard.schemas.sample import Payload, Sample
    from medshard.sources import get_source

    ct = pydicom.dcmread(get_testdata_file("693_UNCR.dcm")).pixel_array.astype(np.uint16)
    sample = Sample(classes=[], source_labels={}, payloads={"image": Payload("image", ct, {})})
    stored = {lv: encode_payloads(sample, {}, "ct", "k", png_level=lv)[0]["image.png"]
              for lv in (0, 1, 9)}
    assert len(set(stored.values())) == 3 and len(stored[0]) > len(stored[1]) > len(stored[9])
    for data in stored.values():
        with Image.open(io.BytesIO(data)) as im:
            np.testing.assert_array_equal(np.asarray(im).astype(np.uint16), ct)

    args = make_parser().parse_args(["build", "ptb-xl", "--data-root", str(tmp_path),
                                      "--out", str(tmp_path / "o"), "--png-level", "9"])
    cfg = build_config_from_args(args, [])
    assert cfg.png_level == 9
    sources = {"ptb-xl": get_source("ptb-xl")}
    records = {lv: config_record(BuildConfig(sources=["ptb-xl"], data_root=tmp_path,
                                             out=tmp_path / "o", png_level=lv), sources)
               for lv in (3, 9)}
    assert records[3]["png_level"] == 3 and records[9]["png_level"] == 9
    with pytest.raises(UserError, match=r"^--png-level must be a zlib level from 0 to 9, got 10$"):
        run_build(BuildConfig(sources=["ptb-xl"], data_root=tmp_path, out=tmp_path / "o",
                              png_level=10, progress=False))
