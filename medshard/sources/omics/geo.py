"""GEO (NCBI Gene Expression Omnibus) series and DataSets: one expression profile per GEO sample (GSM).

Raw layout (any folder under the root):
    https://ftp.ncbi.nlm.nih.gov/geo/series/GSEnnn/GSExxxxx/matrix/
    https://ftp.ncbi.nlm.nih.gov/geo/datasets/GDSnnn/GDSxxxx/soft/

    GSExxxxx_series_matrix.txt[.gz]            one platform; `GSExxxxx-GPLyyy_series_...`
                                               when a series spans several platforms
        !Series_geo_accession  "GSExxxxx"      series header lines (`!Series_*`)
        !Sample_geo_accession  "GSM1" "GSM2"   one value per sample (`!Sample_*`), the
        !Sample_characteristics_ch1 "cell type: B" ...   characteristics as "key: value"
        !Sample_platform_id    "GPLyyy" ...    (repeated lines, one per key)
        !series_matrix_table_begin
        "ID_REF"  "GSM1"  "GSM2"               probe (or gene) ids x samples, tab-separated
        ...
        !series_matrix_table_end
    GDSxxxx[_full].soft[.gz]                   a curated DataSet (geo/datasets/GDSnnn/
        ^DATASET = GDSxxxx                     GDSxxxx/soft/): `!dataset_platform`,
        !dataset_reference_series = GSExxxxx   `!dataset_reference_series`, then one
        ^SUBSET = GDSxxxx_1                    `^SUBSET` per value of each experimental
        !subset_description = B cell           variable (`!subset_type`: cell type,
        !subset_sample_id = GSM1,GSM2          disease state, agent, ...) listing its
        !subset_type = cell type               samples; the table `ID_REF`, `IDENTIFIER`,
        !dataset_table_begin ... _end          the GSM columns (`_full` adds annotation
                                               columns after them)
    GPLyyy.txt[.gz]                            the platform's full annotation table (GEO's
                                               "Download full table" of the GPL page):
                                               `#` comment lines, then a header with `ID`
                                               and an Ensembl gene column

Facts and where they came from: the series-matrix structure (`!Series_`/`!Sample_`
header lines, `!series_matrix_table_begin`/`_end`, quoted `ID_REF` header, one column per
GSM, `key: value` characteristics): GEO's download documentation
(https://www.ncbi.nlm.nih.gov/geo/info/download.html) and GEOparse's reader of the same
files. CLIMB reads GEO through GEOparse, from the DataSets (GDS SOFT, under
`ftp.ncbi.nlm.nih.gov/geo/datasets/GDS*`; `DDVD233/CLIMB:src/datasets/genom/geo.py`),
whose sample columns are the subsets' types, and takes a label from the first of
`cell type`, `strain`, `disease state`, `genotype/variation`, `tissue`, `agent`
(`LABEL_FIELDS`, followed here for both formats). The GDS blocks (`^SUBSET`,
`!subset_sample_id`, `!subset_type`, `!dataset_table_begin`): GEO's SOFT documentation
and the GDS readers of GEOparse and Orange's bioinformatics add-on. Unconfirmed (no
network here): the name of the Ensembl column in each platform table; `ENSEMBL_COLUMNS`
lists those tried, and a probe table without one is a broken record naming the fix.

Probes to genes: an `ID_REF` that is itself an Ensembl gene id (RNA-seq series) is used
as is; otherwise the platform table maps it. A probe mapping to several genes
(`ENSG.. /// ENSG..`) or to none is dropped; several probes of one gene are averaged
(mean of the probes' values, NaN ignored). Counts of probes used, dropped as ambiguous
and unmapped go in each sample's meta. Values are what the submitter deposited (often
log2 intensities), units "as deposited (series matrix VALUE)"; no renormalization.

What `load` yields: one sample per GSM column, a dense float32 vector over the gene
index (`medshard.sources.omics.expression`), NaN where a value is null. Labels: CLIMB
marks GEO "Not classification"; the characteristics whose keys are in
`CHARACTERISTICS_ALLOWED` go verbatim into `source_labels` (a list of {key, value}),
with `label_field` / `label` the first of `LABEL_FIELDS` present. PHI: nothing else of
the header leaves the source (sample titles, descriptions, contact names and free-text
characteristics such as donor notes are dropped). Split unit: the series (its GSE); a
GDS is keyed by the series it was made from (`!dataset_reference_series`, else its own
id), so a DataSet and its series matrix land in the same split.
Bad records: a truncated gzip, a table row with the wrong number of fields, a value
that is not a number, no table, a probe platform without an annotation table.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from medshard.schemas import License, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source
from medshard.sources.omics.expression import (
    READ_ERRORS,
    ExpressionOptions,
    GeneIndex,
    IndexMap,
    ensembl_gene,
    open_text,
    parse_float,
    read_gene_index,
    read_text,
)

_MATRIX = re.compile(r"^(GSE\d+)(?:-(GPL\d+))?_series_matrix\.txt(\.gz)?$")
_GDS = re.compile(r"^(GDS\d+)(?:_full)?\.soft(\.gz)?$")
LABEL_FIELDS = ("cell type", "strain", "disease state", "genotype/variation", "tissue", "agent")
CHARACTERISTICS_ALLOWED = frozenset({
    *LABEL_FIELDS, "genotype", "cell line", "treatment", "sex", "gender", "development stage",
    "developmental stage", "organism part", "time",
})
ENSEMBL_COLUMNS = ("ENSEMBL_ID", "Ensembl", "ENSEMBL", "Ensembl_ID", "ensembl_gene_id",
                   "Ensembl Gene ID")


def _unquote(value: str) -> str:
    v = value.strip()
    return v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v


def parse_series_matrix(text: str, rel: str) -> tuple[dict[str, list[list[str]]], list[str],
                                                       list[str], np.ndarray]:
    """(header: tag -> its lines' values, sample columns, ID_REFs, ids x samples float64)."""
    header: dict[str, list[list[str]]] = {}
    lines = text.splitlines()
    try:
        begin = lines.index("!series_matrix_table_begin")
    except ValueError:
        raise RecordError(f"{rel}: no !series_matrix_table_begin line (not a series "
                          "matrix, or cut short)") from None
    for line in lines[:begin]:
        if line.startswith("!"):
            tag, *values = line.split("\t")
            header.setdefault(tag, []).append([_unquote(v) for v in values])
    if "!series_matrix_table_end" not in lines[begin:]:
        raise RecordError(f"{rel}: no !series_matrix_table_end line (file cut short?)")
    end = lines.index("!series_matrix_table_end", begin)
    rows = list(csv.reader(io.StringIO("\n".join(lines[begin + 1:end])), delimiter="\t"))
    if not rows or not rows[0] or _unquote(rows[0][0]) != "ID_REF":
        raise RecordError(f"{rel}: the table does not start with an ID_REF header")
    samples = [_unquote(c) for c in rows[0][1:]]
    ids, values = [], []
    for n, row in enumerate(rows[1:], start=begin + 3):
        if len(row) != len(rows[0]):
            raise RecordError(f"{rel} line {n}: {len(row)} fields, the header has {len(rows[0])}")
        ids.append(_unquote(row[0]))
        values.append([parse_float(_unquote(c), f"{rel} line {n}") for c in row[1:]])
    return header, samples, ids, np.asarray(values, np.float64).reshape(len(ids), len(samples))


@dataclass(frozen=True)
class ProbeTable:
    """What either file format gives: samples, probe ids x samples values, and per sample
    its (key, value) characteristics; the platform and organism of the table."""

    samples: list[str]
    ids: list[str]
    values: np.ndarray
    characteristics: list[list[tuple[str, str]]]
    platform: str
    organism: str | None


def series_profiles(text: str, rel: str) -> ProbeTable:
    """A series matrix as a ProbeTable (characteristics from `key: value` lines)."""
    header, samples, ids, values = parse_series_matrix(text, rel)
    if (header.get("!Sample_geo_accession") or [[]])[0] != samples:
        raise RecordError(f"{rel}: the table's sample columns differ from "
                          "!Sample_geo_accession")
    platforms = (header.get("!Sample_platform_id") or [[""]])[0]
    if len(set(platforms)) > 1:
        raise RecordError(f"{rel} mixes platforms {sorted(set(platforms))}; GEO splits such "
                          "series into one matrix per platform")
    chars: list[list[tuple[str, str]]] = [[] for _ in samples]
    for line in header.get("!Sample_characteristics_ch1", []):
        for j, cell in enumerate(line[: len(samples)]):
            key, sep, value = cell.partition(":")
            if sep:
                chars[j].append((key.strip().lower(), value.strip()))
    organisms = sorted(set((header.get("!Sample_organism_ch1") or [[]])[0]))
    return ProbeTable(samples, ids, values, chars, platforms[0] if platforms else "",
                      "; ".join(organisms) or None)


def parse_gds(text: str, rel: str) -> ProbeTable:
    """A GDS SOFT file (`^DATASET`, `^SUBSET` blocks, `!dataset_table_begin`): the GSM
    columns of its table, each sample's subsets as (subset type, description)."""
    lines = text.splitlines()
    try:
        begin = lines.index("!dataset_table_begin")
        end = lines.index("!dataset_table_end", begin)
    except ValueError:
        raise RecordError(f"{rel}: no complete !dataset_table_begin ... _end block (not a "
                          "GDS SOFT file, or cut short)") from None
    attrs: dict[str, str] = {}
    subsets: list[dict[str, str]] = []
    for line in lines[:begin]:
        if line.startswith("^SUBSET"):
            subsets.append({})
        elif line.startswith("!"):
            key, _, value = line[1:].partition("=")
            (subsets[-1] if subsets and key.startswith("subset_") else attrs)[key.strip()] = \
                value.strip()
    rows = list(csv.reader(io.StringIO("\n".join(lines[begin + 1:end])), delimiter="\t"))
    if not rows or rows[0][:2] != ["ID_REF", "IDENTIFIER"]:
        raise RecordError(f"{rel}: the table does not start with ID_REF, IDENTIFIER")
    cols = [j for j, c in enumerate(rows[0]) if re.fullmatch(r"GSM\d+", c)]
    samples = [rows[0][j] for j in cols]
    ids, values = [], []
    for n, row in enumerate(rows[1:], start=begin + 3):
        if len(row) != len(rows[0]):
            raise RecordError(f"{rel} line {n}: {len(row)} fields, the header has {len(rows[0])}")
        ids.append(row[0])
        values.append([parse_float(row[j], f"{rel} line {n}") for j in cols])
    chars: list[list[tuple[str, str]]] = [[] for _ in samples]
    for sub in subsets:
        members = {m.strip() for m in sub.get("subset_sample_id", "").split(",")}
        for j, gsm in enumerate(samples):
            if gsm in members:
                chars[j].append((sub.get("subset_type", "").lower(),
                                 sub.get("subset_description", "")))
    return ProbeTable(samples, ids, np.asarray(values, np.float64).reshape(len(ids), len(cols)),
                      chars, attrs.get("dataset_platform", ""),
                      attrs.get("dataset_platform_organism") or None)


def read_platform(text: str, rel: str) -> dict[str, str]:
    """probe ID -> its Ensembl column's text, from a GPL full table."""
    lines = [ln for ln in text.splitlines() if not ln.startswith(("#", "!", "^"))]
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter="\t")
    head = next(reader, [])
    column = next((c for c in ENSEMBL_COLUMNS if c in head), None)
    if "ID" not in head or column is None:
        raise RecordError(f"{rel} has no ID and Ensembl column (tried {', '.join(ENSEMBL_COLUMNS)}"
                          "); use a platform table with Ensembl gene ids")
    i, j = head.index("ID"), head.index(column)
    return {row[i]: (row[j] if j < len(row) else "") for row in reader if len(row) > i}


