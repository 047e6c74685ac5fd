"""Bytes of one expression vector stored dense (`.npy`) and sparse (`.npz` indices, values,
missing), through medshard's own vector encoder, on real single-cell expression.

Cells: scanpy's 10x PBMC subset (700 cells x 765 genes, `medshard.sources.omics.pbmc`).
Two gene indexes: the file's 765 genes (an index of highly variable genes, denser than a
whole transcriptome), and a 20,000-gene index (a human protein-coding transcriptome) in
which the cell's 765 genes are measured and the rest measured zero, the shape of a
Single Cell Expression Atlas matrix over all genes. Run by hand:

    python benchmarks/expression_storage.py

Prints median bytes per cell each way, the median fraction of non-zero entries, and the
density at which sparse storage stops paying (measured by bisection on synthetic cells).
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


if __name__ == "__main__":
    main()
