"""Real expression for the omics fixtures: scanpy's 10x PBMC subset (`pbmc68k_reduced`).

Real: 700 peripheral blood cells x 765 genes from 10x Genomics' 68k PBMC data set as
scanpy 1.11.5 ships it (BSD-3; `raw.X`, log1p of counts per 10,000, turned back into
counts per 10,000 with expm1), their barcodes and their bulk cell-type labels.
Illustrative: the Ensembl ids. The file carries gene symbols only, and no symbol ->
Ensembl table ships offline, so gene i of the sorted symbols gets `ENSG9` + i in 10
digits: the Ensembl pattern, in a range (`ENSG9...`) no real human gene id uses, so an
illustrative id can never be mistaken for a real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from medshard.testing import realdata


@dataclass(frozen=True)
class Pbmc:
    symbols: tuple[str, ...]
    ensembl: tuple[str, ...]  # illustrative, see the module docstring
    barcodes: tuple[str, ...]
    cell_types: tuple[str, ...]
    counts: np.ndarray  # cells x genes float64, counts per 10,000


@lru_cache(maxsize=1)
def pbmc() -> Pbmc:
    import h5py

    with h5py.File(realdata.get("scanpy-pbmc68k-reduced"), "r") as f:
        symbols = [s.decode() for s in f["raw.var"]["index"]]
        data, indices, indptr = (f["raw.X"][k][:] for k in ("data", "indices", "indptr"))
        obs = f["obs"][:]
        names = [c.decode() for c in f["uns/bulk_labels_categories"][:]]
    dense = np.zeros((len(indptr) - 1, len(symbols)))
    for i in range(len(indptr) - 1):
        dense[i, indices[indptr[i]:indptr[i + 1]]] = np.expm1(data[indptr[i]:indptr[i + 1]])
    rank = {s: i for i, s in enumerate(sorted(symbols))}
    return Pbmc(
        symbols=tuple(symbols),
        ensembl=tuple(f"ENSG9{rank[s] + 1:010d}" for s in symbols),
        barcodes=tuple(b.decode() for b in obs["index"]),
        cell_types=tuple(names[i] for i in obs["bulk_labels"]),
        counts=dense,
    )


def cells_of(cell_type: str, n: int, skip: int = 0) -> list[int]:
    """The first `n` cells of a type after `skip` of them (deterministic)."""
    p = pbmc()
    return [i for i, t in enumerate(p.cell_types) if t == cell_type][skip:skip + n]
