"""The OOD pair file: valid against the vocabulary, and bad pairs are caught."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest

from medshard.jobs.ood import load_ood_pairs


def _shipped() -> dict:
    return json.loads(resources.files("medshard.jobs").joinpath("ood_pairs.json").read_text())


def test_shipped_pairs_are_valid_and_cover_the_three_modalities():
    pairs = load_ood_pairs()
    assert {p.modality for p in pairs} == {"ecg", "chest-xray", "eeg"}
    assert {p.kind for p in pairs} == {"new-source", "new-task"}
    assert all(p.note for p in pairs)
    ecg = {s for p in pairs if p.modality == "ecg" for s in p.evaluate}
    assert ecg == {"chapman-shaoxing", "georgia", "cpsc"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.__setitem__("evaluate", ["chapman"]), "not a source"),
        (lambda p: p.__setitem__("modality", "eeg"), "has no eeg concept"),
        (lambda p: p.__setitem__("kind", "new-task"), "no concept beyond"),
        (lambda p: p.__setitem__("train", ["chapman-shaoxing"]), "both trained on and evaluated"),
    ],
)
def test_bad_pairs_are_refused(edit, message):
    data = copy.deepcopy(_shipped())
    edit(data["pairs"][0])  # ecg-ptbxl-to-chapman
    with pytest.raises(ValueError, match=message):
        load_ood_pairs(data)


def test_new_source_pair_must_share_concepts():
    data = copy.deepcopy(_shipped())
    pair = next(p for p in data["pairs"] if p["id"] == "eeg-tuab-to-tuev")
    pair["kind"] = "new-source"
    with pytest.raises(ValueError, match="shares no concept"):
        load_ood_pairs(data)
