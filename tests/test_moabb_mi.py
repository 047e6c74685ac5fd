"""moabb-mi (BNCI 2014-001 / BCI Competition IV 2a): trials against MNE's own events, the GDF
fixture against MNE's reader, the stored trial against SciPy's resampling."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import mne
import numpy as np
import pytest
from scipy.io import loadmat
from scipy.signal import resample_poly

from medshard.sources import get_source
from medshard.sources.eeg.moabb_mi_fixture import (
    PHYS_RANGE_UV,
    REJECTED_TRIALS,
    SESSIONS,
    session_events,
    session_signal,
    write_fixture,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("bciciv2a") / "moabb-mi")


def _mne_cues(gdf: Path) -> tuple[mne.io.BaseRaw, list[tuple[int, str]]]:
    raw = mne.io.read_raw_gdf(str(gdf), preload=False, verbose="error")
    events, event_id = mne.events_from_annotations(raw, verbose="error")
    code_of = {v: k for k, v in event_id.items()}
    cues = [(int(s), code_of[c]) for s, _, c in events
            if code_of[c] in ("769", "770", "771", "772", "783")]
    return raw, cues


@pytest.mark.parametrize("session", ["A01T", "A01E", "A02T", "A02E"])
def test_trial_onsets_and_labels_equal_mne_events(root: Path, session: str) -> None:
    src = get_source("moabb-mi")
    record = next(r for r in src.list_records(root) if r.record_id == session)
    samples = list(src.load(record, root))
    raw, cues = _mne_cues(root / "BCICIV_2a_gdf" / f"{session}.gdf")
    if session.endswith("T"):
        expected = [{"769": 1, "770": 2, "771": 3, "772": 4}[code] for _, code in cues]
    else:  # cue 783 (unknown): the true labels, in order
        assert {code for _, code in cues} == {"783"}
        expected = loadmat(str(root / "true_labels" / f"{session}.mat"))["classlabel"].ravel()
    assert [s.source_labels["class"] for s in samples] == [int(v) for v in expected]
    names = ["left hand", "right hand", "feet", "tongue"]
    assert [s.classes for s in samples] == [[names[int(v) - 1]] for v in expected]
    fs = raw.info["sfreq"]
    assert [round(s.meta["cue_onset_s"] * fs) for s in samples] == [c for c, _ in cues]
    for s, (cue, _) in zip(samples, cues, strict=True):  # [cue, cue + 4 s), EEG and EOG apart
        eeg = raw.get_data(picks=[c for c in raw.ch_names if c.startswith("EEG")],
                           start=cue, stop=cue + 1000) * 1e6
        np.testing.assert_allclose(s.payloads["signal"].data, eeg)
        assert s.payloads["eog"].descriptor["channels"] == ["EOG-left", "EOG-central",
                                                            "EOG-right"]
        assert s.payloads["signal"].data.shape == (22, 1000)
    rejected = REJECTED_TRIALS.get((session[:3], session[3]), set())
    assert [s.meta["rejected_by_experts"] for s in samples] == [
        i in rejected for i in range(len(samples))]


def test_the_gdf_writer_is_what_mne_reads(root: Path) -> None:
    classes = SESSIONS["A01"][0]
    events, n = session_events(classes, False, {2})
    raw = mne.io.read_raw_gdf(str(root / "BCICIV_2a_gdf" / "A01T.gdf"), preload=True,
                              verbose="error")
    assert raw.info["sfreq"] == 250 and len(raw.ch_names) == 25 and raw.n_times == n
    step = PHYS_RANGE_UV / 32767  # int16 quantization
    np.testing.assert_allclose(raw.get_data() * 1e6, session_signal(n, 37.0), atol=step / 2 + 1e-9)
    onsets = np.round(raw.annotations.onset * 250).astype(int).tolist()
    assert list(zip(onsets, raw.annotations.description, strict=True)) == [
        (s, str(c)) for s, c, _ in events]


def test_a_stored_trial_is_scipy_resampling_of_mne_data(root: Path, tmp_path: Path) -> None:
    from medshard.pipeline.build import BuildConfig, run_build

    run_build(BuildConfig(sources=["moabb-mi"], data_root=root.parent, out=tmp_path / "out",
                          progress=False))
    tar = sorted((tmp_path / "out" / "webdataset" / "moabb-mi" / "train").glob("*.tar"))[0]
    with tarfile.open(tar) as tf:
        members = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}  # type: ignore[union-attr]
    meta = json.loads(members["moabb-mi_A01T_t001.json"])
    stored = np.load(io.BytesIO(members["moabb-mi_A01T_t001.signal.npy"]))
    raw, cues = _mne_cues(root / "BCICIV_2a_gdf" / "A01T.gdf")
    cue = cues[1][0]
    eeg = raw.get_data(picks=list(range(22)), start=cue, stop=cue + 1000) * 1e6
    at200 = resample_poly(eeg, 4, 5, axis=-1)  # 250 -> 200 Hz
    expected = at200 / (np.quantile(np.abs(at200), 0.95, axis=-1, keepdims=True) + 1e-8)
    np.testing.assert_allclose(stored, expected, rtol=1e-5, atol=1e-5)
    assert meta["split"] == "train" and meta["labels"] == ["eeg.mi-right-hand"]
    assert meta["payloads"]["eog"]["channels"] == ["EOG-left", "EOG-central", "EOG-right"]
    assert meta["payloads"]["signal"]["channels"][:3] == ["Fz", "FC3", "FC1"]
