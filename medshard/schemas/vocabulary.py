"""The unified label vocabulary: concepts, and per source a map from its classes to concepts.

The data lives in `vocabulary.json` next to this module (versioned). A source
class maps to zero or more concept ids; zero means the class has no unified
concept (it stays in `source_labels`). The concepts a source can express
form its mask (CLIMB's evaluation mask): "cannot say" is explicit, not a zero.

A concept with `grades` is a grade of one or more ordered scales (DR on the ICDR 0-4 and the
modified Davis scale): `Vocabulary.scale(name)` lists a scale's concepts in order, so an
ordinal head or a "grade >= k" view needs no table of its own.

A concept with `union_of` is derived (CLIMB's merged "A. Fib/Aflutter" is the union
of atrial fibrillation and atrial flutter): sources never map to it, so it is in no
source's mask; a loader label view fills it from its members.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class Grade(BaseModel):
    """A concept's place on an ordered grading scale (ICDR 0-4, the modified Davis scale)."""

    model_config = ConfigDict(extra="forbid")

    scale: str = Field(description="the grading scale, as the sources' `grading_scale` names it")
    rank: int = Field(ge=0, description="position on the scale, 0 = no disease; higher is worse")


class Concept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9]+(\.[a-z0-9-]+)+$")
    name: str
    modality: list[str]
    synonyms: list[str] = Field(default_factory=list)
    description: str | None = None
    union_of: list[str] | None = Field(
        default=None,
        description="a derived concept: positive when any of these is; no source maps to it",
    )
    grades: list[Grade] = Field(
        default_factory=list,
        description="the ordered grading scales this concept is a grade of, with its rank",
    )


class VocabularyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    concepts: list[Concept]
    sources: dict[str, dict[str, list[str]]] = Field(
        description="source slug -> source class (verbatim) -> concept ids"
    )
    notes: dict[str, str] = Field(default_factory=dict, description="per source, mapping notes")


class UnknownClass(KeyError):
    pass


class Vocabulary:
    """Index over the vocabulary file: ids in a fixed order, class maps and masks."""

    def __init__(self, data: VocabularyFile) -> None:
        self.data = data
        self.version = data.version
        self.concept_ids: list[str] = [c.id for c in data.concepts]
        self.index: dict[str, int] = {cid: i for i, cid in enumerate(self.concept_ids)}
        self.unions: dict[str, list[str]] = {}
        for c in data.concepts:
            if c.union_of is not None:
                unknown = [m for m in c.union_of if m not in self.index]
                if unknown or not c.union_of:
                    raise ValueError(f"vocabulary: {c.id} is a union of unknown {unknown}")
                self.unions[c.id] = list(c.union_of)
        self.scales: dict[str, list[str]] = {}
        ranks: dict[str, dict[int, str]] = {}
        for c in data.concepts:
            for g in c.grades:
                taken = ranks.setdefault(g.scale, {})
                if g.rank in taken:
                    raise ValueError(f"vocabulary: {c.id} and {taken[g.rank]} share rank "
                                     f"{g.rank} of scale {g.scale!r}")
                taken[g.rank] = c.id
        for scale, by_rank in ranks.items():
            if sorted(by_rank) != list(range(len(by_rank))):
                raise ValueError(f"vocabulary: scale {scale!r} has ranks {sorted(by_rank)}, "
                                 "not 0..n-1")
            self.scales[scale] = [by_rank[r] for r in sorted(by_rank)]
        for slug, mapping in data.sources.items():
            for cls, targets in mapping.items():
                for t in targets:
                    if t not in self.index:
                        raise ValueError(f"vocabulary: {slug} class {cls!r} maps to unknown {t!r}")
                    if t in self.unions:
                        raise ValueError(
                            f"vocabulary: {slug} class {cls!r} maps to derived concept {t!r}; "
                            f"map to its members {self.unions[t]}"
                        )

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Vocabulary:
        return cls(VocabularyFile.model_validate(obj))

    def __len__(self) -> int:
        return len(self.concept_ids)

    def map_classes(
        self, source: str, classes: list[str], fallback: dict[str, list[str]] | None = None
    ) -> list[str]:
        """Unified concept ids for the source's classes, sorted by vocabulary order.

        `fallback`: the source's own map (`Source.vocabulary_map`), used when this
        vocabulary has none for it (a third-party source); its targets must exist here.
        """
        mapping = self.data.sources.get(source, fallback)
        if mapping is None:
            raise UnknownClass(f"vocabulary {self.version} has no map for source {source!r}")
        if source not in self.data.sources:
            unknown = {t for ts in mapping.values() for t in ts} - set(self.index)
            if unknown or any(t in self.unions for ts in mapping.values() for t in ts):
                raise UnknownClass(f"source {source!r} maps to unknown or derived concepts")
        out: set[str] = set()
        for c in classes:
            if c not in mapping:
                raise UnknownClass(
                    f"source {source!r} class {c!r} is not in vocabulary {self.version}"
                )
            out.update(mapping[c])
        return sorted(out, key=self.index.__getitem__)

    def scale(self, name: str) -> list[str]:
        """The concept ids of the ordered grading scale `name`, from rank 0 up."""
        if name not in self.scales:
            raise KeyError(f"vocabulary {self.version} has no grading scale {name!r}; it has "
                           f"{', '.join(sorted(self.scales)) or 'none'}")
        return list(self.scales[name])

    def source_concepts(self, source: str) -> list[str]:
        mapping = self.data.sources.get(source, {})
        ids = {t for targets in mapping.values() for t in targets}
        return sorted(ids, key=self.index.__getitem__)

    def mask(self, source: str, concepts: list[str] | None = None) -> np.ndarray:
        """1 where the source can express the concept, else 0 (float32, len(vocabulary)).

        `concepts`: what one build of the source expresses (its manifest entry), when its
        options narrow the vocabulary map; default: every concept the map names.
        """
        m = np.zeros(len(self), dtype=np.float32)
        for cid in self.source_concepts(source) if concepts is None else concepts:
            m[self.index[cid]] = 1.0
        return m

    def multi_hot(self, labels: list[str]) -> np.ndarray:
        v = np.zeros(len(self), dtype=np.float32)
        for cid in labels:
            v[self.index[cid]] = 1.0
        return v


@lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    """The vocabulary shipped with this medshard version."""
    text = resources.files("medshard.schemas").joinpath("vocabulary.json").read_text()
    return Vocabulary.from_dict(json.loads(text))
