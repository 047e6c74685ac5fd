"""IIIC (HMS release layout): the labelled 10 s, votes, soft label, majority and the patient split,
each against pandas / numpy / hmac computations over the same files."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medshard.sources import get_source
from medshard.sources.eeg.iiic_fixture import write_fixture

VOTES = ["seizure_vote", "lpd_vote", "gpd_vote", "lrda_vote", "grda_vote", "other_vote"]
NAMES = ["SZ", "LPD", "GPD", "LRDA", "GRDA", "Other"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("iiic") / "iiic")


@pytest.fixture(scope="module")
def loaded(root: Path) -> dict[str, object]:
    src = get_source("iiic")
    out = {}
    for record in src.list_records(root):
        try:
            out[record.record_id] = (record, next(iter(src.load(record, root))))
        except Exception:  # noqa: BLE001 - the broken rows are the conformance kit's
            continue
    return out


def test_sample_is_the_central_10_s_of_its_50_s_subsample(root: Path, loaded: dict) -> None:
    table = pd.read_csv(root / "train.csv")
    assert len(loaded) == 8
    for label_id, (_, sample) in loaded.items():
        row = table[table.label_id == int(label_id)].iloc[0]
        eeg = pd.read_parquet(root / "train_eegs" / f"{row.eeg_id}.parquet")
        start = int((row.eeg_label_offset_seconds + 20) * 200)
        expected = eeg.iloc[start : start + 2000]
        np.testing.assert_array_equal(sample.payloads["signal"].data,
                                      expected.drop(columns="EKG").to_numpy().T)
        np.testing.assert_array_equal(sample.payloads["ekg"].data[0], expected["EKG"].to_numpy())
        assert sample.payloads["signal"].descriptor["channels"] == list(eeg.columns[:19])


def test_votes_soft_label_and_majority(root: Path, loaded: dict) -> None:
    table = pd.read_csv(root / "train.csv")
    for label_id, (_, sample) in loaded.items():
        row = table[table.label_id == int(label_id)].iloc[0]
        votes = row[VOTES].to_numpy(dtype=float)
        assert sample.classes == [NAMES[int(np.argmax(votes))]]
        soft = [sample.meta["soft_label"][n] for n in NAMES]
        np.testing.assert_allclose(soft, votes / votes.sum())
        assert sample.meta["raters"] == votes.sum()
        assert sample.meta["vote_tie"] == (np.sum(votes == votes.max()) > 1)
        assert sample.source_labels["expert_consensus"] == row.expert_consensus
    tie = loaded["1029492710"][1]
    assert tie.classes == ["GRDA"] and tie.meta["vote_tie"] is True


def test_split_is_a_keyed_hash_of_the_patient_60_20_20(loaded: dict) -> None:
    for record, _ in loaded.values():
        mac = hmac.new(b"medshard-split:iiic", record.subject_id.encode(), hashlib.sha256)
        u = int.from_bytes(mac.digest()[:8], "big") / 2**64
        assert record.split == ("train" if u < 0.6 else "val" if u < 0.8 else "test")
