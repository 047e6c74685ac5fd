"""A miniature GDC download: a cart's sample sheet and STAR-Counts files for five samples of
four patients in two projects, plus broken entries.

Real: the expression (scanpy's 10x PBMC subset, `medshard.sources.omics.pbmc`): each
sample's `unstranded` counts are the pseudo-bulk of eight cells of one cell type (counts
per 10,000 summed and rounded). Illustrative: `stranded_*` (the counts split in half),
`tpm_unstranded` (counts scaled to a million: no gene lengths ship with the cells),
`fpkm_*` (the same scaled by 1/1000 and by the upper quartile), the STAR summary rows, the
versioned Ensembl ids (pbmc.py, with `.1` versions), projects, barcodes and file uuids.
The barcodes are planted identities: no output may contain them. Broken on purpose: a
sheet row whose file is absent (quarantined at load) and a counts file with a row one
field short (quarantined at load); the adversarial `malformed_row` case adds a sheet row
naming another workflow's file and one with a short row (quarantined at listing).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from medshard.sources.omics.pbmc import cells_of, pbmc
from medshard.sources.omics.tcga import COUNTS_COLUMNS, COUNTS_SUFFIX, SHEET_COLUMNS
from medshard.testing.fixture import Fixture

SHEET = "gdc_sample_sheet.2026-01-15.tsv"
# (case, project, sample type, vial, cell type, skip)
SAMPLES = [
    ("TCGA-Z9-A001", "TCGA-LAML", "Primary Blood Derived Cancer - Peripheral Blood", "03A",
     "CD14+ Monocyte", 0),
    ("TCGA-Z9-A028", "TCGA-LAML", "Primary Blood Derived Cancer - Peripheral Blood", "03A",
     "CD34+", 0),
    ("TCGA-Z9-A003", "TCGA-DLBC", "Primary Tumor", "01A", "CD19+ B", 0),
    ("TCGA-Z9-A003", "TCGA-DLBC", "Solid Tissue Normal", "11A", "CD4+/CD25 T Reg", 0),
    ("TCGA-Z9-A005", "TCGA-DLBC", "Primary Tumor", "01A", "CD19+ B", 8),
    ("TCGA-Z9-A006", "TCGA-DLBC", "Primary Tumor", "01A", "CD56+ NK", 0),  # file absent
    ("TCGA-Z9-A007", "TCGA-LAML", "Primary Blood Derived Cancer - Peripheral Blood", "03A",
     "Dendritic", 0),  # short row in the counts file
]
CASES = tuple(sorted({s[0] for s in SAMPLES}))
CELLS = 8


def file_id(i: int) -> str:
    return str(uuid.UUID(int=0x9000_0000_0000_4000_8000_0000_0000_0000 + i))


def counts_text(cell_type: str, skip: int) -> str:
    p = pbmc()
    counts = np.round(p.counts[cells_of(cell_type, CELLS, skip)].sum(axis=0))
    tpm = counts / counts.sum() * 1e6
    uq = np.percentile(counts[counts > 0], 75)
    lines = ["# gene-model: GENCODE v36", "\t".join(COUNTS_COLUMNS)]
    for name, n in (("N_unmapped", 1200), ("N_multimapping", 3400), ("N_noFeature", 560),
                    ("N_ambiguous", 78)):
        lines.append(f"{name}\t\t\t{n}\t{n // 2}\t{n - n // 2}\t\t\t")
    for i, (gene, sym) in enumerate(zip(p.ensembl, p.symbols, strict=True)):
        c = int(counts[i])
        lines.append("\t".join([f"{gene}.1", sym, "protein_coding", str(c), str(c // 2),
                                str(c - c // 2), f"{tpm[i]:.4f}", f"{tpm[i] / 1000:.4f}",
                                f"{c / uq:.4f}"]))
    return "\n".join(lines) + "\n"


def write_fixture(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = ["\t".join(SHEET_COLUMNS)]
    for i, (case, project, stype, vial, cell_type, skip) in enumerate(SAMPLES):
        fid = file_id(i)
        name = f"{uuid.UUID(int=0xA000_0000_0000_4000_8000_0000_0000_0000 + i)}{COUNTS_SUFFIX}"
        rows.append("\t".join([fid, name, "Transcriptome Profiling",
                               "Gene Expression Quantification", project, case,
                               f"{case}-{vial}", stype]))
        if case == "TCGA-Z9-A006":
            continue  # listed in the sheet, never downloaded
        folder = root / fid
        folder.mkdir(parents=True, exist_ok=True)
        text = counts_text(cell_type, skip)
        if case == "TCGA-Z9-A007":
            lines = text.splitlines()
            lines[30] = lines[30].rsplit("\t", 1)[0]
            text = "\n".join(lines) + "\n"
        (folder / name).write_text(text)
    (root / SHEET).write_text("\n".join(rows) + "\n")
    return root


def bad_sheet_rows(root: Path, outside: Path):
    """A sheet row naming an HTSeq file (another workflow) and one two fields short."""
    from medshard.testing.adversarial import Expect

    sheet = root / SHEET
    lines = sheet.read_text().splitlines()
    n = len(lines)
    lines.append("\t".join([file_id(90), "x.htseq.counts.gz", "Transcriptome Profiling",
                            "Gene Expression Quantification", "TCGA-LAML", "TCGA-Z9-A008",
                            "TCGA-Z9-A008-03A", "Primary Tumor"]))
    lines.append("\t".join([file_id(91), f"y{COUNTS_SUFFIX}", "Transcriptome Profiling",
                            "Gene Expression Quantification", "TCGA-LAML", "TCGA-Z9-A009"]))
    sheet.write_text("\n".join(lines) + "\n")
    return Expect({f"{SHEET}:{n + 1}": "list", f"{SHEET}:{n + 2}": "list"},
                  {f"{SHEET}:{n + 1}": "not a STAR-Counts", f"{SHEET}:{n + 2}": "6 fields"})


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 3, "val": 1, "test": 1},
    quarantined={file_id(5): "load", file_id(6): "load"},
    phi_markers=CASES,
    adversarial={"malformed_row": bad_sheet_rows},
    real="expression: scanpy's 10x PBMC cells (scanpy 1.11.5) summed per sample as the "
    "unstranded counts of GDC STAR-Counts files",
    illustrative="stranded/TPM/FPKM columns derived from the counts, STAR summary rows, "
    "Ensembl ids (ENSG9..., outside the real range), projects, barcodes, uuids; an absent "
    "file, a short counts row",
)
