"""PDB proteins: coordinates, atom table and sequences against gemmi (the PDB's own C++
mmCIF library), the cluster-keyed split, and broken entries quarantined."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import gemmi
import numpy as np
import pytest
import torch

from medshard.formats.mmcif import CifError, read_mmcif
from medshard.loaders import ShardDataset
from medshard.pipeline.build import BuildConfig, run_build
from medshard.sources import get_source
from medshard.sources.structures.pdb_proteins import first_model_atoms
from medshard.sources.structures.pdb_proteins_fixture import AUTHOR_MARKER, write_fixture


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    write_fixture(raw / "pdb-proteins")
    out = tmp_path_factory.mktemp("out")
    run_build(BuildConfig(sources=["pdb-proteins"], data_root=raw, out=out,
                          formats=("webdataset", "parquet"), progress=False))
    return raw / "pdb-proteins", out


def gemmi_view(path: Path) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """(first-model coordinates, atom names, entity id -> canonical sequence) by gemmi."""
    doc = gemmi.cif.read(str(path))
    block = doc.sole_block()
    st = gemmi.make_structure_from_block(block)
    st.remove_alternative_conformations()
    xyz, names = [], []
    for chain in st[0]:
        for res in chain:
            for atom in res:
                xyz.append(atom.pos.tolist())
                names.append(atom.name)
    poly = block.find("_entity_poly.", ["entity_id", "pdbx_seq_one_letter_code_can"])
    seqs = {row[0]: "".join(gemmi.cif.as_string(row[1]).split()) for row in poly}
    return np.array(xyz), names, seqs


@pytest.mark.parametrize("entry", ["3o21", "7cth", "9zz1"])
def test_coordinates_atoms_and_sequence_equal_gemmi(built, entry) -> None:
    root, out = built
    rel = f"mmCIF/{entry[1:3]}/{entry}.cif.gz"
    xyz, names, seqs = gemmi_view(root / rel)
    for fmt in ("webdataset", "parquet"):
        (s,) = [s for s in ShardDataset(str(out), split=None, shuffle=False, format=fmt)
                if s["key"] == f"pdb-proteins_{entry}"]
        coords = s["coords"].numpy()
        # gemmi orders atoms by chain and residue; the file (and medshard) by atom id
        order = np.lexsort((coords[:, 2], coords[:, 1], coords[:, 0]))
        gorder = np.lexsort((xyz[:, 2], xyz[:, 1], xyz[:, 0]))
        np.testing.assert_allclose(coords[order], xyz[gorder].astype(np.float32), atol=1e-3)
        table = s["atoms"].splitlines() if isinstance(s["atoms"], str) else \
            bytes(s["atoms"]).decode().splitlines()
        assert sorted(row.split("\t")[1] for row in table[1:]) == sorted(names)
        fasta = s["sequence"] if isinstance(s["sequence"], str) else bytes(s["sequence"]).decode()
        got = dict(zip([h.split()[0].split("_")[1] for h in fasta.splitlines()[::2]],
                       fasta.splitlines()[1::2], strict=True))
        assert got == seqs
        assert s["meta"]["payloads"]["coords"]["shape"] == [len(xyz), 3]
        assert torch.is_tensor(s["coords"]) and s["coords"].dtype == torch.float32


def test_entries_of_one_cluster_share_a_split(built) -> None:
    root, out = built
    records = {r.record_id: r for r in get_source("pdb-proteins").list_records(root)
               if hasattr(r, "record_id")}
    assert records["3o21"].subject_id == records["9zz1"].subject_id == "c:2"
    assert records["7cth"].subject_id == "c:1"
    splits = {s["key"]: s["split"] for s in ShardDataset(str(out), split=None, shuffle=False)}
    assert splits["pdb-proteins_3o21"] == splits["pdb-proteins_9zz1"]
    linked = {r.record_id: r.subject_id for r in
              get_source("pdb-proteins", split_by="linked").list_records(root)
              if hasattr(r, "record_id")}
    assert linked["3o21"] == linked["9zz1"] != linked["7cth"]


def test_broken_entries_are_quarantined_and_authors_never_leave(built) -> None:
    _, out = built
    lines = [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]
    msg = {q["record_id"]: q["message"] for q in lines}
    assert "truncated" in msg["9zz2"] and "no atom coordinates" in msg["9zz3"]
    assert "values for" in msg["9zz4"]
    for path in out.rglob("*"):
        if path.is_file():
            assert AUTHOR_MARKER.encode() not in path.read_bytes()


def test_first_model_and_first_alternate_location_only() -> None:
    def atom(model, alt, name="CA", seq="1", x="1.0"):
        return {"pdbx_PDB_model_num": model, "label_alt_id": alt, "label_atom_id": name,
                "label_asym_id": "A", "label_seq_id": seq, "auth_seq_id": seq,
                "pdbx_PDB_ins_code": None, "Cartn_x": x}
    rows = [atom("1", "A", x="1"), atom("1", "B", x="2"), atom("1", None, "CB"),
            atom("2", None, "CA"), atom("1", "B", "CG", x="3")]
    kept = first_model_atoms(rows)
    assert [(r["label_atom_id"], r["Cartn_x"]) for r in kept] == [("CA", "1"), ("CB", "1.0"),
                                                                   ("CG", "3")]


def test_mmcif_reader_matches_gemmi_on_every_category_of_a_real_entry(built) -> None:
    root, _ = built
    text = gzip.decompress((root / "mmCIF/ct/7cth.cif.gz").read_bytes()).decode()
    ours = read_mmcif(text)
    block = gemmi.cif.read_string(text).sole_block()
    for category, rows in ours.items():
        table = block.find_mmcif_category(f"_{category}.")
        assert len(table) == len(rows), category
        tags = [t.split(".", 1)[1] for t in table.tags]
        for row, grow in zip(rows, table, strict=True):
            for tag, value in zip(tags, grow, strict=True):
                want = None if value in (".", "?") else gemmi.cif.as_string(value)
                assert row[tag] == want, (category, tag)


@pytest.mark.parametrize("text", ["_entry.id 1ABC\n", "data_x\nloop_\n_a.b\n_a.c\n1 2 3\n",
                                  "data_x\n_a.b\n;text never closed\n"])
def test_mmcif_reader_refuses_broken_text(text) -> None:
    with pytest.raises(CifError):
        read_mmcif(text)
