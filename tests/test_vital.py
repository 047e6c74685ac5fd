"""BioMed-VITAL over its miniature: streamed listing, conversation text, figure bytes, splits."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest
from PIL import Image

from medshard.formats.json_array import ArrayElement, ArrayError, iter_json_array
from medshard.pipeline.encoders import encode_payloads
from medshard.pipeline.split import DEFAULT_FRACTIONS, assign_split
from medshard.schemas import BadRow, RecordError
from medshard.sources import get_source
from medshard.sources.text import vital_fixture as fx
from medshard.sources.text.vital import figure_unit


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return fx.write_fixture(tmp_path_factory.mktemp("vital") / "vital")


@pytest.fixture(scope="module")
def records(root):
    return list(get_source("vital").list_records(root))


def _values(data: bytes, chunk: int) -> list:
    out = list(iter_json_array(io.BytesIO(data), chunk))
    assert all(isinstance(e, ArrayElement) for e in out), out[-1]
    return out


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64, 1 << 20])
def test_streamed_array_equals_json_load_at_any_chunk_size(root, chunk):
    data = (root / fx.JSON_NAME).read_bytes()
    elements = _values(data, chunk)
    assert [e.value for e in elements] == json.loads(data)  # the stdlib parses it whole
    for e in elements:  # every span holds exactly the element
        assert json.loads(data[e.offset: e.offset + e.length]) == e.value


def test_streamed_array_handles_scalars_and_multibyte_text_cut_anywhere():
    values = [3.25, -17, True, None, "é→✓", {"k": [1e-5, "«»"]}, []]
    data = json.dumps(values, ensure_ascii=False).encode()
    for chunk in range(1, 9):
        assert [e.value for e in _values(data, chunk)] == values


def test_a_syntax_error_stops_the_listing_with_one_error_after_the_good_elements():
    data = b'[{"a": 1}, {"b": }, {"c": 3}]'
    out = list(iter_json_array(io.BytesIO(data), 4))
    assert [type(e) for e in out] == [ArrayElement, ArrayError]
    assert out[1].number == 2 and "invalid JSON" in out[1].reason
    cut = list(iter_json_array(io.BytesIO(b'[{"a": 1}, {"b": 2'), 4))
    assert isinstance(cut[-1], ArrayError) and cut[-1].number == 2
    assert isinstance(list(iter_json_array(io.BytesIO(b'{"a": 1}')))[0], ArrayError)


def test_listing_carries_each_entry_and_names_the_json_as_label_file(root, records):
    assert not [r for r in records if isinstance(r, BadRow)]
    ids = [r.record_id for r in records]
    assert ids == [e["id"] for e in fx.ENTRIES]
    r = records[0]
    assert r.files == ["images/PMC5560101_fig1.jpg"]  # the 463 MB JSON is no record file
    assert r.meta == {"entry_number": 1, "entry": fx.ENTRIES[0]}
    assert get_source("vital").label_files(root) == [fx.JSON_NAME]


def test_a_sample_is_the_turns_verbatim_and_the_figure(root, records):
    raw = json.loads((root / fx.JSON_NAME).read_text(encoding="utf-8"))
    src = get_source("vital")
    for r, entry in zip(records, raw, strict=True):
        if r.record_id in fx.QUARANTINED:
            continue
        (sample,) = src.load(r, root)
        turns = json.loads(sample.payloads["conversation"].data)
        assert turns == entry["conversations"]  # every turn, <image> placeholder included
        assert sample.meta == {"entry_id": entry["id"], "image": entry["image"],
                               "domain": entry.get("domain"), "n_turns": len(turns),
                               "first_speaker": "human"}
        members, desc = encode_payloads(sample, {}, "text", f"vital_{r.record_id}")
        assert set(members) == {"conversation.txt", "image.jpg"}
        stored = bytes(members["image.jpg"])
        assert b"Exif" not in stored and fx.PHI_ARTIST.encode() not in stored
        assert "exif" in " ".join(desc["image"]["metadata_removed"]).lower()
        original = np.asarray(Image.open(root / "images" / entry["image"]))
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(stored))), original)


def test_missing_figure_and_malformed_turns_are_record_errors(root, records):
    src = get_source("vital")
    by_id = {r.record_id: r for r in records}
    with pytest.raises(RecordError, match=f"missing image images/{fx.MISSING_FIGURE}"):
        list(src.load(by_id["vital-missing"], root))
    with pytest.raises(RecordError, match="turn 0 is not"):
        list(src.load(by_id["vital-badturns"], root))


def test_one_figure_and_one_article_never_straddle_splits(records):
    assert figure_unit("PMC5560101_fig1.jpg") == figure_unit("PMC5560101_fig2.jpg") == "PMC5560101"
    assert figure_unit("31415926_F2.jpg") == "31415926_F2.jpg"
    by_unit: dict[str, set[str]] = {}
    for r in records:
        split = assign_split("vital", r.subject_id, r.split, DEFAULT_FRACTIONS)
        by_unit.setdefault(r.subject_id, set()).add(split)
    assert all(len(s) == 1 for s in by_unit.values())
    # fig1 and fig2 of one article share a unit: their three entries share a split
    assert len({r.subject_id for r in records if "PMC5560101" in r.files[0]}) == 1


def test_duplicate_ids_keep_distinct_entries_and_drop_exact_copies(tmp_path):
    root = fx.write_fixture(tmp_path / "vital")
    entries = json.loads((root / fx.JSON_NAME).read_text(encoding="utf-8"))
    changed = dict(entries[0], domain="CT")
    fx.write_entries(root, entries + [dict(entries[0]), changed])
    out = list(get_source("vital").list_records(root))
    bad = [r for r in out if isinstance(r, BadRow)]
    assert [(b.line, "duplicate of entry 1" in b.reason) for b in bad] == [(len(entries) + 1, True)]
    ids = [r.record_id for r in out if not isinstance(r, BadRow)]
    assert len(ids) == len(set(ids)) == len(entries) + 1
    assert ids[-1].startswith("vital-0001_")


def test_subset_option_picks_the_file_and_a_missing_file_says_what_to_do(tmp_path):
    from medshard.sources.base import MissingRawData

    root = fx.write_fixture(tmp_path / "vital")
    with pytest.raises(MissingRawData, match="BioMed-VITAL-instructions-60K.json not found"):
        list(get_source("vital", subset="60K").list_records(root))
    with pytest.raises(ValueError, match="subset"):
        get_source("vital", subset="42K")


def test_large_array_lists_in_order(tmp_path):
    rng = random.Random(7)
    entries = [{"id": f"e{i}", "image": f"PMC{rng.randrange(10**6)}_f.jpg",
                "conversations": [{"from": "human", "value": "x" * rng.randrange(400)}]}
               for i in range(300)]
    (tmp_path / fx.JSON_NAME).write_text(json.dumps(entries), encoding="utf-8")
    (tmp_path / "images").mkdir()
    out = list(get_source("vital").list_records(tmp_path))
    assert [r.record_id for r in out] == [e["id"] for e in entries]
