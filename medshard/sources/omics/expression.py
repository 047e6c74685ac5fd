"""What the expression sources share: Ensembl gene ids, the declared gene index, and the
vector payload one sample's expression becomes.

Feature ids. Every vector is indexed by Ensembl gene ids without their version suffix
(`ENSG00000141510.17` -> `ENSG00000141510`: the suffix changes with each annotation
release while the gene stays the same, and GDC, Expression Atlas and GEO platforms carry
different releases). Two entries of one experiment that strip to the same id are a broken
record (the experiment is quarantined), never summed silently.

The gene index. By default a vector follows its own experiment's genes, in the file's
order, and lists them in `feature_ids`; its `feature_index` names that list with the
sha256 of the ids joined by newlines, so two vectors are comparable exactly when their
index hashes are equal. With the `gene_index` option (a text file under the source root,
one Ensembl gene id per line, `#` comments allowed: e.g. the first column of an
Expression Atlas `_rows` file or a BioMart export), every vector of the build follows that
declared list instead: `feature_ids` is null, `feature_index` carries the file's name,
hash and length, genes of the index an experiment did not measure are *masked* (NaN in a
dense vector, listed in `missing` in a sparse one; a measured zero stays 0), and genes
the experiment measured outside the index are dropped and counted in the sample's meta
(`genes_outside_index`). Masked, not zero: "not measured" and "not expressed" differ, and
a model must not learn absence of a gene from a platform that lacks its probe.
The default repeats the id list in every sample's JSON (exact and self-describing, but
~20 bytes per gene per sample); a full build should declare its index. Writing each
declared index once beside the manifest is left to the build (not done here).

Storage. Bulk profiles (Expression Atlas, GEO, TCGA) are dense `.npy` float32: most
genes are expressed in a bulk sample. Single cells are sparse `.npz` (int32 indices,
float32 values, int32 missing): measured with `benchmarks/expression_storage.py` on the
PBMC cells, sparse is smaller below 49.6% non-zero entries; a cell over a 20,000-gene
index (1.2% non-zero) takes 2,642 bytes sparse against 80,128 dense, and even over the
file's 765 highly variable genes (31.8% non-zero) 2,642 against 3,188.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from medshard.errors import UserError
from medshard.schemas import Payload, RecordError
from medshard.sources.base import SourceOptions

ENSEMBL_GENE = re.compile(r"^(ENS[A-Z]*G\d{11})(\.\d+)?(_PAR_Y)?$")


def ensembl_gene(raw: str) -> str | None:
    """The unversioned Ensembl gene id of `raw`, or None when it is not one (GDC's
    `_PAR_Y` copies of pseudo-autosomal genes are kept apart: they are other rows)."""
    m = ENSEMBL_GENE.match(raw.strip())
    if m is None:
        return None
    return m.group(1) + (m.group(3) or "")


def ids_sha256(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


@dataclass(frozen=True)
class GeneIndex:
    """An ordered list of unique Ensembl gene ids that vectors follow."""

    name: str
    ids: tuple[str, ...]
    position: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pos = {g: i for i, g in enumerate(self.ids)}
        if len(pos) != len(self.ids):
            raise RecordError(f"gene list {self.name!r} repeats a gene id")
        object.__setattr__(self, "position", pos)

    @property
    def sha256(self) -> str:
        return ids_sha256(self.ids)

    def descriptor(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "length": len(self.ids)}


def read_gene_index(path: Path, name: str) -> GeneIndex:
    """The declared gene index file: one Ensembl gene id per line (`#` lines skipped)."""
    ids = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            gene = ensembl_gene(text.split("\t")[0])
            if gene is None:
                raise UserError(f"gene index {name}: line {number} is not an Ensembl gene id "
                                f"({text[:40]!r}); list one id per line")
            ids.append(gene)
    if not ids:
        raise UserError(f"gene index {name} lists no gene; put one Ensembl gene id per line")
    try:
        return GeneIndex(name, tuple(ids))
    except RecordError as exc:
        raise UserError(f"{exc}; list each gene once") from None


class ExpressionOptions(SourceOptions):
    gene_index: str | None = Field(
        None, description="a file under the source root listing the Ensembl gene ids every "
        "vector follows (one per line); unset: each experiment's own genes, listed in every "
        "sample's feature_ids (about 1.1 MB of JSON per sample for GDC's 60,660 genes: set "
        "it for full builds)")


def experiment_genes(raw_ids: Sequence[str], where: str) -> GeneIndex:
    """The experiment's genes as a GeneIndex; a row that is not an Ensembl gene id, or two
    rows of one gene, is a RecordError naming `where`."""
    genes = []
    for i, raw in enumerate(raw_ids):
        gene = ensembl_gene(raw)
        if gene is None:
            raise RecordError(f"{where}: gene row {i + 1} is {raw[:40]!r}, not an Ensembl "
                              "gene id")
        genes.append(gene)
    if len(set(genes)) != len(genes):
        dup = next(g for g in genes if genes.count(g) > 1)
        raise RecordError(f"{where}: gene {dup} appears in two rows")
    return GeneIndex(where, tuple(genes))


@dataclass(frozen=True)
class IndexMap:
    """Where an experiment's genes go in the vectors: `target[i]` is the vector position of
    the experiment's gene i (-1: outside the declared index); `missing` the positions no
    experiment gene fills."""

    index: GeneIndex
    declared: bool
    target: np.ndarray
    missing: np.ndarray
    outside: int

    @classmethod
    def build(cls, genes: GeneIndex, declared: GeneIndex | None) -> IndexMap:
        if declared is None:
            n = len(genes.ids)
            return cls(genes, False, np.arange(n), np.empty(0, np.int64), 0)
        target = np.array([declared.position.get(g, -1) for g in genes.ids], dtype=np.int64)
        filled = np.zeros(len(declared.ids), bool)
        filled[target[target >= 0]] = True
        return cls(declared, True, target, np.flatnonzero(~filled).astype(np.int64),
                   int((target < 0).sum()))

    def descriptor(self, units: str) -> dict[str, Any]:
        return {"feature_ids": None if self.declared else list(self.index.ids),
                "feature_index": self.index.descriptor(), "units": units}

    def dense(self, values: np.ndarray, units: str) -> Payload:
        """A dense float32 vector from the experiment's values (one per experiment gene)."""
        out = np.full(len(self.index.ids), np.nan, dtype=np.float32)
        keep = self.target >= 0
        out[self.target[keep]] = values[keep]
        return Payload("vector", out, self.descriptor(units))

    def sparse(self, gene_rows: np.ndarray, values: np.ndarray, units: str) -> Payload:
        """A sparse vector from the experiment's non-zero entries (gene row, value)."""
        pos = self.target[gene_rows]
        keep = (pos >= 0) & (values != 0)
        order = np.argsort(pos[keep], kind="stable")
        data = {"length": len(self.index.ids), "indices": pos[keep][order],
                "values": values[keep][order].astype(np.float32), "missing": self.missing}
        return Payload("vector", data, self.descriptor(units))

    def meta(self) -> dict[str, Any]:
        return {"genes_measured": int(len(self.target) - self.outside),
                "genes_outside_index": self.outside}


def open_text(path: Path, rel: str):
    """A text stream over `path`, gunzipped when the name ends in `.gz`."""
    import gzip

    if rel.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


# what a damaged file raises while it is read: truncated gzip, bad bytes, bad numbers
READ_ERRORS = (EOFError, OSError, UnicodeDecodeError, ValueError)


def read_text(path: Path, rel: str) -> str:
    """All of a (possibly gzipped) text file; a truncated or undecodable file is a
    RecordError naming it."""
    try:
        with open_text(path, rel) as f:
            return f.read()
    except FileNotFoundError:
        raise RecordError(f"missing file {rel}") from None
    except READ_ERRORS as exc:
        raise RecordError(f"{rel} cannot be read ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'damaged'}); "
                          "download it again") from None


def parse_float(text: str, where: str) -> float:
    """A value cell: a number, or empty / NA / null (-> NaN: not measured)."""
    t = text.strip()
    if t in ("", "NA", "NaN", "nan", "null", "NULL"):
        return float("nan")
    try:
        return float(t)
    except ValueError:
        raise RecordError(f"{where}: {t[:30]!r} is not a number") from None
