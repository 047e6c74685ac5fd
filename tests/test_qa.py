"""`medshard qa` on the conformance kit's build: one question per classification sample
(an unlabelled one of a multi-label source answered "None of these"), its label the
correct option, shards named, same bytes on a rerun."""

from __future__ import annotations

import json
import tarfile
from collections import Counter

import pyarrow.parquet as pq
import pytest

from medshard.cli import main
from medshard.errors import UserError
from medshard.jobs.qa import (
    answer_options,
    is_classification,
    letters,
    make_questions,
    shuffled,
    source_options,
)
from medshard.schemas.vocabulary import load_vocabulary

FIELDS = {"format", "key", "source", "split", "modality", "task", "shard_webdataset",
          "shard_parquet", "question", "multi_label", "options", "answer", "answer_text",
          "labels"}


@pytest.fixture(scope="module")
def qa(kit, tmp_path_factory):
    out = tmp_path_factory.mktemp("qa")
    assert main(["qa", str(kit.out), "--out", str(out / "a")]) == 0
    assert main(["qa", str(kit.out), "--out", str(out / "b")]) == 0
    lines = (out / "a" / "qa.jsonl").read_bytes().splitlines()
    return out, [json.loads(line) for line in lines]


def test_every_labelled_classification_sample_gets_one_question_answered_by_its_label(kit, qa):
    out, questions = qa
    index = pq.read_table(kit.out / "index.parquet").to_pylist()
    asked = Counter(q["key"] for q in questions)
    assert set(asked.values()) <= {1}
    summary = json.loads((out / "a" / "qa_summary.json").read_text())
    skipped = sum(n for reasons in summary["skipped"].values() for n in reasons.values())
    assert len(questions) + skipped == len(index) == summary["questions"] + skipped
    classification = [r for r in index if is_classification(r["task"])]
    # Cholec80's "multilabel" and HuGaDB's "activity recognition" are classification too
    assert {r["task"] for r in classification} >= {"multilabel", "activity recognition"}
    assert classification, "the kit build holds classification samples"
    multi = {q["source"] for q in questions if q["multi_label"]}
    assert "ptb-xl" in multi
    for r in classification:
        # a labelled sample is never skipped, nor an unlabelled one of a multi-label source
        if r["labels"] or r["source"] in multi:
            assert asked[r["key"]] == 1, r["key"]
    none_answers = [q for q in questions if q["answer_text"] == ["None of these"]]
    assert none_answers, "the kit build holds a multi-label sample with no unified label"
    assert all(not q["labels"] and q["multi_label"] for q in none_answers)
    by_key = {q["key"]: q for q in questions}
    for r in index:
        q = by_key.get(r["key"])
        if q is None:
            continue
        assert set(q) == FIELDS
        assert q["labels"] == list(r["labels"]) and q["split"] == r["split"]
        letters_ = [o["letter"] for o in q["options"]]
        assert letters_ == letters(len(letters_))
        chosen = [o for o in q["options"] if o["letter"] in q["answer"]]
        assert ("None of these" in [o["text"] for o in q["options"]]) == q["multi_label"]
        # the correct options' concepts are exactly the sample's unified labels
        assert set().union(*(o["concepts"] for o in chosen)) == set(r["labels"])
        assert [o["text"] for o in chosen] == q["answer_text"]
        if not q["multi_label"]:
            assert len(q["answer"]) == 1
        # the options are the source's whole label space, whatever the sample
        texts = sorted(o["text"] for o in q["options"])
        assert len(set(texts)) == len(texts)


def test_questions_reference_samples_in_their_shards_without_copying_payloads(kit, qa):
    _, questions = qa
    tars: dict[str, set[str]] = {}
    for q in questions:
        path = q["shard_webdataset"]
        if path not in tars:
            with tarfile.open(kit.out / path) as tar:
                tars[path] = {m.name.split(".", 1)[0] for m in tar}
        assert q["key"] in tars[path]
        assert (kit.out / q["shard_parquet"]).is_file()
        line = json.dumps(q)
        assert len(line) < 8000  # metadata only: no payload travels with a question


def test_a_rerun_gives_the_same_bytes_and_another_seed_another_order(kit, qa):
    out, questions = qa
    assert (out / "a" / "qa.jsonl").read_bytes() == (out / "b" / "qa.jsonl").read_bytes()
    assert (out / "a" / "qa_summary.json").read_bytes() == (out / "b" / "qa_summary.json").read_bytes()
    assert main(["qa", str(kit.out), "--out", str(out / "c"), "--seed", "1"]) == 0
    other = [json.loads(x) for x in (out / "c" / "qa.jsonl").read_bytes().splitlines()]
    assert [q["key"] for q in other] == [q["key"] for q in questions]
    assert [sorted(q["answer_text"]) for q in other] == [sorted(q["answer_text"]) for q in questions]
    assert any(len(q["options"]) > 2 for q in questions)
    assert any(a["options"] != b["options"] for a, b in zip(questions, other, strict=True)
               if len(a["options"]) > 2)


def test_options_are_one_per_concept_set_named_by_what_only_they_have():
    vocab = load_vocabulary()
    opts = source_options(vocab, "brain-tumor", None)
    texts = [o["text"] for o in opts]
    assert len(opts) == 4 and "Brain tumour" not in " ".join(texts)
    glioma = next(o for o in opts if "mri.glioma" in o["concepts"])
    assert set(glioma["concepts"]) == {"mri.brain-tumor", "mri.glioma"}
    assert glioma["text"] == "Glioma"
    i = opts.index(glioma)
    assert answer_options(opts, ["mri.glioma", "mri.brain-tumor"]) == [i]
    assert answer_options(opts, []) is None
    assert answer_options(opts, ["mri.brain-tumor"]) is None  # no option is exactly that


def test_an_option_inside_a_larger_matched_one_is_implied_not_answered():
    opts = [{"text": "A", "classes": ["a"], "concepts": ["x"]},
            {"text": "AB", "classes": ["ab"], "concepts": ["x", "y"]},
            {"text": "C", "classes": ["c"], "concepts": ["z"]}]
    assert answer_options(opts, ["x", "y"]) == [1]
    assert answer_options(opts, ["x", "y", "z"]) == [1, 2]
    assert answer_options(opts, ["x", "q"]) is None


def test_letters_and_orders():
    assert letters(28)[-3:] == ["Z", "AA", "AB"]
    assert shuffled(10, "k", 0) == shuffled(10, "k", 0) != shuffled(10, "k2", 0)
    assert sorted(shuffled(10, "k", 3)) == list(range(10))


def test_unknown_source_and_missing_build_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="not in the build"):
        make_questions({"sources": {}}, [{"source": "busi"}], sources=["nope"])
    assert main(["qa", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
