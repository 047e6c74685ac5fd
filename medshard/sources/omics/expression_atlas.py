"""Expression Atlas (EMBL-EBI), baseline RNA-seq experiments: one expression profile per assay group.

Raw layout (one folder per experiment, as https://www.ebi.ac.uk/gxa/download points to):
    ftp.ebi.ac.uk/pub/databases/microarray/data/atlas/experiments/<acc>/

    <acc>/<acc>-tpms.tsv               `Gene ID`, `Gene Name`, then one column per assay
    <acc>/<acc>-fpkms.tsv              group (`g1`, `g2`, ...); a cell is one number or, in
                                       later releases, five comma-separated quantiles
                                       over the group's replicates (min, lower quartile,
                                       median, upper quartile, max)
    <acc>/<acc>-configuration.xml      <assay_group id="g1" label="..."> with the
                                       <assay> (run) ids of each group
    <acc>/<acc>.condensed-sdrf.tsv     the design, no header: experiment, array design,
                                       assay, `characteristic` | `factor`, property name,
                                       property value, ontology term

Facts and where they came from: the file names and the experiment-folder layout: CLIMB's
loader (`DDVD233/CLIMB:src/datasets/genom/expression_atlas.py` reads `<acc>-tpms.tsv`,
`-fpkms.tsv`, `.condensed-sdrf.tsv`, `-configuration.xml` from `experiments/E-*`);
configuration assay groups of assays: the Atlas's own tools
(`ebi-gene-expression-group` AtlasConfig reader, assay group -> biological replicates ->
assays); the condensed SDRF's seven columns: the Atlas's `condense_sdrf.pl` (characteristics
and factor values per assay). The quantile cells: Atlas baseline downloads since 2018
(not re-checked here: without network); a quantile cell gives its median.
Not supported: microarray experiments (`_A-AFFY-*-normalized-expressions.tsv`, probe
rows) and differential experiments (`-analytics.tsv`), which CLIMB's loader also reads
but which hold no per-condition profile over genes.

What `load` yields: one sample per assay group of `-tpms.tsv` (the `values` option:
or `-fpkms.tsv`), a dense float32 vector over the gene index (see
`medshard.sources.omics.expression`; units TPM or FPKM), the group's label, its factor
values verbatim in `source_labels` and its characteristics in `meta`, both only for
the property names in `PROPERTIES_ALLOWED` (no donor ids: `individual` never leaves).
CLIMB marks Expression Atlas "Not classification" and counts 4,506 records (its
loader's item is an experiment); medshard yields assay-group profiles, so counts differ
by design. Split unit: the experiment
(never one experiment's groups on both sides). Bad records: a malformed TSV row (other
than one value per group), a value that is not a number, a repeated gene (the experiment
is quarantined); an assay group with no design entry (no assay in the condensed SDRF),
quarantined at listing while the others go on.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from medshard.schemas import BadRow, License, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source
from medshard.sources.omics.expression import (
    ExpressionOptions,
    GeneIndex,
    IndexMap,
    experiment_genes,
    parse_float,
    read_gene_index,
    read_text,
)

UNITS = {"tpms": "TPM", "fpkms": "FPKM"}
# characteristic / factor names that may leave the source: no donor ids ("individual"),
# no free-text descriptions
PROPERTIES_ALLOWED = frozenset({
    "organism", "organism part", "cell type", "disease", "sex", "developmental stage",
    "strain", "genotype", "cell line", "compound", "dose", "time", "infect", "treatment",
    "phenotype",
})


class ExpressionAtlasOptions(ExpressionOptions):
    values: Literal["tpms", "fpkms"] = Field(
        "tpms", description="which baseline file: <acc>-tpms.tsv (TPM) or <acc>-fpkms.tsv")


def parse_value(cell: str, where: str) -> float:
    """One cell: a number, or five comma-separated quantiles (-> their median)."""
    parts = cell.split(",")
    if len(parts) == 5:
        return parse_float(parts[2], where)
    if len(parts) != 1:
        raise RecordError(f"{where}: {cell[:40]!r} is neither a value nor five quantiles")
    return parse_float(cell, where)


def read_matrix(text: str, rel: str) -> tuple[list[str], list[str], np.ndarray]:
    """(gene ids, group columns, genes x groups float64) of a baseline TSV."""
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    header = next(reader, None)
    if not header or header[:2] != ["Gene ID", "Gene Name"]:
        raise RecordError(f"{rel}: header does not start with 'Gene ID', 'Gene Name'")
    groups = header[2:]
    genes, rows = [], []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise RecordError(f"{rel} line {line}: {len(row)} fields, the header has "
                              f"{len(header)}")
        genes.append(row[0])
        rows.append([parse_value(c, f"{rel} line {line}") for c in row[2:]])
    return genes, groups, np.asarray(rows, dtype=np.float64).reshape(len(rows), len(groups))


def read_configuration(text: str, rel: str) -> dict[str, tuple[str, list[str]]]:
    """assay group id -> (label, assay ids) of a configuration.xml."""
    try:
        tree = ET.fromstring(text)
    except ET.ParseError as exc:
        raise RecordError(f"{rel}: not well-formed XML ({exc})") from None
    return {g.get("id", ""): (g.get("label", ""), [a.text.strip() for a in g.iter("assay")
                                                   if a.text])
            for g in tree.iter("assay_group")}


def read_condensed_sdrf(text: str) -> dict[str, list[dict[str, str]]]:
    """assay -> its [{kind, name, value, term}] rows of a condensed SDRF."""
    out: dict[str, list[dict[str, str]]] = {}
    for row in csv.reader(io.StringIO(text), delimiter="\t"):
        if len(row) < 6:
            continue
        out.setdefault(row[2], []).append({"kind": row[3], "name": row[4], "value": row[5],
                                           "term": row[6] if len(row) > 6 else ""})
    return out


class ExpressionAtlas(Source):
    payload_members = ("expression.npy",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="expression-atlas",
        title="Expression Atlas: baseline RNA-seq expression per condition",
        version="Atlas release of the download (per experiment)",
        modality="omics",
        tasks=["expression profiling (not classification)"],
        license=License(name="EMBL-EBI terms of use; CLIMB lists CC BY-NC-ND 4.0",
                        url="https://www.ebi.ac.uk/about/terms-of-use",
                        terms_version="EMBL-EBI terms of use as published"),
        access="open",
        homepage="https://www.ebi.ac.uk/gxa/download",
        citation="Moreno P, et al. Expression Atlas update: gene and protein expression in "
        "multiple species. Nucleic Acids Res 2022;50(D1):D129-D140.",
        label_space=[],
        split_policy="no official split: keyed hash of the experiment accession",
        split_unit="experiment",
        published_counts=PublishedCounts(
            train=3605, test=901, unit="records",
            reference="CLIMB A.2 (3,605 / 901; CLIMB's record is an experiment, medshard's "
            "sample an assay group: counts differ by design)"),
        release_notes={"0.1.0": "first medshard adapter: baseline RNA-seq assay groups"},
    )
    Options = ExpressionAtlasOptions
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://www.ebi.ac.uk/gxa/download",
        steps=[
            "From ftp.ebi.ac.uk/pub/databases/microarray/data/atlas/experiments/ copy each "
            "baseline RNA-seq experiment folder you want (E-MTAB-..., E-GEOD-...).",
            "Each folder needs <acc>-tpms.tsv (or -fpkms.tsv), <acc>-configuration.xml and "
            "<acc>.condensed-sdrf.tsv; put the folders under the folder named below.",
        ],
    ))
    fixture: ClassVar[str | None] = "medshard.sources.omics.expression_atlas_fixture:FIXTURE"

    def _suffix(self) -> str:
        return f"-{self._options['values']}.tsv"

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not any(root.rglob(f"E-*{self._suffix()}")):
            raise MissingRawData(f"{self.info.name}: no E-*{self._suffix()} under {root}; copy "
                                 "the Atlas experiment folders there")

    def label_files(self, root: Path) -> list[str]:
        return [self._options["gene_index"]] if self._options["gene_index"] else []

    def _declared(self, root: Path) -> GeneIndex | None:
        rel = self._options["gene_index"]
        return None if rel is None else read_gene_index(self.path(root, rel), rel)

    def _design(self, root: Path, folder: str, acc: str):
        conf_rel, sdrf_rel = f"{folder}{acc}-configuration.xml", f"{folder}{acc}.condensed-sdrf.tsv"
        groups = read_configuration(read_text(self.path(root, conf_rel), conf_rel), conf_rel)
        sdrf = read_condensed_sdrf(read_text(self.path(root, sdrf_rel), sdrf_rel))
        return groups, sdrf, conf_rel

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per experiment (reads only the design files); an assay group of the
        configuration whose assays the condensed SDRF does not describe is a BadRow."""
        self.check_root(root)
        for path in sorted(root.rglob(f"E-*{self._suffix()}")):
            rel = path.relative_to(root).as_posix()
            acc = path.name[: -len(self._suffix())]
            folder = rel[: -len(path.name)]
            try:
                groups, sdrf, conf_rel = self._design(root, folder, acc)
            except RecordError as exc:
                yield BadRow(rel, 0, str(exc), "RecordError")
                continue
            described = []
            for number, (group, (_, assays)) in enumerate(groups.items(), start=1):
                if not any(a in sdrf for a in assays):  # entry number: the group's place
                    yield BadRow(conf_rel, number, f"assay group {group} has no design entry: "
                                 "none of its assays is in the condensed SDRF", "KeyError")
                    continue
                described.append(group)
            yield RawRecord(record_id=acc.replace(".", "-"), subject_id=acc, files=[rel],
                            size_bytes=path.stat().st_size,
                            meta={"experiment": acc, "groups": described})

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        """One sample per described assay group (see the module docstring)."""
        acc, rel = record.meta["experiment"], record.files[0]
        folder = rel[: -len(f"{acc}{self._suffix()}")]
        groups, sdrf, _ = self._design(root, folder, acc)
        genes, columns, matrix = read_matrix(read_text(self.path(root, rel), rel), rel)
        index = IndexMap.build(experiment_genes(genes, rel), self._declared(root))
        units = UNITS[self._options["values"]]
        absent = sorted(set(record.meta["groups"]) - set(columns))
        if absent:
            raise RecordError(f"{rel} has no column for assay group(s) {', '.join(absent)} of "
                              "the configuration")
        for group in record.meta["groups"]:
            label, assays = groups[group]
            rows = [r for a in assays for r in sdrf.get(a, [])]
            factors = _properties(rows, "factor")
            yield Sample(
                key_suffix=group,
                classes=[],
                source_labels={"assay_group": group, "label": label or None,
                               "factors": factors},
                payloads={"expression": index.dense(matrix[:, columns.index(group)], units)},
                meta={"experiment": acc, "assays": assays, "n_assays": len(assays),
                      "characteristics": _properties(rows, "characteristic"),
                      **index.meta()},
                task="expression profiling",
            )


def _properties(rows: list[dict[str, str]], kind: str) -> list[dict[str, Any]]:
    """Distinct {name, value, term} of one kind, sorted (one list shape in every sample)."""
    seen = {(r["name"], r["value"], r["term"] or None) for r in rows
            if r["kind"] == kind and r["name"].lower() in PROPERTIES_ALLOWED}
    return [{"name": n, "value": v, "term": t} for n, v, t in sorted(seen, key=str)]
