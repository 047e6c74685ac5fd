"""CLIMB's RQ2 out-of-distribution pairs (a new task or a new source within a modality).

The pairs are data (`ood_pairs.json`, with a source note each); `load_ood_pairs` reads
and validates them against the unified vocabulary: every source is one of its slugs,
expresses concepts of the pair's modality, and the pair's kind matches the label
spaces (`new-source`: the evaluated source shares concepts with the training sources;
`new-task`: it has concepts none of them has).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from medshard.schemas.vocabulary import Vocabulary, load_vocabulary


class OODPair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    modality: str
    kind: Literal["new-source", "new-task"]
    train: list[str]
    evaluate: list[str]
    note: str


class OODFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    description: str
    pairs: list[OODPair]


def pair_problems(pair: OODPair, vocab: Vocabulary) -> list[str]:
    """What is wrong with one pair against the vocabulary (empty when it is valid)."""
    problems = []
    modality = {c.id: set(c.modality) for c in vocab.data.concepts}
    for slug in (*pair.train, *pair.evaluate):
        if slug not in vocab.data.sources:
            problems.append(f"{pair.id}: {slug!r} is not a source of vocabulary {vocab.version}")
        elif not any(pair.modality in modality[c] for c in vocab.source_concepts(slug)):
            problems.append(f"{pair.id}: {slug!r} has no {pair.modality} concept")
    if set(pair.train) & set(pair.evaluate):
        problems.append(f"{pair.id}: a source is both trained on and evaluated")
    if problems:
        return problems
    seen = {c for s in pair.train for c in vocab.source_concepts(s)}
    for slug in pair.evaluate:
        theirs = set(vocab.source_concepts(slug))
        if pair.kind == "new-source" and not theirs & seen:
            problems.append(f"{pair.id}: {slug!r} shares no concept with {pair.train} (new-task?)")
        if pair.kind == "new-task" and theirs <= seen:
            problems.append(f"{pair.id}: {slug!r} has no concept beyond {pair.train} (new-source?)")
    return problems


def load_ood_pairs(data: dict[str, Any] | None = None) -> list[OODPair]:
    """The validated OOD pairs (`data` defaults to the shipped `ood_pairs.json`)."""
    if data is None:
        data = json.loads(resources.files("medshard.jobs").joinpath("ood_pairs.json").read_text())
    parsed = OODFile.model_validate(data)
    vocab = load_vocabulary()
    ids = [p.id for p in parsed.pairs]
    problems = [f"duplicate pair id {i!r}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for pair in parsed.pairs:
        problems += pair_problems(pair, vocab)
    if problems:
        raise ValueError("; ".join(problems))
    return parsed.pairs
