"""A miniature GEO: three series matrix files (two probe platforms mapped by a GPL full
table, one RNA-seq series keyed by Ensembl ids), one curated DataSet (GDS SOFT, `_full`
with an annotation column) and two broken series.

Real: the expression (scanpy's 10x PBMC subset, `medshard.sources.omics.pbmc`): each GSM
is the pseudo-bulk of six cells of one cell type as log2(CPM + 1), the way many
submitters deposit values. Illustrative: accessions, Ensembl ids (pbmc.py), probe ids
and the platform table (most genes one probe, a few two probes whose values are the
gene's value with an offset of +-0.1 so that their mean is the gene's value, one probe
mapping to two genes, one to none), titles, characteristics, and planted identities (a
donor name in a free-text characteristic and a contact name) that must never leave.
Broken on purpose: a series whose gzip is cut short, one with a table row one field
short (both quarantined at load).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from medshard.sources.omics.pbmc import cells_of, pbmc
from medshard.testing.fixture import Fixture

DONOR_MARKER = "Quillfeather^Rosamund"
CONTACT_MARKER = "Wigglesworth,Eustacia"
PLATFORM = "GPL90001"
# series -> (probe platform?, gzip?, [(cell type, skip)])
SERIES = {
    "GSE90001": (True, True, [("CD14+ Monocyte", 0), ("CD19+ B", 0), ("CD56+ NK", 0)]),
    "GSE90002": (False, False, [("CD8+ Cytotoxic T", 0), ("Dendritic", 0)]),
    "GSE90006-GPL90001": (True, True, [("CD14+ Monocyte", 6), ("Dendritic", 6)]),
    "GSE90003": (True, True, [("CD19+ B", 6), ("CD56+ NK", 6)]),  # truncated gzip
    "GSE90004": (False, False, [("Dendritic", 12), ("CD19+ B", 12)]),  # short row
    "GDS9007": (True, True, [("CD56+ NK", 6), ("CD56+ NK", 12), ("CD8+ Cytotoxic T", 6)]),
}
GDS_SERIES = "GSE90022"  # the series GDS9007 was made from
CELLS = 6
DOUBLE_PROBED = 5  # the first genes get two probes each


def gsm_profiles(series: str) -> tuple[list[str], list[str], np.ndarray]:
    """(GSM ids, cell types, genes x samples log2(CPM+1))."""
    p = pbmc()
    n = list(SERIES).index(series)
    cols, types, ids = [], [], []
    for k, (cell_type, skip) in enumerate(SERIES[series][2]):
        counts = p.counts[cells_of(cell_type, CELLS, skip)].sum(axis=0)
        cols.append(np.log2(counts / counts.sum() * 1e6 + 1))
        types.append(cell_type)
        ids.append(f"GSM9{n:02d}{k + 1:03d}")
    return ids, types, np.column_stack(cols)


def probe_rows(profiles: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(probe id, values) rows of a probe platform: see the module docstring."""
    p = pbmc()
    rows = []
    for i in range(len(p.ensembl)):
        if i < DOUBLE_PROBED:
            rows += [(f"{i + 1}_s_at", profiles[i] + 0.1), (f"{i + 1}_x_at", profiles[i] - 0.1)]
        else:
            rows.append((f"{i + 1}_at", profiles[i]))
    rows.append(("AFFX-ambiguous_at", profiles[0] * 0 + 7.0))
    rows.append(("AFFX-unmapped_at", profiles[0] * 0 + 3.0))
    return rows


def write_platform(path: Path) -> None:
    p = pbmc()
    lines = ["#ID = probe id", "#ENSEMBL_ID = Ensembl gene", "ID\tGene Symbol\tENSEMBL_ID"]
    for i, (gene, sym) in enumerate(zip(p.ensembl, p.symbols, strict=True)):
        if i < DOUBLE_PROBED:
            lines += [f"{i + 1}_s_at\t{sym}\t{gene}", f"{i + 1}_x_at\t{sym}\t{gene}"]
        else:
            lines.append(f"{i + 1}_at\t{sym}\t{gene}")
    lines.append(f"AFFX-ambiguous_at\t\t{p.ensembl[0]} /// {p.ensembl[1]}")
    lines.append("AFFX-unmapped_at\t\t")
    path.write_text("\n".join(lines) + "\n")


def series_text(series: str) -> str:
    probes, _, _ = SERIES[series]
    gsms, types, prof = gsm_profiles(series)
    q = lambda vals: "\t".join(f'"{v}"' for v in vals)  # noqa: E731
    acc = series.split("-")[0]
    head = [f'!Series_title\t"PBMC pseudo-bulk profiles ({acc})"',
            f'!Series_geo_accession\t"{acc}"',
            f'!Series_contact_name\t"{CONTACT_MARKER}"',
            f"!Sample_title\t{q(f'{t} donor {DONOR_MARKER}' for t in types)}",
            f"!Sample_geo_accession\t{q(gsms)}",
            f"!Sample_source_name_ch1\t{q('peripheral blood' for _ in gsms)}",
            f"!Sample_organism_ch1\t{q('Homo sapiens' for _ in gsms)}",
            f"!Sample_characteristics_ch1\t{q(f'cell type: {t}' for t in types)}",
            f"!Sample_characteristics_ch1\t{q('tissue: peripheral blood' for _ in gsms)}",
            f"!Sample_characteristics_ch1\t{q(f'donor: {DONOR_MARKER}' for _ in gsms)}",
            f"!Sample_platform_id\t{q((PLATFORM if probes else 'GPL90002') for _ in gsms)}",
            "!series_matrix_table_begin", f'"ID_REF"\t{q(gsms)}']
    rows = probe_rows(prof) if probes else list(zip(pbmc().ensembl, prof, strict=True))
    body = [f'"{pid}"\t' + "\t".join(f"{v:.6g}" for v in vals) for pid, vals in rows]
    return "\n".join(head + body + ["!series_matrix_table_end"]) + "\n"


def gds_text(dataset: str) -> str:
    """A GDS `_full` SOFT file: DataSet attributes, one subset per cell type and one
    free-text `individual` subset (a planted donor name), the probe table with an
    annotation column after the samples."""
    gsms, types, prof = gsm_profiles(dataset)
    head = ["^DATABASE = Geo", "!Database_name = Gene Expression Omnibus (GEO)",
            f"^DATASET = {dataset}", f"!dataset_title = PBMC pseudo-bulk ({dataset})",
            f"!dataset_platform = {PLATFORM}", "!dataset_platform_organism = Homo sapiens",
            f"!dataset_reference_series = {GDS_SERIES}",
            "!dataset_value_type = transformed count"]
    for k, t in enumerate(dict.fromkeys(types)):
        head += [f"^SUBSET = {dataset}_{k + 1}", f"!subset_dataset_id = {dataset}",
                 f"!subset_description = {t}",
                 "!subset_sample_id = " + ",".join(g for g, u in zip(gsms, types, strict=True)
                                                   if u == t),
                 "!subset_type = cell type"]
    head += [f"^SUBSET = {dataset}_9", f"!subset_description = {DONOR_MARKER}",
             "!subset_sample_id = " + ",".join(gsms), "!subset_type = individual",
             "!dataset_table_begin", "\t".join(["ID_REF", "IDENTIFIER", *gsms, "Gene symbol"])]
    p = pbmc()
    body = []
    for pid, vals in probe_rows(prof):
        number = pid.split("_")[0]
        symbol = p.symbols[int(number) - 1] if number.isdigit() else "--Control"
        body.append("\t".join([pid, symbol, *(f"{v:.6g}" for v in vals), symbol]))
    return "\n".join(head + body + ["!dataset_table_end"]) + "\n"


def write_fixture(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_platform(root / f"{PLATFORM}.txt")
    for series, (_, gz, _) in SERIES.items():
        if series.startswith("GDS"):
            folder = root / "datasets" / series / "soft"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{series}_full.soft.gz").write_bytes(
                gzip.compress(gds_text(series).encode(), mtime=0))
            continue
        folder = root / series.split("-")[0] / "matrix"
        folder.mkdir(parents=True, exist_ok=True)
        text = series_text(series)
        if series == "GSE90004":
            lines = text.splitlines()
            lines[20] = lines[20].rsplit("\t", 1)[0]
            text = "\n".join(lines) + "\n"
        name = f"{series}_series_matrix.txt"
        if gz:
            data = gzip.compress(text.encode(), mtime=0)
            if series == "GSE90003":
                data = data[: len(data) // 2]
            (folder / f"{name}.gz").write_bytes(data)
        else:
            (folder / name).write_text(text)
    return root


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 3, "val": 5, "test": 2},
    quarantined={"GSE90003": "load", "GSE90004": "load"},
    phi_markers=(DONOR_MARKER, CONTACT_MARKER),
    real="expression: scanpy's 10x PBMC cells (scanpy 1.11.5) as pseudo-bulk log2(CPM+1) "
    "per GSM, in GEO's series matrix format (gzipped and plain) and a GDS SOFT file",
    illustrative="accessions, probe ids and the GPL table (double, ambiguous and unmapped "
    "probes), Ensembl ids (ENSG9..., outside the real range), titles and characteristics, "
    "planted donor and contact names; a cut gzip, a short table row",
)
