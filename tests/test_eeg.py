"""EEG sources TUAB and TUEV: windows, montage, resampling, normalization, events, splits, PHI.

Fixtures are real EDF files written with pyedflib's EdfWriter (medshard.sources.eeg.tuab_fixture /
tuev) from the real EEG trace pyedflib ships. References are computed independently:
MNE reads the EDF and builds the bipolar montage (set_bipolar_reference), SciPy's
resample_poly resamples, NumPy computes the 95th percentile.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import tarfile
import textwrap
from collections import defaultdict
from pathlib import Path

import mne
import numpy as np
import pytest
from scipy.signal import resample_poly

from medshard.pipeline.transforms.signal import standardize_signal
from medshard.schemas import Filtered, RecordError
from medshard.schemas.standards import EEG_SPEC
from medshard.sources import get_source
from medshard.sources.eeg import tuab_fixture as demo_tuab
from medshard.sources.eeg import tuev_fixture as demo_tuev
from medshard.sources.eeg.tuh import MONTAGE_16, MONTAGE_16_CHANNELS, parse_electrode

BROKEN_TUAB = demo_tuab.MISSING_ELECTRODE_SESSION  # lacks electrode T5
SHORT_TUAB = demo_tuab.SHORT_SESSION  # 9 s: no whole window
BROKEN_TUEV = demo_tuev.BAD_CHANNEL_SESSION  # .rec names TCP channel 22


@pytest.fixture(scope="module")
def tuab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = demo_tuab.write_raw(tmp_path_factory.mktemp("tuab"))
    electrodes = tuple(e for e in demo_tuab.TUH_ELECTRODES if e != "T5")
    demo_tuab.write_session(root / BROKEN_TUAB, duration_s=20, electrodes=electrodes)
    demo_tuab.write_session(root / SHORT_TUAB, duration_s=9)
    return root


@pytest.fixture(scope="module")
def tuev_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = demo_tuev.write_raw(tmp_path_factory.mktemp("tuev"))
    edf = demo_tuev.write_session(root / f"{BROKEN_TUEV}.edf", duration_s=20, rate_hz=250)
    edf.with_suffix(".rec").write_text(demo_tuev.BAD_CHANNEL_REC)
    return root


def mne_montage_uv(path: Path) -> tuple[np.ndarray, mne.io.BaseRaw]:
    """The 16-channel bipolar montage in microvolts, computed by MNE from the referential EDF."""
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    bipolar = mne.set_bipolar_reference(
        raw,
        anode=[f"EEG {a}-REF" for _, a, _ in MONTAGE_16],
        cathode=[f"EEG {c}-REF" for _, _, c in MONTAGE_16],
        ch_name=list(MONTAGE_16_CHANNELS),
        drop_refs=False,
        verbose="error",
    )
    return bipolar.get_data(picks=list(MONTAGE_16_CHANNELS)) * 1e6, raw


def expected_standardized(window_uv: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """BIOT/CLIMB preprocessing by hand: polyphase resample to 200 Hz, divide by p95 of |x|."""
    up, down = 200, int(rate)
    g = math.gcd(up, down)
    resampled = resample_poly(window_uv, up // g, down // g, axis=1)
    p95 = np.percentile(np.abs(resampled), 95, axis=1) + 1e-8
    return resampled / p95[:, None], p95


# ---------------------------------------------------------------- montage labels


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("EEG FP1-REF", ("FP1", "REF")),
        ("EEG FP1-LE", ("FP1", "LE")),
        ("  eeg fp1 - le ", ("FP1", "LE")),
        ("EEG T3", ("T3", "")),
        ("PHOTIC-REF", None),
        ("EDF Annotations", None),
        ("EEG FP1-AVG", None),
    ],
)
def test_parse_electrode_tolerates_reference_and_case(label, expected):
    assert parse_electrode(label) == expected


# ---------------------------------------------------------------- TUAB


def test_tuab_lists_every_file_with_folder_label_and_official_test_split(tuab_root):
    records = list(get_source("tuab").list_records(tuab_root))
    assert len(records) == len(demo_tuab.DEMO_SESSIONS) + 2
    by_id = {r.record_id: r for r in records}
    mye = by_id["aaaaamye_s001_t001"]
    assert mye.subject_id == "aaaaamye"
    assert mye.files == ["edf/train/abnormal/01_tcp_ar/aaaaamye_s001_t001.edf"]
    assert mye.source_labels == {"folder": "abnormal"}
    assert mye.size_bytes == (tuab_root / mye.files[0]).stat().st_size
    for r in records:
        official = r.files[0].split("/")[1]
        assert r.split == ("test" if official == "eval" else r.split)
        assert r.split in (("test",) if official == "eval" else ("train", "val"))


def test_tuab_window_count_is_floor_of_duration_over_10s(tuab_root):
    src = get_source("tuab")
    counted = 0
    for rec in src.list_records(tuab_root):
        if rec.files[0] in (BROKEN_TUAB, SHORT_TUAB):
            continue
        raw = mne.io.read_raw_edf(tuab_root / rec.files[0], preload=False, verbose="error")
        expected = math.floor(raw.n_times / raw.info["sfreq"] / 10.0)
        samples = list(src.load(rec, tuab_root))
        assert len(samples) == expected, rec.record_id
        assert [s.key_suffix for s in samples] == [f"w{w:04d}" for w in range(expected)]
        assert all(s.payloads["signal"].data.shape == (16, 2560) for s in samples)
        counted += expected
    assert counted == sum(d // 10 for *_, d in demo_tuab.DEMO_SESSIONS)


def test_tuab_windows_equal_mne_bipolar_montage_at_native_rate(tuab_root):
    src = get_source("tuab")
    rec = next(r for r in src.list_records(tuab_root) if r.record_id == "aaaaamye_s001_t000")
    reference, raw = mne_montage_uv(tuab_root / rec.files[0])
    samples = list(src.load(rec, tuab_root))
    rate = raw.info["sfreq"]
    assert rate == 256.0
    for w, s in enumerate(samples):
        p = s.payloads["signal"]
        assert p.kind == "signal"
        assert p.descriptor == {
            "sampling_rate_hz": 256.0, "channels": MONTAGE_16_CHANNELS, "units": "uV",
        }
        np.testing.assert_allclose(
            p.data, reference[:, w * 2560 : (w + 1) * 2560], rtol=1e-9, atol=1e-6
        )
        assert s.classes == ["abnormal"]
        assert s.meta["window_index"] == w and s.meta["window_start_s"] == 10.0 * w
    assert samples[0].meta["recording_duration_s"] == raw.n_times / rate
    # real EEG amplitudes: tens of microvolts, not volts or millivolts
    assert 5 < np.percentile(np.abs(samples[0].payloads["signal"].data), 95) < 500


def test_tuab_standardized_window_equals_scipy_resampling_and_p95(tuab_root):
    src = get_source("tuab")
    rec = next(r for r in src.list_records(tuab_root) if r.record_id == "aaaaaasb_s001_t000")
    reference, _ = mne_montage_uv(tuab_root / rec.files[0])
    sample = list(src.load(rec, tuab_root))[1]
    data, desc = standardize_signal(
        sample.payloads["signal"].data, sample.payloads["signal"].descriptor, EEG_SPEC
    )
    expected, p95 = expected_standardized(reference[:, 2560:5120], 256.0)
    assert data.shape == (16, 2000) and data.dtype == np.float32
    np.testing.assert_allclose(data, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(desc["scale"], p95, rtol=1e-9)
    assert desc["sampling_rate_hz"] == 200.0 and desc["original_sampling_rate_hz"] == 256.0
    assert desc["channels"] == MONTAGE_16_CHANNELS and desc["normalization"] == "p95"


def test_tuab_missing_montage_electrode_raises_naming_the_channels(tuab_root):
    src = get_source("tuab")
    rec = next(r for r in src.list_records(tuab_root) if r.files[0] == BROKEN_TUAB)
    with pytest.raises(RecordError) as err:
        next(src.load(rec, tuab_root))
    message = str(err.value)
    assert "T3-T5" in message and "T5-O1" in message and "T5" in message
    assert "T4-T6" not in message


def test_tuab_session_shorter_than_a_window_is_filtered(tuab_root):
    src = get_source("tuab")
    rec = next(r for r in src.list_records(tuab_root) if r.files[0] == SHORT_TUAB)
    with pytest.raises(Filtered, match="shorter than one 10-s window"):
        list(src.load(rec, tuab_root))


def test_unreadable_edf_is_a_record_error(tmp_path):
    path = tmp_path / "edf/eval/abnormal/01_tcp_ar/aaaaabad_s001_t000.edf"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"0       not an EDF header" + bytes(300))
    src = get_source("tuab")
    [rec] = list(src.list_records(tmp_path))
    with pytest.raises(RecordError, match="cannot read EDF aaaaabad_s001_t000.edf"):
        next(src.load(rec, tmp_path))


def test_linked_ear_reference_and_label_variants_read_the_same_signal(tmp_path):
    ref = demo_tuab.write_session(
        tmp_path / "ref/edf/eval/normal/01_tcp_ar/aaaaaref_s001_t000.edf", duration_s=20
    )
    le = demo_tuab.write_session(
        tmp_path / "le/edf/eval/normal/01_tcp_ar/aaaaaref_s001_t000.edf",
        duration_s=20,
        reference="le",
        label_format=" eeg {e} - {ref}",
    )
    src = get_source("tuab")
    [rec] = list(src.list_records(tmp_path / "ref"))
    a = list(src.load(rec, ref.parents[4]))
    b = list(src.load(rec, le.parents[4]))
    assert len(a) == len(b) == 2
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.payloads["signal"].data, y.payloads["signal"].data)
    assert a[0].meta["reference"] == "REF" and b[0].meta["reference"] == "LE"


# ---------------------------------------------------------------- TUEV


def read_rec(path: Path) -> list[tuple[int, float, float, int]]:
    rows = []
    for line in path.read_text().splitlines():
        ch, start, stop, code = line.split(",")
        rows.append((int(ch), float(start), float(stop), int(code)))
    return rows


@pytest.mark.parametrize("edge_padding", ["wrap", "reflect"])
def test_tuev_one_window_per_event_row_against_mne(tuev_root, edge_padding):
    src = get_source("tuev", edge_padding=edge_padding)
    classes = {1: "SPSW", 2: "GPED", 3: "PLED", 4: "EYEM", 5: "ARTF", 6: "BCKG"}
    seen_padding = set()
    for rec in src.list_records(tuev_root):
        if rec.files[0].startswith(BROKEN_TUEV):
            continue
        rows = read_rec(tuev_root / rec.files[1])
        montage, raw = mne_montage_uv(tuev_root / rec.files[0])
        fs, n, times = raw.info["sfreq"], raw.n_times, raw.times
        samples = list(src.load(rec, tuev_root))
        assert len(samples) == len(rows)
        for i, (sample, (ch, start, stop, code)) in enumerate(zip(samples, rows, strict=True)):
            # BIOT's rule: first sample at or after start/stop, 2 s either side
            first = int(np.nonzero(times >= start)[0][0]) - int(2 * fs)
            last = int(np.nonzero(times >= stop)[0][0]) + int(2 * fs)
            if edge_padding == "wrap":  # BIOT tiles the recording three times
                expected = np.concatenate([montage] * 3, axis=1)[:, n + first : n + last]
            else:
                idx = np.abs(np.arange(first, last))
                idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)
                expected = montage[:, idx]
            np.testing.assert_allclose(
                sample.payloads["signal"].data, expected, rtol=1e-9, atol=1e-6
            )
            assert sample.key_suffix == f"e{i:04d}"
            assert sample.classes == [classes[code]]
            assert sample.source_labels == {"label_code": code, "channel": ch}
            meta = sample.meta
            assert meta["event_channel_index"] == ch
            assert meta["event_channel"] == demo_tuev_channel_name(ch)
            assert meta["event_start_s"] == start and meta["event_stop_s"] == stop
            assert meta["window_start_s"] == first / fs and meta["edge_padding"] == edge_padding
            if meta["padded_samples_before"] or meta["padded_samples_after"]:
                seen_padding.add("before" if meta["padded_samples_before"] else "after")
    assert seen_padding == {"before", "after"}


def demo_tuev_channel_name(ch: int) -> str:
    """TCP montage channel names as the TUEV README lists them (independent of the source)."""
    names = (
        "FP1-F7 F7-T3 T3-T5 T5-O1 FP2-F8 F8-T4 T4-T6 T6-O2 A1-T3 T3-C3 C3-CZ CZ-C4 C4-T4 "
        "T4-A2 FP1-F3 F3-C3 C3-P3 P3-O1 FP2-F4 F4-C4 C4-P4 P4-O2"
    ).split()
    return names[ch]


def test_tuev_five_second_event_window_standardizes_to_1000_samples(tuev_root):
    src = get_source("tuev")
    rec = next(r for r in src.list_records(tuev_root) if r.record_id == "bckg_032_a_")
    sample = next(src.load(rec, tuev_root))
    assert sample.meta["event_channel"] == "F7-T3" and sample.meta["event_channel_in_montage"]
    montage, _ = mne_montage_uv(tuev_root / rec.files[0])
    data, desc = standardize_signal(
        sample.payloads["signal"].data, sample.payloads["signal"].descriptor, EEG_SPEC
    )
    expected, p95 = expected_standardized(montage[:, 500:1750], 250.0)  # 2 s .. 7 s
    assert data.shape == (16, 1000)
    np.testing.assert_allclose(data, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(desc["scale"], p95, rtol=1e-9)


def test_tuev_event_channel_outside_the_16_montage_is_kept_and_flagged(tuev_root):
    src = get_source("tuev")
    rec = next(r for r in src.list_records(tuev_root) if r.record_id == "00000254_00000001")
    first = next(src.load(rec, tuev_root))
    assert first.meta["event_channel"] == "T4-A2"
    assert first.meta["event_channel_in_montage"] is False
    assert first.payloads["signal"].data.shape == (16, 1250)


@pytest.mark.parametrize(
    ("rec_text", "error", "match"),
    [
        ("3,5.0,6.0,1\n22,8.0,9.0,6\n", RecordError, "channel 22"),
        ("3,5.0,6.0,7\n", RecordError, "label 7"),
        ("3,5.0,6.0\n", RecordError, "line 1"),
        ("3,6.0,5.0,1\n", RecordError, "invalid"),
        ("3,18.5,21.0,1\n", RecordError, "after the recording"),
        ("\n", Filtered, "no annotated events"),
    ],
)
def test_tuev_bad_rec_files_fail_before_any_sample(tmp_path, rec_text, error, match):
    edf = demo_tuev.write_session(
        tmp_path / "edf/train/00000001/00000001_00000001.edf", duration_s=20, rate_hz=250
    )
    edf.with_suffix(".rec").write_text(rec_text)
    src = get_source("tuev")
    [rec] = list(src.list_records(tmp_path))
    with pytest.raises(error, match=match):
        next(src.load(rec, tmp_path))


def test_tuev_edf_without_rec_is_a_record_error(tmp_path):
    demo_tuev.write_session(
        tmp_path / "edf/eval/001/bckg_001_a_.edf", duration_s=20, rate_hz=250
    )
    src = get_source("tuev")
    [rec] = list(src.list_records(tmp_path))
    assert rec.split == "test" and rec.subject_id == "001" and len(rec.files) == 1
    with pytest.raises(RecordError, match="bckg_001_a_.rec"):
        next(src.load(rec, tmp_path))


# ---------------------------------------------------------------- splits


@pytest.mark.parametrize("slug", ["tuab", "tuev"])
def test_keyed_split_keeps_each_subject_in_one_split(slug, tuab_root, tuev_root):
    root = tuab_root if slug == "tuab" else tuev_root
    src = get_source(slug, val_fraction=0.5)
    splits: dict[str, set[str]] = defaultdict(set)
    for rec in src.list_records(root):
        splits[rec.subject_id].add(rec.split)
        assert (rec.split == "test") == ("/eval/" in f"/{rec.files[0]}")
    assert all(len(s) == 1 for s in splits.values())
    assert {"train", "val", "test"} <= set().union(*splits.values())
    # the same subjects, listed again by a fresh source object, land in the same splits
    again = {r.subject_id: r.split for r in get_source(slug, val_fraction=0.5).list_records(root)}
    assert all(splits[s] == {again[s]} for s in again)


def test_val_fraction_is_respected_over_many_subjects():
    src = get_source("tuab")
    subjects = [f"aa{i:06d}" for i in range(4000)]
    share = sum(src.carve_val("train", s) == "val" for s in subjects) / len(subjects)
    assert 0.085 < share < 0.115
    assert all(get_source("tuab", val_fraction=0.0).carve_val("train", s) == "train" for s in subjects)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="val_fraction"):
        get_source("tuab", val_fraction=1.0)
    with pytest.raises(ValueError, match="edge_padding"):
        get_source("tuev", edge_padding="zeros")


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def eeg_build(kit):
    """The conformance kit's build (every fixture; TUAB's and TUEV's include the missing-T5,
    too-short and channel-22 sessions of this module's roots)."""
    if not {"tuab", "tuev"} <= set(kit.fixtures):
        pytest.skip("--sources leaves out tuab or tuev")
    return kit.manifest, kit.out, kit.data_root


