"""Single Cell Expression Atlas (EMBL-EBI): normalised single-cell expression, one sample per cell.

Raw layout (per experiment, any folder under the root; experiment page, Downloads tab):
    https://www.ebi.ac.uk/gxa/sc/experiments/<accession>/downloads

    <acc>.aggregated_filtered_normalised_counts.mtx[.gz]   MatrixMarket coordinate matrix,
                                                           genes x cells (the "normalised
                                                           counts" zip, fileType=normalised)
    <acc>.aggregated_filtered_normalised_counts.mtx_rows   one line per matrix row: the
                                                           Ensembl gene id (tab, the id again)
    <acc>.aggregated_filtered_normalised_counts.mtx_cols   one line per matrix column: cell id
    ExpDesign-<acc>.tsv                                    experiment design, one row per cell:
                                                           `Assay` (the cell id), then
                                                           `Sample Characteristic[...]`,
                                                           `Factor Value[...]` columns (with
                                                           their `... Ontology Term[...]`)

Facts and where they came from: the file names and the normalised-files zip and
experiment-design downloads (`fileType=normalised`, `fileType=experiment-design`): the
Atlas download URLs as third-party loaders use them (searched public code: an R script
fetching `{EMTAB}.aggregated_filtered_normalised_counts.mtx.gz` from
`/gxa/sc/experiment/{EMTAB}/download/zip?fileType=normalised`, and Galaxy's "Importing
files from public atlases" tutorial); genes x cells orientation and `_rows`/`_cols`
naming: the MatrixMarket triplet those loaders read with `readMM`. Unconfirmed here (no
network): the exact design column names of every experiment; the cell type is taken
from the first of `CELL_TYPE_COLUMNS` present, and the column used is recorded.

What `load` yields: one sample per cell of the matrix that has a design row: a sparse
vector (`expression`, see `medshard.sources.omics.expression`) of its non-zero
normalised values (units "normalised counts", the Atlas's CPM), the cell type verbatim
in `source_labels` (`cell_type`, its ontology term, the column it came from). MultiMed's
task is cell-type classification, but the Atlas's cell types are open-ended (hundreds of
free-text names across experiments): they stay in `source_labels`, and the source has no
unified classes (label space empty) until a vocabulary of cell types is agreed.
Split unit: the experiment (its accession is the record's subject), so no experiment's
cells straddle train and test. Bad records: a matrix with an index outside its declared
size or a count of entries other than its header's, a truncated gzip, row / column files
that disagree with the matrix (the experiment is quarantined); a cell with no design row
(quarantined at listing, the other cells go on). Memory: the matrix is parsed from the
(gunzipped) stream 65,536 entries at a time into arrays preallocated at its declared
size (int32 row, int32 column, float32 value: 12 bytes per entry), then ordered by cell
one array at a time; the text is never held. Measured (`benchmarks/expression_storage.py`):
the traced peak grows by 16.3 bytes per matrix entry (at most 24 by construction: a
100-million-entry experiment needs ~1.6-2.4 GB), plus a few MB for the chunk parsed.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, TextIO

import numpy as np

from medshard.schemas import BadRow, License, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source
from medshard.sources.omics.expression import (
    ExpressionOptions,
    GeneIndex,
    IndexMap,
    experiment_genes,
    open_text,
    read_gene_index,
    read_text,
)

MTX_STEM = ".aggregated_filtered_normalised_counts.mtx"
MTX_CHUNK = 1 << 16  # entries parsed at a time (the chunk's text costs ~100 bytes an entry)
# design columns holding the cell type, in order of preference (curated before authors')
CELL_TYPE_COLUMNS = (
    "Factor Value[inferred cell type - ontology labels]",
    "Factor Value[inferred cell type - authors labels]",
    "Sample Characteristic[cell type]",
    "Factor Value[cell type]",
)
# design columns that may leave the source (no donor identities, no free text)
DESIGN_ALLOWED = ("Sample Characteristic[organism]", "Sample Characteristic[organism part]",
                  "Sample Characteristic[disease]", "Sample Characteristic[sex]")


def _accession(name: str) -> str:
    return name.split(MTX_STEM)[0]


def parse_mtx(stream: TextIO, rel: str, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """(rows, cols, values) 0-based of a MatrixMarket coordinate stream, checked against
    its header and against `shape` (genes, cells from the row and column files). The
    entries are parsed straight from the stream (no copy of the text is held)."""
    first = stream.readline()
    if not first.startswith("%%MatrixMarket matrix coordinate"):
        raise RecordError(f"{rel}: not a MatrixMarket coordinate matrix")
    field = first.split()[3] if len(first.split()) > 3 else ""
    if field not in ("real", "integer"):
        raise RecordError(f"{rel}: MatrixMarket field {field!r}; expected real or integer")
    line = stream.readline()
    while line.startswith("%"):
        line = stream.readline()
    try:
        n_rows, n_cols, nnz = (int(x) for x in line.split())
    except ValueError:
        raise RecordError(f"{rel}: the size line is not 'rows columns entries'") from None
    if (n_rows, n_cols) != shape:
        raise RecordError(f"{rel} is {n_rows} x {n_cols} but its row and column files list "
                          f"{shape[0]} genes and {shape[1]} cells")
    if not 0 <= nnz <= n_rows * n_cols:
        raise RecordError(f"{rel}: header declares {nnz} entries for a {n_rows} x {n_cols} "
                          "matrix")
    # preallocated at the declared size, filled chunk by chunk: 12 bytes per entry
    rows, cols = np.empty(nnz, np.int32), np.empty(nnz, np.int32)
    values = np.empty(nnz, np.float32)
    done = 0
    while True:
        chunk = list(itertools.islice(stream, MTX_CHUNK))
        if not chunk:
            break
        try:
            part = np.loadtxt(chunk, dtype=np.float64, ndmin=2)
        except ValueError as exc:
            raise RecordError(f"{rel}: malformed entry ({str(exc).splitlines()[0]})") from None
        if part.shape[1] != 3 or done + len(part) > nnz:
            raise RecordError(f"{rel}: more entries than the {nnz} its header declares, or "
                              "an entry without row, column and value")
        r, c = part[:, 0].astype(np.int64) - 1, part[:, 1].astype(np.int64) - 1
        bad = (r < 0) | (r >= n_rows) | (c < 0) | (c >= n_cols)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RecordError(f"{rel}: entry {done + i + 1} is at ({r[i] + 1}, {c[i] + 1}), "
                              f"outside the declared {n_rows} x {n_cols} matrix")
        rows[done:done + len(part)], cols[done:done + len(part)] = r, c
        values[done:done + len(part)] = part[:, 2]
        done += len(part)
    if done != nnz:
        raise RecordError(f"{rel}: header declares {nnz} entries, the file holds {done} "
                          "(truncated?)")
    return rows, cols, values


def read_mtx(path: Path, rel: str, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """`parse_mtx` over a (possibly gzipped) file; a truncated or undecodable file is a
    RecordError naming it."""
    try:
        with open_text(path, rel) as stream:
            return parse_mtx(stream, rel, shape)
    except (EOFError, OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"{rel} cannot be read ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'damaged'}); "
                          "download it again") from None


def read_design(text: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """(header, cell id -> row) of an ExpDesign TSV."""
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    header = next(reader, [])
    rows = {}
    for row in reader:
        if row:
            rows[row[0]] = dict(zip(header, row, strict=False))
    return header, rows


class ScExpressionAtlas(Source):
    payload_members = ("expression.npz",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="expression-atlas-scrna",
        title="Single Cell Expression Atlas: normalised single-cell RNA-seq with cell types",
        version="release of the download (per experiment)",
        modality="omics",
        tasks=["cell-type classification", "expression prediction"],
        license=License(name="EMBL-EBI terms of use", url="https://www.ebi.ac.uk/about/terms-of-use",
                        terms_version="EMBL-EBI terms of use as published"),
        access="open",
        homepage="https://www.ebi.ac.uk/gxa/sc/home",
        citation="Moreno P, et al. Expression Atlas update: gene and protein expression in "
        "multiple species. Nucleic Acids Res 2022;50(D1):D129-D140; MultiMed cites "
        "Papatheodorou I, et al. NAR 2020.",
        label_space=[],
        split_policy="no official split: keyed hash of the experiment accession (all of an "
        "experiment's cells in one split)",
        split_unit="experiment",
        published_counts=PublishedCounts(
            train=None, test=None, unit="cells",
            reference="MultiMed: 270,000 samples in all, no split or experiment list given"),
        release_notes={"0.1.0": "first medshard adapter: one sparse vector per cell"},
    )
    Options = ExpressionOptions
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://www.ebi.ac.uk/gxa/sc/experiments",
        steps=[
            "Open each experiment you want (e.g. E-MTAB-5061) and its Downloads tab.",
            "Download 'Normalised counts files (MatrixMarket archive)' and unzip it, and "
            "download the 'Experiment design file' (ExpDesign-<accession>.tsv).",
            "Put each experiment's four files together in one folder under the folder named "
            "below (one folder per experiment).",
        ],
    ))
    fixture: ClassVar[str | None] = "medshard.sources.omics.scxa_fixture:FIXTURE"

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not any(root.rglob(f"*{MTX_STEM}*")):
            raise MissingRawData(f"{self.info.name}: no *{MTX_STEM}[.gz] under {root}; unzip "
                                 "each experiment's normalised counts files there")

    def label_files(self, root: Path) -> list[str]:
        return [self._options["gene_index"]] if self._options["gene_index"] else []

    def _declared(self, root: Path) -> GeneIndex | None:
        rel = self._options["gene_index"]
        return None if rel is None else read_gene_index(self.path(root, rel), rel)

    def _experiments(self, root: Path) -> list[tuple[str, str]]:
        """(accession, matrix path relative to root), sorted."""
        found = []
        for p in sorted(root.rglob(f"*{MTX_STEM}*")):
            if p.name.endswith(("_rows", "_cols")):
                continue
            found.append((_accession(p.name), p.relative_to(root).as_posix()))
        return found

    def _cells(self, root: Path, mtx: str, acc: str) -> tuple[list[str], str, str]:
        base = mtx[: mtx.index(MTX_STEM) + len(MTX_STEM)]
        folder = mtx.rsplit("/", 1)[0] + "/" if "/" in mtx else ""
        cols = read_text(self.path(root, base + "_cols"), base + "_cols").split()
        return cols, base, f"{folder}ExpDesign-{acc}.tsv"

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per experiment; a cell without a design row is a BadRow."""
        self.check_root(root)
        for acc, mtx in self._experiments(root):
            try:
                cols, base, design_rel = self._cells(root, mtx, acc)
                _, design = read_design(read_text(self.path(root, design_rel), design_rel))
            except RecordError as exc:
                yield BadRow(mtx, 0, str(exc), "RecordError")
                continue
            for i, cell in enumerate(cols):
                if cell not in design:
                    yield BadRow(base + "_cols", i + 1, f"cell {cell} has no row in "
                                 f"{design_rel.rsplit('/', 1)[-1]}", "KeyError")
            yield RawRecord(
                record_id=acc.replace(".", "-"), subject_id=acc,
                files=[mtx, base + "_rows"],
                size_bytes=(root / mtx).stat().st_size,
                meta={"experiment": acc},
            )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        """One sample per designed cell (see the module docstring)."""
        acc = record.meta["experiment"]
        mtx, rows_rel = record.files
        cols, _, design_rel = self._cells(root, mtx, acc)
        header, design = read_design(read_text(self.path(root, design_rel), design_rel))
        gene_lines = read_text(self.path(root, rows_rel), rows_rel).splitlines()
        genes = experiment_genes([line.split("\t")[0] for line in gene_lines if line], rows_rel)
        rows, cols_idx, values = read_mtx(self.path(root, mtx), mtx, (len(genes.ids), len(cols)))
        index = IndexMap.build(genes, self._declared(root))
        type_col = next((c for c in CELL_TYPE_COLUMNS if c in header), None)
        term_col = type_col.replace("[", " Ontology Term[", 1) if type_col else None
        # entries grouped by cell (IndexMap sorts within one), one array at a time so that
        # the peak is the entries (12 bytes), the order (8) and one reordered copy (4)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(cols_idx, minlength=len(cols)))])
        order = np.argsort(cols_idx, kind="stable")
        del cols_idx
        rows = rows[order]
        values = values[order]
        del order
        for j, cell in enumerate(cols):
            row = design.get(cell)
            if row is None:
                continue  # quarantined at listing
            lo, hi = bounds[j], bounds[j + 1]
            payload = index.sparse(rows[lo:hi], values[lo:hi], "normalised counts")
            cell_type = (row.get(type_col) or None) if type_col else None
            yield Sample(
                key_suffix=f"c{j + 1:06d}",
                classes=[],
                source_labels={"cell_type": cell_type,
                               "cell_type_term": (row.get(term_col) or None) if term_col else None,
                               "cell_type_column": type_col},
                payloads={"expression": payload},
                meta={"experiment": acc, "cell_id": cell, "matrix_column": j + 1,
                      "n_nonzero": int(hi - lo), **index.meta(),
                      **{_meta_name(c): (row.get(c) or None) for c in DESIGN_ALLOWED}},
                task="cell-type classification",
            )


def _meta_name(column: str) -> str:
    return column.split("[", 1)[1].rstrip("]").replace(" ", "_")
