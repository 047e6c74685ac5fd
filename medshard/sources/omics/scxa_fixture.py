"""A miniature Single Cell Expression Atlas: three experiments' normalised-counts MatrixMarket
triplets and experiment design files, plus two broken experiments.

Real: the expression values and cell types (scanpy's 10x PBMC subset, see
`medshard.sources.omics.pbmc`): each cell's 765 genes as MatrixMarket coordinates,
normalised counts per 10,000 written with 6 significant digits.
Illustrative: the Ensembl ids (pbmc.py), the accessions, which cells form which
experiment, the design columns' organism / organism part values, and the donor column
(a planted identity that must never leave). Broken on purpose: an experiment whose
matrix has an entry outside its declared size, and one whose gzip is truncated (both
quarantined at load); the adversarial `malformed_row` case drops a cell's design row
(that cell is quarantined at listing, the experiment's other cells are written).
"""

from __future__ import annotations

import gzip
from pathlib import Path

from medshard.sources.omics.pbmc import cells_of, pbmc
from medshard.sources.omics.scxa import MTX_STEM
from medshard.testing.fixture import Fixture

DONOR_MARKER = "Quillfeather^Rosamund"
TYPE_COL = "Factor Value[inferred cell type - ontology labels]"
# experiment -> (cell type, how many, skip) groups
EXPERIMENTS = {
    "E-MTAB-9001": [("CD14+ Monocyte", 2, 0), ("CD19+ B", 2, 0)],
    "E-MTAB-9002": [("CD56+ NK", 2, 0), ("Dendritic", 1, 0)],
    "E-MTAB-9014": [("CD8+ Cytotoxic T", 2, 0), ("CD14+ Monocyte", 1, 2)],
    "E-MTAB-9004": [("CD19+ B", 2, 2)],  # an entry outside the matrix
    "E-MTAB-9005": [("Dendritic", 2, 1)],  # truncated gzip
}


def mtx_text(cells: list[int]) -> str:
    """genes x cells MatrixMarket coordinates of these pbmc cells (column-major order)."""
    p = pbmc()
    entries = [f"{g + 1} {j + 1} {p.counts[c, g]:.6g}"
               for j, c in enumerate(cells) for g in range(len(p.symbols)) if p.counts[c, g]]
    head = ["%%MatrixMarket matrix coordinate real general", "%",
            f"{len(p.symbols)} {len(cells)} {len(entries)}"]
    return "\n".join(head + entries) + "\n"


def write_experiment(folder: Path, acc: str, cells: list[int], *, gz: bool = False) -> Path:
    p = pbmc()
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / f"{acc}{MTX_STEM}"
    text = mtx_text(cells)
    mtx = base.with_name(base.name + ".gz") if gz else base
    if gz:
        mtx.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        mtx.write_text(text)
    (folder / f"{base.name}_rows").write_text("".join(f"{g}\t{g}\n" for g in p.ensembl))
    (folder / f"{base.name}_cols").write_text("".join(f"{acc}-{p.barcodes[c]}\n" for c in cells))
    header = ["Assay", "Sample Characteristic[organism]",
              "Sample Characteristic Ontology Term[organism]",
              "Sample Characteristic[organism part]", "Sample Characteristic[individual]",
              TYPE_COL, "Factor Value Ontology Term[inferred cell type - ontology labels]"]
    rows = ["\t".join(header)]
    for c in cells:
        rows.append("\t".join([f"{acc}-{p.barcodes[c]}", "Homo sapiens",
                               "http://purl.obolibrary.org/obo/NCBITaxon_9606", "blood",
                               DONOR_MARKER, p.cell_types[c], ""]))
    (folder / f"ExpDesign-{acc}.tsv").write_text("\n".join(rows) + "\n")
    return mtx


def experiment_cells(acc: str) -> list[int]:
    return [c for t, n, skip in EXPERIMENTS[acc] for c in cells_of(t, n, skip)]


def write_fixture(root: Path) -> Path:
    for acc in ("E-MTAB-9001", "E-MTAB-9002", "E-MTAB-9014"):
        write_experiment(root / acc, acc, experiment_cells(acc), gz=acc == "E-MTAB-9014")
    bad = write_experiment(root / "E-MTAB-9004", "E-MTAB-9004", experiment_cells("E-MTAB-9004"))
    lines = bad.read_text().splitlines()
    lines[5] = "766 1 1.5"  # row 766 of a 765-gene matrix
    bad.write_text("\n".join(lines) + "\n")
    cut = write_experiment(root / "E-MTAB-9005", "E-MTAB-9005", experiment_cells("E-MTAB-9005"),
                           gz=True)
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) // 2])
    return root


def missing_design_row(root: Path, outside: Path):
    """Cell 3 of E-MTAB-9001 loses its design row: a BadRow of the column file."""
    from medshard.testing.adversarial import Expect

    design = root / "E-MTAB-9001" / "ExpDesign-E-MTAB-9001.tsv"
    lines = design.read_text().splitlines()
    design.write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    cols = f"E-MTAB-9001/E-MTAB-9001{MTX_STEM}_cols"
    return Expect({f"{cols}:3": "list"}, {f"{cols}:3": "has no row in ExpDesign"})


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 4, "val": 3, "test": 3},
    quarantined={"E-MTAB-9004": "load", "E-MTAB-9005": "load"},
    adversarial={"malformed_row": missing_design_row},
    phi_markers=(DONOR_MARKER,),
    real="expression and cell types: scanpy's 10x PBMC subset (700 cells, 765 genes; "
    "scanpy 1.11.5) as normalised counts in the Atlas's MatrixMarket triplet",
    illustrative="Ensembl ids (ENSG9..., outside the real range), accessions, the grouping "
    "of cells into experiments, design values, a planted donor name; a matrix entry outside "
    "its size, a truncated gzip",
)
