"""PDB protein structures (MultiMed's "PDB proteins"): wwPDB mmCIF entries, coordinates and sequence.

Raw layout (the wwPDB archive, as rsync/https mirrors of `pub/pdb/data/structures/divided/
mmCIF/` ship it): `mmCIF/<mid2>/<id>.cif.gz`, `<mid2>` the middle two characters of the
four-character PDB id (`o2/3o21.cif.gz`); plain `<id>.cif` / `<id>.cif.gz` files anywhere
under the source folder are read the same way. Optionally, at the top of the folder, the
RCSB's sequence clusters `clusters-by-entity-<N>.txt` (N = 30, 40, 50, 70, 90, 95, 100 %
identity): one cluster per line, its members `<PDBID>_<entity id>` separated by spaces.

Facts and where they came from: the divided layout and gzip: the wwPDB archive's own
folder structure; mmCIF syntax and the categories read (`atom_site`, `entity`,
`entity_poly.pdbx_seq_one_letter_code_can`, `exptl`, `refine`): the PDBx/mmCIF dictionary
(mmcif.wwpdb.org); the clusters file (members by polymer entity, computed with MMseqs2,
largest cluster first): the RCSB's sequence-clustering page. **Unconfirmed**: what MultiMed
took from the PDB. Its paper gives 131,487 samples and the task "protein structure
prediction" scored by TM-score, cites Berman et al. 2000, and publishes no entry list or
split; this adapter reads every entry it finds.

What `load` yields, one sample per entry (task `structure prediction`, no classes):
  - `coords` (`coords.npy`): float32 N x 3, Cartesian coordinates in Angstrom of every
    atom of the first model (`pdbx_PDB_model_num` smallest), first alternate location
    only (blank or the first `label_alt_id` of each atom), in file order;
  - `atoms` (`atoms.txt`): the companion table, UTF-8 tab-separated with a header, row i
    describing atom i of `coords`: group (ATOM/HETATM), atom name, element, residue name,
    chain (`label_asym_id`), entity, residue number (`label_seq_id`, empty for
    non-polymers), author chain and residue number, occupancy, B-factor;
  - `sequence` (`sequence.txt`): FASTA of the polymer entities, header `>ID_entity
    type chains`, the canonical one-letter sequence (`pdbx_seq_one_letter_code_can`,
    line breaks removed).
`meta`: experimental method, resolution (`refine.ls_d_res_high`, null when none), model
count, atom counts, each polymer entity's id, type, length, chains and EC numbers, and the
split cluster. Author names, citations and dates stay out.

Split: by sequence cluster when the clusters file is present (option `identity`, default
30 %): entries in one cluster never straddle splits. `split_by = first-entity` keys each
entry by the cluster of its first polymer entity (what chain-level benchmarks do);
`linked` joins every entry that shares any cluster with another (no leakage through any
chain; complexes can chain much of the PDB into one unit). Without the file: keyed hash
of the entry id, and the manifest says so through `meta.cluster` = null.
Broken records: a file that does not gunzip or parse (truncated), an entry with no atom
coordinates or with non-numeric ones, an entry with no polymer entity: quarantined. A
clusters-file token that is not `<id>_<entity>` is a bad row at listing.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from medshard.formats.mmcif import CifError, read_mmcif
from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source, SourceOptions

_ENTRY = re.compile(r"^(?:pdb_0000)?([0-9][a-z0-9]{3})\.cif(?:\.gz)?$", re.IGNORECASE)
_MEMBER = re.compile(r"^([0-9][A-Za-z0-9]{3})_(\d+)$")
ATOM_COLUMNS = ("group", "atom", "element", "residue", "chain", "entity", "seq_id",
                "auth_chain", "auth_seq_id", "occupancy", "b_factor")


class PDBOptions(SourceOptions):
    identity: Literal[30, 40, 50, 70, 90, 95, 100] = Field(
        30, description="sequence identity (%) of the RCSB clusters file the split uses "
        "(clusters-by-entity-<identity>.txt)")
    split_by: Literal["first-entity", "linked"] = Field(
        "first-entity", description="first-entity: the cluster of the entry's first polymer "
        "entity; linked: entries sharing any cluster stay together")


def _float(value: str | None, what: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RecordError(f"{what} {value!r} is not a number") from None


def first_model_atoms(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The atoms of the first model, each at its first alternate location."""
    if not rows:
        return []
    models = [int(r.get("pdbx_PDB_model_num") or 1) for r in rows]
    first = min(models)
    out, seen_alt = [], {}
    for r, m in zip(rows, models, strict=True):
        if m != first:
            continue
        alt = r.get("label_alt_id")
        if alt is not None:
            site = (r.get("label_asym_id"), r.get("label_seq_id"), r.get("auth_seq_id"),
                    r.get("label_atom_id"), r.get("pdbx_PDB_ins_code"))
            if seen_alt.setdefault(site, alt) != alt:
                continue
        out.append(r)
    return out


