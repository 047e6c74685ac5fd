"""TCGA gene expression from the NCI Genomic Data Commons: one profile per RNA-seq file (sample).

Raw layout (what `gdc-client download -m <cart manifest>` writes from the GDC portal):
    https://portal.gdc.cancer.gov: "Transcriptome Profiling", "Gene Expression
    Quantification", workflow "STAR - Counts"

    gdc_sample_sheet.<date>.tsv                 the cart's sample sheet: `File ID`,
                                                `File Name`, `Data Category`, `Data Type`,
                                                `Project ID`, `Case ID`, `Sample ID`,
                                                `Sample Type`
    <File ID>/<file uuid>.rna_seq.augmented_star_gene_counts.tsv
        # gene-model: GENCODE v36               one comment line
        gene_id  gene_name  gene_type  unstranded  stranded_first  stranded_second
            tpm_unstranded  fpkm_unstranded  fpkm_uq_unstranded
        N_unmapped ... N_ambiguous              four STAR summary rows (no tpm/fpkm)
        ENSG00000000003.15  TSPAN6  protein_coding  ...   one row per gene, versioned ids

Facts and where they came from: the GDC's STAR-Counts file (columns, the gene-model
comment, the four `N_*` rows) and its sample sheet columns: the GDC documentation of the
mRNA quantification pipeline (docs.gdc.cancer.gov, "mRNA Analysis Pipeline") and the
portal's sample-sheet download, as TCGA loaders read them. MultiMed cites the TCGA
Pan-Cancer project (Chang et al. 2013) and counts 12,560 samples without naming files
or a layout (unconfirmed). medshard reads the owner's distribution, the GDC's per-sample
files, whose genes are Ensembl ids; the PanCanAtlas `EBPlusPlusAdjustPANCAN_
IlluminaHiSeq_RNASeqV2.geneExp.tsv` matrix keys genes as `SYMBOL|ENTREZ` and would need
an Entrez -> Ensembl table that medshard does not ship, so it is not read.

What `load` yields: the sample's `value_column` (default `tpm_unstranded`, TPM; or raw
`unstranded` counts, FPKM, FPKM-UQ) as a dense float32 vector over the gene index
(`medshard.sources.omics.expression`; versions stripped, the `_PAR_Y` rows of
pseudo-autosomal genes kept as their own ids); the STAR summary rows go to meta.
Labels: the project (cancer type, e.g. TCGA-BRCA) and the sample type (Primary Tumor,
Solid Tissue Normal, ...) verbatim in `source_labels`; no unified classes yet (33 cancer
types await vocabulary concepts). Split unit: the patient (`Case ID`, the barcode's first
12 characters): a patient's tumour and normal samples stay together, and each patient
belongs to one project. The barcodes are TCGA's public de-identified ids; the patient's
is pseudonymized like every subject, and no barcode leaves the source (meta keeps the
sample barcode's vial code only). Bad records: a sample-sheet row missing a column or
naming another workflow's file (quarantined at listing), a missing or malformed counts
file, a value that is not a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

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

SHEET_COLUMNS = ("File ID", "File Name", "Data Category", "Data Type", "Project ID", "Case ID",
                 "Sample ID", "Sample Type")
COUNTS_SUFFIX = ".rna_seq.augmented_star_gene_counts.tsv"
COUNTS_COLUMNS = ("gene_id", "gene_name", "gene_type", "unstranded", "stranded_first",
                  "stranded_second", "tpm_unstranded", "fpkm_unstranded", "fpkm_uq_unstranded")
UNITS = {"tpm_unstranded": "TPM", "unstranded": "reads (unstranded counts)",
         "fpkm_unstranded": "FPKM", "fpkm_uq_unstranded": "FPKM-UQ"}


class TCGAOptions(ExpressionOptions):
    value_column: Literal["tpm_unstranded", "unstranded", "fpkm_unstranded",
                          "fpkm_uq_unstranded"] = Field(
        "tpm_unstranded", description="which STAR-Counts column becomes the vector")


def read_star_counts(text: str, rel: str, column: str
                     ) -> tuple[list[str], np.ndarray, dict[str, int], str | None]:
    """(gene ids, values, STAR summary counts, gene model) of a STAR-Counts file."""
    lines = text.splitlines()
    model = None
    while lines and lines[0].startswith("#"):
        key, _, value = lines.pop(0)[1:].partition(":")
        if key.strip() == "gene-model":
            model = value.strip()
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter="\t"))
    if not rows or tuple(rows[0]) != COUNTS_COLUMNS:
        raise RecordError(f"{rel}: header is not the GDC STAR-Counts columns")
    j = COUNTS_COLUMNS.index(column)
    genes, values, summary = [], [], {}
    for n, row in enumerate(rows[1:], start=len(text.splitlines()) - len(lines) + 2):
        if not row:
            continue
        if len(row) != len(COUNTS_COLUMNS):
            raise RecordError(f"{rel} line {n}: {len(row)} fields, expected "
                              f"{len(COUNTS_COLUMNS)}")
        if row[0].startswith("N_"):
            summary[row[0]] = int(parse_float(row[3], f"{rel} line {n}"))
            continue
        genes.append(row[0])
        values.append(parse_float(row[j], f"{rel} line {n}"))
    return genes, np.asarray(values, np.float64), summary, model


class TCGAGenomic(Source):
    payload_members = ("expression.npy",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="tcga-genomic",
        title="TCGA RNA-seq gene expression (GDC STAR-Counts), pan-cancer",
        version="GDC data release of the download (gene model in each file, e.g. GENCODE v36)",
        modality="omics",
        tasks=["expression prediction", "cancer type (source labels)"],
        license=License(name="NIH GDC open-access data (dbGaP-governed policies); cite TCGA",
                        url="https://gdc.cancer.gov/access-data/data-access-processes-and-tools",
                        terms_version="GDC data access policies as published"),
        access="open",
        homepage="https://portal.gdc.cancer.gov/",
        citation="The Cancer Genome Atlas Research Network, Weinstein JN, et al. The Cancer "
        "Genome Atlas Pan-Cancer analysis project. Nat Genet 2013;45(10):1113-1120.",
        label_space=[],
        split_policy="no official split: keyed hash of the patient (Case ID)",
        split_unit="patient",
        published_counts=PublishedCounts(
            train=None, test=None, unit="samples",
            reference="MultiMed: 12,560 samples in all, no split or file list given"),
        release_notes={"0.1.0": "first medshard adapter: GDC STAR-Counts files with the "
                       "cart's sample sheet"},
    )
    Options = TCGAOptions
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://portal.gdc.cancer.gov/",
        steps=[
            "In the GDC Data Portal choose program TCGA, data category 'Transcriptome "
            "Profiling', data type 'Gene Expression Quantification', workflow 'STAR - "
            "Counts', and add the files to the cart.",
            "Download the cart's Manifest and its Sample Sheet; fetch the files with "
            "`gdc-client download -m <manifest>` into the folder named below.",
            "Put the sample sheet (gdc_sample_sheet.<date>.tsv) in that folder too.",
        ],
    ))
    fixture: ClassVar[str | None] = "medshard.sources.omics.tcga_fixture:FIXTURE"

    def _sheet(self, root: Path) -> str:
        sheets = sorted(root.glob("gdc_sample_sheet*.tsv"))
        if not sheets:
            raise MissingRawData(f"tcga-genomic: no gdc_sample_sheet*.tsv in {root}; download "
                                 "the cart's sample sheet there")
        return sheets[-1].name  # the latest by its date suffix

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        self._sheet(root)

    def label_files(self, root: Path) -> list[str]:
        files = [self._sheet(root)]
        return files + ([self._options["gene_index"]] if self._options["gene_index"] else [])

    def _declared(self, root: Path) -> GeneIndex | None:
        rel = self._options["gene_index"]
        return None if rel is None else read_gene_index(self.path(root, rel), rel)

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per STAR-Counts row of the sample sheet."""
        self.check_root(root)
        sheet = self._sheet(root)
        with open(self.path(root, sheet), encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t")
            header = next(reader, [])
            missing = [c for c in SHEET_COLUMNS if c not in header]
            if missing:
                raise MissingRawData(f"tcga-genomic: {sheet} lacks column(s) "
                                     f"{', '.join(missing)}; download the GDC sample sheet again")
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    yield BadRow(sheet, line, f"{len(row)} fields, the header has {len(header)}")
                    continue
                r = dict(zip(header, row, strict=True))
                if not r["File Name"].endswith(COUNTS_SUFFIX):
                    yield BadRow(sheet, line, f"{r['File Name'][:60]!r} is not a STAR-Counts "
                                 f"file (*{COUNTS_SUFFIX})")
                    continue
                case = r["Case ID"].split(",")[0].strip()
                if not case.startswith("TCGA-") or len(case) != 12:
                    yield BadRow(sheet, line, "Case ID is not a 12-character TCGA patient "
                                 "barcode")  # the value itself may identify: not echoed
                    continue
                rel = f"{r['File ID']}/{r['File Name']}"
                path = root / rel
                yield RawRecord(
                    record_id=r["File ID"], subject_id=case, files=[rel],
                    size_bytes=path.stat().st_size if path.exists() else 0,
                    source_labels={"project": r["Project ID"], "sample_type": r["Sample Type"]},
                    meta={"project": r["Project ID"],
                          # the vial code of the sample barcode (TCGA-XX-XXXX-01A -> 01A):
                          # tumour / normal and vial, without the patient's barcode
                          "sample_code": r["Sample ID"].split(",")[0].strip()[13:16] or None},
                )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        rel = record.files[0]
        column = self._options["value_column"]
        genes, values, summary, model = read_star_counts(
            read_text(self.path(root, rel), rel), rel, column)
        index = IndexMap.build(experiment_genes(genes, rel), self._declared(root))
        yield Sample(
            classes=[],
            source_labels=dict(record.source_labels),
            payloads={"expression": index.dense(values, UNITS[column])},
            meta={**record.meta, "gene_model": model, "value_column": column,
                  "star_summary": [{"name": k, "reads": v} for k, v in sorted(summary.items())],
                  **index.meta()},
            task="expression prediction",
        )