def test_build_quarantines_missing_channel_session_naming_the_channel(eeg_build):
    manifest, out, _ = eeg_build
    lines = [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]
    by_record = {q["record_id"]: q for q in lines if q["source"] in ("tuab", "tuev")}
    broken = by_record["aaaaabrk_s001_t000"]
    assert broken["source"] == "tuab" and broken["files"] == [BROKEN_TUAB]
    assert "T3-T5" in broken["message"] and "T5-O1" in broken["message"]
    assert "channel 22" in by_record[Path(BROKEN_TUEV).name]["message"]
    tuab = manifest["sources"]["tuab"]["counts"]
    assert sum(c["quarantined"] for c in tuab.values()) == 2  # + the truncated session
    assert sum(c["filtered"] for c in tuab.values()) == 1
    assert sum(c["samples"] for c in tuab.values()) == sum(
        d // 10 for *_, d in demo_tuab.DEMO_SESSIONS)
    tuev = manifest["sources"]["tuev"]["counts"]
    n_events = sum(len(ev) for _, _, ev in demo_tuev.DEMO_SESSIONS)
    assert sum(c["samples"] for c in tuev.values()) == n_events


def test_build_shards_hold_standardized_windows_matching_mne_and_scipy(eeg_build):
    _, out, data_root = eeg_build
    tuab_root = data_root / "tuab"
    key = "tuab_aaaaaqjw_s001_t000_w0001"
    [tar_path] = list((out / "webdataset" / "tuab" / "test").glob("*.tar"))
    with tarfile.open(tar_path) as tar:
        meta = json.load(tar.extractfile(f"{key}.json"))
        stored = np.load(io.BytesIO(tar.extractfile(f"{key}.signal.npy").read()))
    reference, _ = mne_montage_uv(tuab_root / "edf/eval/abnormal/01_tcp_ar/aaaaaqjw_s001_t000.edf")
    expected, p95 = expected_standardized(reference[:, 2560:5120], 256.0)
    np.testing.assert_allclose(stored, expected, rtol=1e-5, atol=1e-6)
    signal = meta["payloads"]["signal"]
    assert signal["n_samples"] == 2000 and signal["sampling_rate_hz"] == 200.0
    assert signal["original_sampling_rate_hz"] == 256.0 and signal["units"] == "uV"
    np.testing.assert_allclose(signal["scale"], p95, rtol=1e-6)
    # amplitudes are recoverable: stored * scale is the resampled montage in microvolts
    np.testing.assert_allclose(
        stored * np.asarray(signal["scale"])[:, None], expected * p95[:, None], rtol=1e-5, atol=1e-3
    )
    assert meta["split"] == "test" and meta["source_labels"] == {"folder": "abnormal"}
    assert meta["meta"]["window_index"] == 1 and meta["members"] == ["signal.npy"]


# ---------------------------------------------------------------- memory


MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from medshard.pipeline.transforms.signal import standardize_signal
    from medshard.schemas.standards import EEG_SPEC
    from medshard.sources import get_source

    def status_mb(field):
        # VmHWM, not ru_maxrss: ru_maxrss keeps the forking parent's peak across exec
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024

    src = get_source("tuab")
    root = Path(sys.argv[1])
    [rec] = list(src.list_records(root))
    baseline = status_mb("VmRSS")
    windows = 0
    for sample in src.load(rec, root):
        p = sample.payloads["signal"]
        standardize_signal(p.data, p.descriptor, EEG_SPEC)
        windows += 1
    peak = status_mb("VmHWM")
    print(json.dumps({"windows": windows, "baseline_mb": baseline, "peak_mb": peak}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_two_hour_session_is_processed_in_bounded_memory(tmp_path):
    """A 2-h, 256 Hz, 21-electrode session (236 MB as a float64 montage) adds < 64 MB RSS."""
    demo_tuab.write_session(
        tmp_path / "edf/train/normal/01_tcp_ar/aaaalong_s001_t000.edf",
        duration_s=7200,
        rate_hz=256,
    )
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(tmp_path)],
        capture_output=True, text=True, check=True,
    )
    figures = json.loads(probe.stdout.strip().splitlines()[-1])
    print(f"two-hour TUAB session: {figures}")
    assert figures["windows"] == 720
    assert figures["peak_mb"] - figures["baseline_mb"] < 64



def test_sessions_read_from_several_threads_equal_one_thread_reads(tuab_root):
    """pyedflib is not thread-safe (one process-wide file table in EDFlib); Beam workers run
    bundles in threads. Reads from four threads at once must equal reads from one, and the
    same file may be open in two threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    from medshard.sources.eeg.tuh import TUHSession

    files = sorted(p for p in tuab_root.rglob("*.edf") if "aaaaabrk" not in p.name)

    def read(path: Path) -> np.ndarray:
        with TUHSession(path) as session:
            return session.read_montage(0, session.n_samples)

    expected = {p: read(p) for p in files}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(5):
            for path, got in zip(files * 4, pool.map(read, files * 4), strict=True):
                np.testing.assert_array_equal(got, expected[path])