def _cell(v: Any) -> str:
    return "" if v is None else str(v).replace("\t", " ")


def fasta(entry_id: str, polymers: list[dict[str, Any]]) -> str:
    lines = []
    for p in polymers:
        lines.append(f">{entry_id}_{p['entity_id']} {p['type']} chains={p['chains']}")
        lines.append(p["sequence"])
    return "\n".join(lines) + "\n"


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class PDBProteins(Source):
    payload_members = ("coords.npy", "atoms.txt", "sequence.txt")
    Options = PDBOptions
    info: ClassVar[SourceInfo] = SourceInfo(
        name="pdb-proteins",
        title="Protein Data Bank entries (mmCIF): atom coordinates and sequences",
        version="wwPDB archive (divided mmCIF), as downloaded",
        modality="protein",
        tasks=["structure prediction"],
        license=License(name="CC0-1.0", spdx="CC0-1.0",
                        url="https://www.wwpdb.org/about/usage-policies",
                        terms_version="wwPDB usage policies"),
        access="open",
        homepage="https://www.wwpdb.org/ftp/pdb-ftp-sites",
        citation="Berman HM, Westbrook J, Feng Z, Gilliland G, Bhat TN, Weissig H, Shindyalov "
        "IN, Bourne PE. The Protein Data Bank. Nucleic Acids Research 28(1):235-242, 2000.",
        label_space=[],
        split_policy="keyed hash of the entry's RCSB sequence cluster (30% identity by "
        "default) when clusters-by-entity-<N>.txt is present, else of the entry id",
        split_unit="sequence cluster",
        published_counts=PublishedCounts(
            train=None, test=None, unit="entries",
            reference="MultiMed gives 131,487 samples and no split or entry list"),
        release_notes={"0.1.0": "first medshard adapter: first model, first alternate "
                       "locations; coordinates, atom table and FASTA; cluster-keyed split"},
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://www.wwpdb.org/ftp/pdb-ftp-sites",
        steps=[
            "Mirror the entries you want from the wwPDB archive's divided mmCIF folder "
            "(pub/pdb/data/structures/divided/mmCIF/, e.g. with rsync as the page above "
            "describes), keeping its <mid2>/<id>.cif.gz layout, into mmCIF/ under the folder "
            "named below.",
            "Optionally download the RCSB's sequence clusters clusters-by-entity-30.txt "
            "(RCSB PDB, 'Sequence Clusters' download page) into the same folder, for the "
            "cluster-keyed split.",
        ],
    ))
    fixture: ClassVar[str | None] = "medshard.sources.structures.pdb_proteins_fixture:FIXTURE"

    def clusters_rel(self) -> str:
        return f"clusters-by-entity-{self._options['identity']}.txt"

    def label_files(self, root: Path) -> list[str]:
        rel = self.clusters_rel()
        return [rel] if (root / rel).is_file() else []

    def _entries(self, root: Path) -> list[tuple[str, str]]:
        found = []
        for path in root.rglob("*.cif*"):
            m = _ENTRY.match(path.name)
            if m:
                found.append((m.group(1).lower(), path.relative_to(root).as_posix()))
        return sorted(found)

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not self._entries(root):
            raise MissingRawData(f"pdb-proteins: no <id>.cif or <id>.cif.gz under {root}; "
                                 "mirror the wwPDB divided mmCIF folder there")

    def _clusters(self, root: Path) -> tuple[dict[str, list[int]], list[BadRow]]:
        """PDB id (lower case) -> cluster line numbers of its entities, in entity order."""
        rel = self.clusters_rel()
        out: dict[str, list[tuple[int, int]]] = {}
        bad: list[BadRow] = []
        if not (root / rel).is_file():
            return {}, bad
        with open(self.path(root, rel), encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                for token in line.split():
                    m = _MEMBER.match(token)
                    if m is None:
                        bad.append(BadRow(rel, number, f"{token[:30]!r} is not <PDBID>_<entity>"))
                        break
                    out.setdefault(m.group(1).lower(), []).append((int(m.group(2)), number))
        return {k: [c for _, c in sorted(v)] for k, v in out.items()}, bad

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per entry file; the clusters file (if any) gives its split unit."""
        self.check_root(root)
        clusters, bad = self._clusters(root)
        yield from bad
        entries = self._entries(root)
        unit: dict[str, str | None] = {}
        if self._options["split_by"] == "linked":
            uf = UnionFind()
            for entry_id, _ in entries:
                for c in clusters.get(entry_id, []):
                    uf.union(f"e:{entry_id}", f"c:{c}")
            unit = {e: (uf.find(f"e:{e}") if clusters.get(e) else None) for e, _ in entries}
        else:
            unit = {e: (f"c:{clusters[e][0]}" if clusters.get(e) else None) for e, _ in entries}
        clusters_file = self.clusters_rel() if clusters else None
        seen: dict[str, str] = {}
        for entry_id, rel in entries:
            if entry_id in seen:
                yield BadRow(rel, 1, f"entry {entry_id} is also {seen[entry_id]}; keep one copy",
                             "KeyError")
                continue
            seen[entry_id] = rel
            cluster = unit[entry_id]
            yield RawRecord(
                record_id=entry_id,
                subject_id=cluster or f"e:{entry_id}",
                files=[rel],
                size_bytes=(root / rel).stat().st_size * (6 if rel.endswith(".gz") else 1),
                meta={"cluster": cluster, "clusters_file": clusters_file},
            )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        rel = record.files[0]
        raw = self.read_bytes(root, rel, "mmCIF file")
        try:
            text = (gzip.decompress(raw) if rel.endswith(".gz") else raw).decode("utf-8")
            cif = read_mmcif(text)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
            raise RecordError(f"{rel} does not decompress/decode ({type(exc).__name__}: "
                              f"{str(exc)[:80]}); the file is truncated or broken") from None
        except CifError as exc:
            raise RecordError(f"{rel} is not well-formed mmCIF: {exc}") from None
        entry_id = ((cif.get("entry") or [{}])[0].get("id") or record.record_id).upper()
        atoms = first_model_atoms(cif.get("atom_site", []))
        if not atoms:
            raise RecordError(f"{rel}: no atom coordinates (_atom_site is empty or absent)")
        coords = np.array([[_float(a.get(f"Cartn_{k}"), f"Cartn_{k}") for k in "xyz"]
                           for a in atoms], dtype=np.float64)
        if not np.isfinite(coords).all():
            raise RecordError(f"{rel}: non-finite coordinates")
        chains: dict[str, list[str]] = {}
        for a in atoms:
            ent = a.get("label_entity_id") or ""
            if a.get("label_asym_id") and a["label_asym_id"] not in chains.setdefault(ent, []):
                chains[ent].append(a["label_asym_id"])
        entity_type = {e.get("id"): e.get("type") for e in cif.get("entity", [])}
        ec = {e.get("id"): e.get("pdbx_ec") for e in cif.get("entity", [])}
        polymers = []
        for p in cif.get("entity_poly", []):
            seq = "".join((p.get("pdbx_seq_one_letter_code_can") or "").split())
            if not seq:
                continue
            polymers.append({"entity_id": p.get("entity_id"), "type": p.get("type"),
                             "length": len(seq), "sequence": seq,
                             "chains": ",".join(chains.get(p.get("entity_id") or "", [])),
                             "ec": (ec.get(p.get("entity_id")) or "").split(",")
                             if ec.get(p.get("entity_id")) else []})
        if not polymers:
            raise RecordError(f"{rel}: no polymer entity with a sequence (_entity_poly)")
        table = ["\t".join(ATOM_COLUMNS)] + [
            "\t".join(_cell(a.get(k)) for k in (
                "group_PDB", "label_atom_id", "type_symbol", "label_comp_id", "label_asym_id",
                "label_entity_id", "label_seq_id", "auth_asym_id", "auth_seq_id", "occupancy",
                "B_iso_or_equiv")) for a in atoms]
        resolution = (cif.get("refine") or [{}])[0].get("ls_d_res_high")
        models = {a.get("pdbx_PDB_model_num") for a in cif.get("atom_site", [])}
        yield Sample(
            classes=[],
            source_labels={},
            payloads={
                "coords": Payload("array", coords.astype(np.float32), {}),
                "atoms": Payload("text", "\n".join(table) + "\n",
                                 {"text_kind": "atom table (TSV)", "language": None}),
                "sequence": Payload("text", fasta(entry_id, polymers),
                                    {"text_kind": "FASTA", "language": None}),
            },
            meta={
                "entry_id": entry_id,
                "method": ", ".join(sorted(e.get("method") or "" for e in cif.get("exptl", [])))
                or None,
                "resolution_a": float(resolution) if resolution not in (None, "") else None,
                "models": len(models),
                "atoms": len(atoms),
                "polymer_atoms": sum(1 for a in atoms if a.get("label_seq_id") is not None),
                "entities": [{k: p[k] for k in ("entity_id", "type", "length", "chains", "ec")}
                             for p in polymers],
                "entity_types": sorted({str(t) for t in entity_type.values() if t}),
                "cluster": record.meta["cluster"],
                "clusters_file": record.meta["clusters_file"],
            },
            task="structure prediction",
        )
