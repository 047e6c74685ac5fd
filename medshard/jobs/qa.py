"""CLIMB-QA-style closed multiple-choice questions from a build's classification labels.

CLIMB publishes a question-answer version of its benchmark (CLIMB-QA) and scores
a prediction by order-agnostic equality of the predicted and the target set of
conditions (CLIMB Appendix B). `medshard qa BUILD --out DIR` writes such questions
for every classification sample of a build, from its unified labels, referencing
the sample by key and shard so no payload is copied. CLIMB-QA's own files and
prompt wording were not found in CLIMB's public code: the record layout and the
templates below are medshard's, written to that scoring rule.

Options. A source's options are its classes as the vocabulary maps them (the
"source's label space"), restricted to the concepts the build can express for it
(the manifest's mask, which honours source options), one option per distinct
concept set (classes that map to the same concepts are one option, all their
names kept). An option's text is the display name of the concepts that only it
has within the source (Brain Tumor's "glioma_tumor" maps to glioma *and* brain
tumour: its text is "Glioma"), else of all its concepts.

Answer. The options whose whole concept set is among the sample's labels, keeping
only the largest (an option contained in another matched one is implied by it).
They must cover every label; a sample whose labels no option set covers gets no
question and is counted under `skipped` with the reason. A sample with no unified label
is answered by the option "None of these" in a multi-label source (where no label means
none of the listed conditions: CLIMB scores the empty set like any other); in a
single-label source it has no class to ask for and is skipped. Every classification
task is asked: a task whose name says "classification" (multi-class, multi-label,
binary), "multilabel" (Cholec80's phases and tools) or "recognition" (HuGaDB's
activities). A source whose task is multi-label, or where any sample
has more than one answer, is multi-label: its
question says "select all that apply" and every answer lists all its letters (one
question per sample, scored as a set, as CLIMB-QA is); otherwise exactly one letter.

Order. Options are sorted by text, then shuffled by a generator seeded with
sha256("medshard-qa/<seed>/<key>"): the same build and seed give the same bytes.

Output: `DIR/qa.jsonl` (one canonical JSON line per question, sorted by source,
split and key; every line has the same fields) and `DIR/qa_summary.json`
(the build's config hash, counts per source and split, skips with reasons).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fsspec
import pyarrow.parquet as pq

from medshard.errors import UserError
from medshard.schemas.vocabulary import Vocabulary, load_vocabulary

FORMAT = "medshard.qa/1"

# what a sample of each modality is called in a question
SUBJECT = {
    "ecg": "12-lead ECG recording", "eeg": "EEG recording", "chest-xray": "chest X-ray",
    "mammography": "mammogram", "dermoscopy": "dermoscopic image", "fundus": "fundus photograph",
    "pathology": "histopathology image", "ct": "CT scan", "mri": "MRI scan",
    "ultrasound": "ultrasound image", "video": "video", "graph": "graph", "omics": "expression "
    "profile", "imu": "motion recording", "ehr": "health record", "text": "text", "oct": "OCT scan",
}
SINGLE = "Which of the following does this {subject} show? Answer with one letter."
MULTI = ("Which of the following does this {subject} show? Select all that apply and answer "
         "with their letters.")


# the answer of a multi-label sample with no unified label
NONE_OPTION: dict[str, Any] = {"text": "None of these", "classes": [], "concepts": []}


def is_classification(task: str) -> bool:
    """Whether a sample's task asks for classes (the words sources use for it)."""
    return any(word in task for word in ("classification", "multilabel", "multi-label",
                                         "recognition"))


def _multi_label(task: str) -> bool:
    return "multi-label" in task or "multilabel" in task


def letters(n: int) -> list[str]:
    """A, B, ..., Z, AA, AB, ... for n options."""
    out = []
    for i in range(n):
        s, i = "", i + 1
        while i:
            i, r = divmod(i - 1, 26)
            s = chr(65 + r) + s
        out.append(s)
    return out


