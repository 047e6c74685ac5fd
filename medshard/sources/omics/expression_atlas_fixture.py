"""A miniature Expression Atlas: three baseline RNA-seq experiment folders (TPM TSV,
configuration XML, condensed SDRF) and one with a malformed row.

Real: the expression (scanpy's 10x PBMC subset, `medshard.sources.omics.pbmc`): each
assay (run) is the pseudo-bulk of five cells of one cell type, scaled to TPM (a million
per run; no gene-length correction: the cells' counts are per molecule); each assay
group's cell is the mean over its runs (E-MTAB-9001, the older single-value format) or
the five quantiles min, lower quartile, median, upper quartile, max (the others).
Illustrative: Ensembl ids (pbmc.py), accessions, run ids, the grouping of cells into runs
and experiments, design values, and the planted donor name in an `individual`
characteristic (never to leave). Broken on purpose: E-MTAB-9002 has a row with one field
short (quarantined at load); the adversarial `malformed_row` case removes one group's
assays from the condensed SDRF (that group is quarantined at listing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medshard.sources.omics.pbmc import cells_of, pbmc
from medshard.testing.fixture import Fixture

DONOR_MARKER = "Quillfeather^Rosamund"
# experiment -> assay groups: (cell type, runs)
EXPERIMENTS = {
    "E-MTAB-9001": [("CD14+ Monocyte", 2), ("CD19+ B", 3)],
    "E-MTAB-9004": [("CD56+ NK", 2), ("CD8+ Cytotoxic T", 2), ("Dendritic", 2)],
    "E-MTAB-9008": [("CD4+/CD25 T Reg", 2), ("CD14+ Monocyte", 2)],
    "E-MTAB-9002": [("Dendritic", 2), ("CD19+ B", 2)],  # malformed row
}
CELLS_PER_RUN = 5


def run_profiles(acc: str) -> dict[str, tuple[str, list[str], np.ndarray]]:
    """group id -> (cell type, run ids, runs x genes TPM)."""
    p = pbmc()
    out, used, run = {}, {}, 0
    for g, (cell_type, n_runs) in enumerate(EXPERIMENTS[acc], start=1):
        runs, ids = [], []
        for _ in range(n_runs):
            skip = used.get(cell_type, 0)
            cells = cells_of(cell_type, CELLS_PER_RUN, skip + 3 * list(EXPERIMENTS).index(acc))
            used[cell_type] = skip + CELLS_PER_RUN
            counts = p.counts[cells].sum(axis=0)
            runs.append(counts / counts.sum() * 1e6)
            run += 1
            ids.append(f"ERR9{list(EXPERIMENTS).index(acc) + 1:02d}{run:04d}")
        out[f"g{g}"] = (cell_type, ids, np.asarray(runs))
    return out


def _cell(values: np.ndarray, quantiles: bool) -> str:
    if not quantiles:
        return f"{values.mean():.4g}"
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return ",".join(f"{v:.4g}" for v in q)


def write_experiment(folder: Path, acc: str) -> Path:
    p = pbmc()
    folder.mkdir(parents=True, exist_ok=True)
    groups = run_profiles(acc)
    quantiles = acc != "E-MTAB-9001"
    lines = ["\t".join(["Gene ID", "Gene Name", *groups])]
    for i, (gene, symbol) in enumerate(zip(p.ensembl, p.symbols, strict=True)):
        lines.append("\t".join([gene, symbol, *(_cell(r[:, i], quantiles)
                                                for _, _, r in groups.values())]))
    tsv = folder / f"{acc}-tpms.tsv"
    tsv.write_text("\n".join(lines) + "\n")
    xml = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<configuration experimentType="rnaseq_mrna_baseline" r_data="1">',
           '  <analytics>', '    <assay_groups>']
    for g, (cell_type, ids, _) in groups.items():
        xml.append(f'      <assay_group id="{g}" label="{cell_type}">')
        xml += [f"        <assay>{r}</assay>" for r in ids]
        xml.append("      </assay_group>")
    xml += ["    </assay_groups>", "  </analytics>", "</configuration>"]
    (folder / f"{acc}-configuration.xml").write_text("\n".join(xml) + "\n")
    sdrf = []
    for cell_type, ids, _ in groups.values():
        for r in ids:
            sdrf += [[acc, "", r, "characteristic", "organism", "Homo sapiens",
                      "http://purl.obolibrary.org/obo/NCBITaxon_9606"],
                     [acc, "", r, "characteristic", "individual", DONOR_MARKER, ""],
                     [acc, "", r, "factor", "cell type", cell_type, ""]]
    (folder / f"{acc}.condensed-sdrf.tsv").write_text(
        "".join("\t".join(row) + "\n" for row in sdrf))
    return tsv


def write_fixture(root: Path) -> Path:
    for acc in EXPERIMENTS:
        write_experiment(root / acc, acc)
    bad = root / "E-MTAB-9002" / "E-MTAB-9002-tpms.tsv"
    lines = bad.read_text().splitlines()
    lines[7] = lines[7].rsplit("\t", 1)[0]  # one group's value missing
    bad.write_text("\n".join(lines) + "\n")
    return root


def undescribed_group(root: Path, outside: Path):
    """Group g2 of E-MTAB-9001 loses its condensed-SDRF rows: a BadRow at listing."""
    from medshard.testing.adversarial import Expect

    _, ids, _ = run_profiles("E-MTAB-9001")["g2"]
    sdrf = root / "E-MTAB-9001" / "E-MTAB-9001.condensed-sdrf.tsv"
    sdrf.write_text("".join(line + "\n" for line in sdrf.read_text().splitlines()
                            if line.split("\t")[2] not in ids))
    rel = "E-MTAB-9001/E-MTAB-9001-configuration.xml"
    return Expect({f"{rel}:2": "list"}, {f"{rel}:2": "assay group g2"})


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 2, "val": 3, "test": 2},
    quarantined={"E-MTAB-9002": "load"},
    phi_markers=(DONOR_MARKER,),
    adversarial={"malformed_row": undescribed_group},
    real="expression: scanpy's 10x PBMC cells (scanpy 1.11.5) summed into pseudo-bulk runs "
    "per cell type, as TPM in the Atlas's baseline TSV (single values and quantiles)",
    illustrative="Ensembl ids (ENSG9..., outside the real range), accessions, run ids, "
    "configuration and condensed-SDRF values, a planted donor name; a row one field short",
)
