"""The scientific corrections, end to end: whole ECGs, one amplitude factor, CLIMB's classes,
honest masks and rates, one X-ray polarity, rescale in the loader, label provenance.

Each expectation is computed independently (SciPy, pydicom, hashlib) from the raw files.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut
from scipy.signal import resample_poly

from medshard.cli import main
from medshard.formats.dicom import read_image
from medshard.loaders import ShardDataset
from medshard.loaders.decode import SampleDecoder
from medshard.pipeline.build import BuildConfig, run_build
from medshard.pipeline.transforms.image import encode_png
from medshard.schemas.vocabulary import load_vocabulary
from medshard.sharding.members import json_bytes


@pytest.fixture(scope="module")
def ecg_build(demo_raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("ecg-build")
    run_build(BuildConfig(sources=["ptb-xl"], data_root=demo_raw, out=out, progress=False))
    return out


def _samples(build, **kwargs) -> dict[str, dict]:
    return {s["key"]: s for s in ShardDataset(str(build), split=None, shuffle=False, **kwargs)}


def test_records_read_at_100_hz_are_counted_and_shown(ecg_build, capsys):
    manifest = json.loads((ecg_build / "manifest.json").read_text())
    counts = manifest["sources"]["ptb-xl"]["counts"]
    rates: dict[str, int] = {}
    for c in counts.values():
        for hz, n in c["original_rates"].items():
            rates[hz] = rates.get(hz, 0) + n
    # the demo leaves record 00012 out of records500/: it is read from records100/
    assert rates["100"] == 1 and rates["500"] >= 1
    assert counts["test"]["original_rates"]["100"] == 1  # 00012 is in fold 10
    sample = _samples(ecg_build)["ptb-xl_00012"]
    assert sample["meta"]["payloads"]["signal"]["original_sampling_rate_hz"] == 100.0
    assert main(["inspect", str(ecg_build)]) == 0
    assert "1 from 100 Hz" in capsys.readouterr().out


def test_stored_ecg_is_the_whole_record_with_one_factor(ecg_build, demo_raw):
    import wfdb

    s = _samples(ecg_build)["ptb-xl_00003"]
    raw, fields = wfdb.rdsamp(str(demo_raw / "ptb-xl" / "records500/00000/00003_hr"))
    leads = [n.upper() for n in fields["sig_name"]]
    i, v2 = leads.index("I"), leads.index("V2")
    sig = s["signal"].numpy()
    assert sig.shape == (12, 5000)
    raw_ratio = np.ptp(raw[:, v2]) / np.ptp(raw[:, i])
    assert abs(np.ptp(sig[7]) / np.ptp(sig[0]) - raw_ratio) < 1e-6 * raw_ratio  # V2 / I
    scale = s["meta"]["payloads"]["signal"]["scale"]
    assert len(set(scale)) == 1 and scale[0] == pytest.approx(np.ptp(raw), rel=1e-6)


def test_climb_paper_view_is_the_first_2500_samples(ecg_build):
    full = _samples(ecg_build)
    paper = _samples(ecg_build, ecg_view="climb-paper")
    for key, s in paper.items():
        assert s["signal"].shape == (12, 2500)
        assert torch.equal(s["signal"], full[key]["signal"][:, :2500])
        assert s["meta"]["payloads"]["signal"]["view"] == "climb-paper"


def test_ecg_jepa_view_equals_scipy_resample_poly(ecg_build):
    full = _samples(ecg_build)
    jepa = _samples(ecg_build, ecg_view="ecg-jepa")
    leads = full["ptb-xl_00001"]["meta"]["payloads"]["signal"]["channels"]
    rows = [leads.index(x) for x in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")]
    for key, s in jepa.items():
        stored = full[key]["signal"].numpy().astype(np.float64)
        expected = resample_poly(stored[rows], 1, 2, axis=1)  # 10 s at 500 Hz -> 2500 samples
        assert s["signal"].shape == (8, 2500)
        np.testing.assert_allclose(s["signal"].numpy(), expected, rtol=1e-5, atol=1e-6)
        assert s["meta"]["payloads"]["signal"]["sampling_rate_hz"] == 250.0
        assert s["meta"]["payloads"]["signal"]["channels"] == ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]


def test_bad_views_are_refused(ecg_build):
    from medshard.errors import UserError

    with pytest.raises(UserError, match="ecg_view"):
        ShardDataset(str(ecg_build), ecg_view="first-5s")
    with pytest.raises(UserError, match="label_view"):
        ShardDataset(str(ecg_build), label_view="benchmd")


def test_afib_and_aflutter_are_two_concepts_and_climbs_union_a_view(ecg_build):
    vocab = load_vocabulary()
    afib, aflt, union = (vocab.index[c] for c in ("ecg.afib", "ecg.aflutter", "ecg.afib-aflutter"))
    plain = _samples(ecg_build)
    climb = _samples(ecg_build, label_view="climb")
    s = plain["ptb-xl_00004"]  # AFIB + LAFB
    assert s["labels"][afib] == 1 and s["labels"][aflt] == 0 and s["labels"][union] == 0
    assert s["label_mask"][afib] == s["label_mask"][aflt] == 1 and s["label_mask"][union] == 0
    for key, expect in (("ptb-xl_00004", 1.0), ("ptb-xl_00008", 1.0), ("ptb-xl_00001", 0.0)):
        c = climb[key]
        assert c["labels"][union] == expect
        assert c["label_mask"][union] == 1 and c["label_mask"][afib] == c["label_mask"][aflt] == 0
        assert c["labels"][afib] == c["labels"][aflt] == 0
        assert int(c["label_mask"].sum()) == 7  # CLIMB's 7 ECG classes


def test_statements_become_climb_classes_in_a_build(ecg_build):
    labels = {k: s["labels"] for k, s in _samples(ecg_build).items()}
    vocab = load_vocabulary()

    def concepts(key):
        return [vocab.concept_ids[i] for i in np.flatnonzero(labels[key].numpy())]

    assert concepts("ptb-xl_00010") == ["ecg.st-t-change"]  # STD_ + SR: not Normal
    assert concepts("ptb-xl_00005") == []  # SR alone
    assert "ptb-xl_00006" not in labels  # its first 0.1 s is zero: CLIMB's filter
    manifest = json.loads((ecg_build / "manifest.json").read_text())
    assert manifest["sources"]["ptb-xl"]["counts"]["train"]["filtered_reasons"] == {
        "first 15 samples zero on all channels": 1
    }


def test_superclass_policy_narrows_the_mask(demo_raw, tmp_path):
    run_build(BuildConfig(sources=["ptb-xl"], data_root=demo_raw, out=tmp_path, progress=False,
                          source_options={"ptb-xl": {"label_policy": "ptbxl-superclass"}}))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    five = ["ecg.normal", "ecg.conduction-disturbance", "ecg.hypertrophy",
            "ecg.myocardial-infarction", "ecg.st-t-change"]
    assert manifest["sources"]["ptb-xl"]["concepts"] == five
    vocab = load_vocabulary()
    for s in _samples(tmp_path).values():
        assert [vocab.concept_ids[i] for i in np.flatnonzero(s["label_mask"].numpy())] == five


def test_corrections_change_the_config_hash(demo_raw, tmp_path):
    from dataclasses import replace

    from medshard.pipeline.build import config_record
    from medshard.schemas.standards import ECG_SPEC, EEG_SPEC
    from medshard.sources import get_source

    def digest(spec=ECG_SPEC, **options):
        cfg = BuildConfig(sources=["ptb-xl"], data_root=demo_raw, out=tmp_path,
                          signal_specs={"ecg": spec, "eeg": EEG_SPEC})
        return json_bytes(config_record(cfg, {"ptb-xl": get_source("ptb-xl", **options)}))

    base = digest()
    assert json.loads(base)["signal_specs"]["ecg"]["n_samples"] == 5000
    assert json.loads(base)["signal_specs"]["ecg"]["normalization"] == "record-range"
    assert digest(replace(ECG_SPEC, normalization="lead-range")) != base
    assert digest(replace(ECG_SPEC, n_samples=2500)) != base
    assert digest(label_policy="ptbxl-superclass") != base
    assert json.loads(base)["vocabulary_version"] == "2.4.0"


def test_cli_signal_standard_options(demo_raw, tmp_path, capsys):
    code = main(["build", "ptb-xl", "--data-root", str(demo_raw), "--out", str(tmp_path),
                 "--standard", "ecg.normalization=lead-range", "--standard", "ecg.length=2500",
                 "--no-progress"])
    assert code == 0
    s = next(iter(_samples(tmp_path).values()))
    assert s["signal"].shape == (12, 2500)
    assert s["meta"]["payloads"]["signal"]["normalization"] == "lead-range"
    assert main(["build", "ptb-xl", "--data-root", str(demo_raw), "--out", str(tmp_path),
                 "--standard", "ecg.length=0"]) == 2
    assert "signal length" in capsys.readouterr().err
    assert main(["build", "ptb-xl", "--data-root", str(demo_raw), "--out", str(tmp_path),
                 "--standard", "ecg.colour=red"]) == 2
    assert "MODALITY.FIELD=VALUE" in capsys.readouterr().err


def test_loader_applies_a_fractional_rescale_like_pydicom():
    path = get_testdata_file("MR2_UNCR.dcm")
    if path is None:
        pytest.skip("pydicom-data MR2_UNCR.dcm not installed")
    image = read_image(path)
    assert image.descriptor["rescale_applied"] is False
    meta = {"key": "x_1", "source": "vindr-cxr", "modality": "chest-xray", "split": "train",
            "labels": [], "members": ["image.png"],
            "payloads": {"image": {**image.descriptor, "kind": "image", "encoding": "png",
                                   "member": "image.png"}}}
    raw = {"__key__": "x_1", "json": json_bytes(meta), "image.png": encode_png(image.pixels)}
    vocab = load_vocabulary()
    stored = SampleDecoder(vocab)(dict(raw))["image"]
    physical = SampleDecoder(vocab, apply_rescale=True)(dict(raw))["image"]
    ds = pydicom.dcmread(path)
    expected = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
    assert stored.dtype == torch.int32
    assert physical.dtype == torch.float32
    np.testing.assert_array_equal(physical[0].numpy(), expected)


def test_vindr_build_is_one_polarity_and_says_its_split_is_image_level(tmp_path, capsys):
    from medshard.sources.cxr.vindr_cxr_fixture import write_raw

    write_raw(tmp_path / "raw" / "vindr-cxr")
    out = tmp_path / "out"
    run_build(BuildConfig(sources=["vindr-cxr"], data_root=tmp_path / "raw", out=out,
                          progress=False))
    photometric = {s["meta"]["payloads"]["image"]["photometric"] for s in _samples(out).values()}
    assert photometric <= {"MONOCHROME2", "RGB"}
    inverted = [s for s in _samples(out).values() if s["meta"]["payloads"]["image"].get("inverted_from")]
    assert inverted, "the demo's MONOCHROME1 radiograph must come out inverted"
    summary = json.loads((out / "manifest.json").read_text())["sources"]["vindr-cxr"]
    assert summary["split_unit"].startswith("image")
    assert main(["inspect", str(out)]) == 0
    assert "splits keep each image" in capsys.readouterr().out
    assert main(["info", "vindr-cxr"]) == 0
    assert "not patient-level" in capsys.readouterr().out


def test_kits23_json_hash_is_in_provenance_and_manifest_and_a_change_rebuilds(tmp_path):
    from medshard.sources.ct import kits23_fixture as kits23

    root = tmp_path / "raw" / "kits23"
    kits23.write_raw(root)
    out = tmp_path / "out"
    run_build(BuildConfig(sources=["kits23"], data_root=tmp_path / "raw", out=out, progress=False))
    label_file = root / "dataset" / "kits23.json"
    digest = hashlib.sha256(label_file.read_bytes()).hexdigest()
    summary = json.loads((out / "manifest.json").read_text())["sources"]["kits23"]
    assert summary["label_files"] == {"dataset/kits23.json": digest}
    samples = list(ShardDataset(str(out), split=None, decode=False))
    assert samples
    for s in samples:
        assert json.loads(s["json"])["provenance"]["label_files"] == [
            {"path": "dataset/kits23.json", "sha256": digest}]
    # upstream revises the file in place: the build notices and rebuilds every shard
    cases = json.loads(label_file.read_text())
    cases[0]["malignant"] = not cases[0]["malignant"]
    label_file.write_text(json.dumps(cases))
    result = run_build(BuildConfig(sources=["kits23"], data_root=tmp_path / "raw", out=out,
                                   progress=False))
    assert result.shards_skipped == 0 and result.shards_written > 0
    new = hashlib.sha256(label_file.read_bytes()).hexdigest()
    assert json.loads((out / "manifest.json").read_text())["sources"]["kits23"]["label_files"] == {
        "dataset/kits23.json": new
    }
    shutil.rmtree(out)


def test_signal_standards_are_a_registry_with_one_option():
    from medshard.schemas.standards import SIGNAL_STANDARDS, parse_standards

    specs = parse_standards(["imu.rate=50", "ecg.length=none", "eeg.normalization=none"])
    assert specs["imu"].sampling_rate_hz == 50.0
    assert specs["ecg"].n_samples is None and specs["ecg"].sampling_rate_hz == 500.0
    assert specs["eeg"].normalization == "none"
    assert SIGNAL_STANDARDS["imu"].sampling_rate_hz == 100.0  # the defaults are untouched
    for bad in ("ecg.rate", "mri.rate=1", "ecg.normalization=zscore", "ecg.rate=-5"):
        with pytest.raises(ValueError):
            parse_standards([bad])


def test_info_shows_the_modality_standard(capsys):
    assert main(["info", "ptb-xl"]) == 0
    out = capsys.readouterr().out
    assert "standard:   500 Hz, 5000 samples, 12 channels (I ... V6), record-range" in out
    assert "--standard ecg.FIELD=VALUE" in out