def probes_to_genes(ids: list[str], platform: dict[str, str] | None, rel: str
                    ) -> tuple[list[str], list[list[int]], dict[str, int]]:
    """(genes in first-seen order, the probe rows of each gene, probe counts)."""
    genes: dict[str, list[int]] = {}
    counts = {"probes": len(ids), "probes_used": 0, "probes_ambiguous": 0, "probes_unmapped": 0}
    for row, probe in enumerate(ids):
        direct = ensembl_gene(probe)
        if direct is not None:
            targets = [direct]
        elif platform is None:
            raise RecordError(f"{rel}: ID_REF {probe[:30]!r} is a probe id and no platform "
                              "table is present; download the GPL full table next to it")
        else:
            field = platform.get(probe, "")
            targets = sorted({g for g in (ensembl_gene(t) for t in re.split(r"\s*///\s*|;|,", field)
                                          if t.strip()) if g})
        if len(targets) > 1:
            counts["probes_ambiguous"] += 1
            continue
        if not targets:
            counts["probes_unmapped"] += 1
            continue
        genes.setdefault(targets[0], []).append(row)
        counts["probes_used"] += 1
    return list(genes), list(genes.values()), counts


class GEO(Source):
    payload_members = ("expression.npy",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="geo",
        title="NCBI Gene Expression Omnibus: series matrix expression profiles",
        version="series matrix files as downloaded (per series)",
        modality="omics",
        tasks=["expression profiling (not classification)"],
        license=License(name="NCBI GEO: no restrictions stated by NCBI; submitters' terms "
                        "may apply", url="https://www.ncbi.nlm.nih.gov/geo/info/disclaimer.html",
                        terms_version="NCBI disclaimer as published"),
        access="open",
        homepage="https://www.ncbi.nlm.nih.gov/geo/",
        citation="Barrett T, et al. NCBI GEO: archive for functional genomics data sets - "
        "update. Nucleic Acids Res 2013;41(D1):D991-D995.",
        label_space=[],
        split_policy="no official split: keyed hash of the series accession (GSE)",
        split_unit="series",
        published_counts=PublishedCounts(
            train=101162, test=25290, unit="records",
            reference="CLIMB A.2 (GDS DataSets via GEOparse; medshard reads series matrices: "
            "counts differ)"),
        release_notes={"0.1.0": "first medshard adapter: series matrix files, probes mapped "
                       "to Ensembl genes through the platform table"},
    )
    Options = ExpressionOptions
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://www.ncbi.nlm.nih.gov/geo/info/download.html",
        steps=[
            "For each series, download GSExxxxx_series_matrix.txt.gz from "
            "https://ftp.ncbi.nlm.nih.gov/geo/series/GSEnnn/GSExxxxx/matrix/.",
            "For a probe platform, open its GPL page, choose 'Download full table' and save "
            "it as GPLyyy.txt next to the series matrix.",
            "Put the files under the folder named below (any subfolders).",
        ],
    ))
    fixture: ClassVar[str | None] = "medshard.sources.omics.geo_fixture:FIXTURE"

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not any(_MATRIX.match(p.name) or _GDS.match(p.name) for p in root.rglob("G*")):
            raise MissingRawData(f"geo: no GSE*_series_matrix.txt[.gz] or GDS*.soft[.gz] under "
                                 f"{root}; download the series matrix (or GDS SOFT) files there")

    def label_files(self, root: Path) -> list[str]:
        return [self._options["gene_index"]] if self._options["gene_index"] else []

    def _declared(self, root: Path) -> GeneIndex | None:
        rel = self._options["gene_index"]
        return None if rel is None else read_gene_index(self.path(root, rel), rel)

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        """One record per series matrix or GDS SOFT file; a GDS's header (its first 32 KB)
        is read for the series it was made from."""
        self.check_root(root)
        for path in sorted(root.rglob("G*")):
            rel = path.relative_to(root).as_posix()
            m, g = _MATRIX.match(path.name), _GDS.match(path.name)
            if m is not None:
                yield RawRecord(record_id=path.name.split("_series_matrix")[0],
                                subject_id=m.group(1), files=[rel],
                                size_bytes=path.stat().st_size,
                                meta={"series": m.group(1), "format": "series matrix"})
            elif g is not None:
                series = self._gds_series(root, rel)
                yield RawRecord(record_id=g.group(1), subject_id=series or g.group(1),
                                files=[rel], size_bytes=path.stat().st_size,
                                meta={"series": series, "dataset": g.group(1),
                                      "format": "GDS SOFT"})

    def _gds_series(self, root: Path, rel: str) -> str | None:
        """The GSE a GDS was made from (`!dataset_reference_series`), from its header."""
        try:
            with open_text(self.path(root, rel), rel) as f:
                head = f.read(32 << 10)
        except (RecordError, *READ_ERRORS):
            return None  # the load quarantines the file with the reason
        found = re.search(r"^!dataset_reference_series\s*=\s*(GSE\d+)", head, re.M)
        return found.group(1) if found else None

    def _platform(self, root: Path, rel: str, platform_id: str) -> dict[str, str] | None:
        folder = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
        for name in (f"{folder}{platform_id}.txt", f"{folder}{platform_id}.txt.gz",
                     f"{platform_id}.txt", f"{platform_id}.txt.gz"):
            if (root / name).exists():
                return read_platform(read_text(self.path(root, name), name), name)
        return None

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        """One sample per GSM (see the module docstring)."""
        rel = record.files[0]
        text = read_text(self.path(root, rel), rel)
        table = (parse_gds(text, rel) if record.meta["format"] == "GDS SOFT"
                 else series_profiles(text, rel))
        needs_table = any(ensembl_gene(i) is None for i in table.ids)
        platform = self._platform(root, rel, table.platform) if needs_table else None
        genes, rows, counts = probes_to_genes(table.ids, platform, rel)
        if not genes:
            raise RecordError(f"{rel}: no probe maps to an Ensembl gene")
        with np.errstate(all="ignore"):
            gene_values = np.stack([np.nanmean(table.values[r], axis=0) if len(r) > 1
                                    else table.values[r[0]] for r in rows])
        index = IndexMap.build(GeneIndex(rel, tuple(genes)), self._declared(root))
        units = ("as deposited (GDS value)" if record.meta["format"] == "GDS SOFT"
                 else "as deposited (series matrix VALUE)")
        for j, gsm in enumerate(table.samples):
            pairs = [{"key": k, "value": v} for k, v in table.characteristics[j]
                     if k in CHARACTERISTICS_ALLOWED]
            found = {p["key"]: p["value"] for p in pairs}
            field = next((f for f in LABEL_FIELDS if f in found), None)
            yield Sample(
                key_suffix=gsm,
                classes=[],
                source_labels={"characteristics": pairs, "label_field": field,
                               "label": found.get(field) if field else None},
                payloads={"expression": index.dense(gene_values[:, j], units)},
                meta={"series": record.meta["series"], "dataset": record.meta.get("dataset"),
                      "format": record.meta["format"], "sample": gsm,
                      "platform": table.platform or None, "organism": table.organism,
                      **counts, **index.meta()},
                task="expression profiling",
            )