def source_options(vocab: Vocabulary, source: str, mask: Sequence[str] | None,
                   fallback: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """The source's options: one per distinct concept set of its classes (inside `mask`),
    sorted by text; each {"text", "classes", "concepts"}."""
    mapping = vocab.data.sources.get(source, fallback) or {}
    allowed = set(mask) if mask is not None else None
    by_set: dict[tuple[str, ...], list[str]] = {}
    for cls, targets in mapping.items():
        concepts = tuple(sorted(set(targets), key=vocab.index.__getitem__))
        if not concepts or (allowed is not None and not set(concepts) <= allowed):
            continue
        by_set.setdefault(concepts, []).append(cls)
    count = Counter(c for cs in by_set for c in cs)
    names = {c.id: c.name for c in vocab.data.concepts}
    options = []
    for concepts, classes in by_set.items():
        own = [c for c in concepts if count[c] == 1] or list(concepts)
        options.append({"text": " / ".join(names[c] for c in own), "classes": sorted(classes),
                        "concepts": list(concepts)})
    options.sort(key=lambda o: (o["text"], o["concepts"]))
    return options


def answer_options(options: list[dict[str, Any]], labels: Sequence[str]) -> list[int] | None:
    """Indices of the options a sample's labels answer (maximal matches), or None when the
    labels are empty or not covered by them."""
    have = set(labels)
    if not have:
        return None
    matched = [i for i, o in enumerate(options) if set(o["concepts"]) <= have]
    maximal = [i for i in matched if not any(
        j != i and set(options[i]["concepts"]) < set(options[j]["concepts"]) for j in matched)]
    covered = set().union(*(options[i]["concepts"] for i in maximal)) if maximal else set()
    return sorted(maximal) if covered == have else None


def shuffled(n: int, key: str, seed: int) -> list[int]:
    """A permutation of range(n) fixed by (seed, key)."""
    digest = hashlib.sha256(f"medshard-qa/{seed}/{key}".encode()).digest()
    order = list(range(n))
    random.Random(int.from_bytes(digest[:16], "big")).shuffle(order)
    return order


def read_build(build: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(manifest, index rows) of a build directory or URL."""
    base = str(build).rstrip("/")
    columns = ["key", "source", "modality", "split", "task", "labels", "shard_webdataset",
               "shard_parquet"]
    try:
        with fsspec.open(f"{base}/manifest.json", "rb") as fh:
            manifest = json.loads(fh.read())
        with fsspec.open(f"{base}/index.parquet", "rb") as fh:
            rows = pq.read_table(fh, columns=columns).to_pylist()
    except (FileNotFoundError, OSError) as e:
        raise UserError(f"{build} is not a medshard build (no manifest.json/index.parquet): {e}") from e
    except ValueError as e:  # pyarrow: a column is missing
        raise UserError(f"{build}/index.parquet lacks one of {columns} ({e}); rebuild with "
                        "this medshard") from e
    return manifest, rows


def _fallback_map(source: str) -> dict[str, list[str]] | None:
    from medshard.sources.registry import UnknownSource, source_class

    try:
        return source_class(source).vocabulary_map
    except (UnknownSource, ImportError):
        return None


def make_questions(manifest: dict[str, Any], rows: list[dict[str, Any]], seed: int = 0,
                   sources: Sequence[str] | None = None,
                   vocab: Vocabulary | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(questions sorted by source, split, key; summary) for the build's rows."""
    vocab = vocab or load_vocabulary()
    present = sorted({r["source"] for r in rows})
    chosen = sorted(sources) if sources else present
    unknown = sorted(set(chosen) - set(present))
    if unknown:
        raise UserError(f"sources {unknown} are not in the build; it has {present}")
    questions: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    skipped: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for source in chosen:
        mine = sorted((r for r in rows if r["source"] == source),
                      key=lambda r: (r["split"], r["key"]))
        mask = (manifest.get("sources", {}).get(source) or {}).get("concepts")
        options = source_options(vocab, source, mask, None if source in vocab.data.sources
                                 else _fallback_map(source))
        answers: dict[str, list[int]] = {}
        unlabelled: list[str] = []
        for r in mine:
            if not is_classification(r["task"]):
                skipped[source][f"task {r['task']} is not classification"] += 1
            elif not options:
                skipped[source]["the source has no classes in the vocabulary"] += 1
            elif not r["labels"]:
                unlabelled.append(r["key"])
            elif (found := answer_options(options, r["labels"])) is None:
                skipped[source]["labels not covered by the source's classes"] += 1
            else:
                answers[r["key"]] = found
        multi = (any(_multi_label(r["task"]) for r in mine if is_classification(r["task"]))
                 or any(len(a) > 1 for a in answers.values()))
        if multi and options:  # no label: none of the listed conditions
            options = [*options, NONE_OPTION]
            answers.update({key: [len(options) - 1] for key in unlabelled})
        elif unlabelled:
            skipped[source]["no unified label (single-label source)"] += len(unlabelled)
        for r in mine:
            if r["key"] not in answers:
                continue
            order = shuffled(len(options), r["key"], seed)
            marks = letters(len(options))
            position = {orig: i for i, orig in enumerate(order)}
            correct = sorted(position[i] for i in answers[r["key"]])
            subject = SUBJECT.get(r["modality"], r["modality"])
            questions.append({
                "format": FORMAT,
                "key": r["key"],
                "source": source,
                "split": r["split"],
                "modality": r["modality"],
                "task": r["task"],
                "shard_webdataset": r["shard_webdataset"],
                "shard_parquet": r["shard_parquet"],
                "question": (MULTI if multi else SINGLE).format(subject=subject),
                "multi_label": multi,
                "options": [{"letter": marks[i], "text": options[o]["text"],
                             "classes": options[o]["classes"],
                             "concepts": options[o]["concepts"]} for i, o in enumerate(order)],
                "answer": [marks[i] for i in correct],
                "answer_text": [options[order[i]]["text"] for i in correct],
                "labels": list(r["labels"]),
            })
            counts[source][r["split"]] += 1
    summary = {
        "format": FORMAT,
        "build_config_hash": manifest.get("config_hash"),
        "vocabulary_version": vocab.version,
        "seed": seed,
        "questions": len(questions),
        "per_source": {s: dict(sorted(c.items())) for s, c in sorted(counts.items())},
        "skipped": {s: dict(sorted(c.items())) for s, c in sorted(skipped.items())},
        "templates": {"single": SINGLE, "multi": MULTI},
    }
    return questions, summary


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def write_qa(build: str, out: Path, seed: int = 0,
             sources: Sequence[str] | None = None) -> dict[str, Any]:
    """Write `out/qa.jsonl` and `out/qa_summary.json` for `build`; returns the summary."""
    manifest, rows = read_build(build)
    questions, summary = make_questions(manifest, rows, seed, sources)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".qa.jsonl.tmp"
    with open(tmp, "wb") as fh:
        for q in questions:
            fh.write(_line(q))
    tmp.replace(out / "qa.jsonl")
    (out / "qa_summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary
