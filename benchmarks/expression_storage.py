"""Bytes of one expression vector stored dense (`.npy`) and sparse (`.npz` indices, values,
missing), through medshard's own vector encoder, on real single-cell expression.

Cells: scanpy's 10x PBMC subset (700 cells x 765 genes, `medshard.sources.omics.pbmc`).
Two gene indexes: the file's 765 genes (an index of highly variable genes, denser than a
whole transcriptome), and a 20,000-gene index (a human protein-coding transcriptome) in
which the cell's 765 genes are measured and the rest measured zero, the shape of a
Single Cell Expression Atlas matrix over all genes. Run by hand:

    python benchmarks/expression_storage.py

Prints median bytes per cell each way, the median fraction of non-zero entries, the
density at which sparse storage stops paying (measured by bisection on synthetic cells),
and the peak memory (tracemalloc: numpy's allocations included) of loading one
experiment of `expression-atlas-scrna` whose matrix holds 1,000,000 and 2,000,000 entries
(20,000 genes x 1,000 / 2,000 cells at 5%, values drawn from the PBMC cells), and the
peak's growth per entry between the two.
"""

from __future__ import annotations

import numpy as np

from medshard.pipeline.encoders import EncodeContext, encode_vector
from medshard.schemas import Payload
from medshard.sharding.members import member_bytes
from medshard.sources.omics.pbmc import pbmc

CTX = EncodeContext(key="bench", role="expression", modality="omics")


def stored_bytes(values: np.ndarray) -> tuple[int, int]:
    """(dense .npy bytes, sparse .npz bytes) of one float32 vector."""
    ids = [f"g{i}" for i in range(len(values))]
    dense, _ = encode_vector(Payload("vector", values.astype(np.float32),
                                     {"feature_ids": ids}), CTX)
    nz = np.flatnonzero(values)
    sparse, _ = encode_vector(Payload("vector", {
        "length": len(values), "indices": nz, "values": values[nz].astype(np.float32),
        "missing": np.empty(0, np.int64)}, {"feature_ids": ids}), CTX)
    return (len(member_bytes(next(iter(dense.values())))),
            len(member_bytes(next(iter(sparse.values())))))


def main() -> None:
    p = pbmc()
    rng = np.random.default_rng(0)
    for n_genes in (765, 20_000):
        rows = []
        for cell in p.counts:
            v = np.zeros(n_genes)
            v[: len(cell)] = cell
            rows.append((*stored_bytes(rng.permutation(v)), np.count_nonzero(cell) / n_genes))
        d, s, frac = (np.median([r[i] for r in rows]) for i in range(3))
        print(f"{n_genes:>6} genes: non-zero {frac:6.1%}  dense {d:9,.0f} B  sparse {s:9,.0f} B"
              f"  sparse/dense {s / d:.2f}")
    lo, hi = 0.0, 1.0
    for _ in range(20):
        mid = (lo + hi) / 2
        v = np.where(rng.random(20_000) < mid, 1.5, 0.0)
        d, s = stored_bytes(v)
        lo, hi = (mid, hi) if s < d else (lo, mid)
    print(f"sparse is smaller below {lo:.1%} non-zero entries (20,000 genes)")
    low = memory_of_one_experiment(n_cells=1_000)
    high = memory_of_one_experiment(n_cells=2_000)
    print(f"each further entry: {(high[0] - low[0]) / (high[1] - low[1]):.1f} bytes of peak")


def memory_of_one_experiment(n_genes: int = 20_000, n_cells: int = 2_000,
                             density: float = 0.05) -> tuple[int, int]:
    import tempfile
    import tracemalloc
    from pathlib import Path

    from medshard.sources import get_source

    rng = np.random.default_rng(1)
    real = pbmc().counts[pbmc().counts > 0]
    per_cell = int(n_genes * density)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "scxa"
        folder = root / "E-BENCH-1"
        folder.mkdir(parents=True)
        base = folder / "E-BENCH-1.aggregated_filtered_normalised_counts.mtx"
        with open(base, "w") as f:
            f.write("%%MatrixMarket matrix coordinate real general\n%\n")
            f.write(f"{n_genes} {n_cells} {per_cell * n_cells}\n")
            for j in range(n_cells):
                genes = np.sort(rng.choice(n_genes, per_cell, replace=False)) + 1
                vals = rng.choice(real, per_cell)
                f.write("".join(f"{g} {j + 1} {v:.4g}\n" for g, v in zip(genes, vals,
                                                                        strict=True)))
        genes = [f"ENSG9{i:010d}" for i in range(n_genes)]
        Path(f"{base}_rows").write_text("".join(f"{g}\t{g}\n" for g in genes))
        cells = [f"c{j}" for j in range(n_cells)]
        Path(f"{base}_cols").write_text("".join(f"{c}\n" for c in cells))
        (folder / "ExpDesign-E-BENCH-1.tsv").write_text(
            "Assay\tSample Characteristic[organism]\n"
            + "".join(f"{c}\tHomo sapiens\n" for c in cells))
        src = get_source("expression-atlas-scrna")
        (record,) = [r for r in src.list_records(root) if hasattr(r, "record_id")]
        tracemalloc.start()
        n = sum(1 for _ in src.load(record, root))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        entries = per_cell * n_cells
        print(f"one experiment, {entries:,} entries in {base.stat().st_size / 2**20:.0f} MiB "
              f"of text, {n:,} cells: peak {peak / 2**20:.0f} MiB traced, "
              f"{peak / entries:.1f} bytes per entry")
        return peak, entries


if __name__ == "__main__":
    main()
