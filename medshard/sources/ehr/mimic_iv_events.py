"""MIMIC-IV's event tables partitioned by admission, in bounded memory.

labevents alone is ~120M rows (~15 GB as CSV): no admission may cost a scan of it, and no
process may hold it. One streaming pass over each event table (row by row, gzip as shipped)
writes every row that belongs to a listed admission into a temporary SQLite file, already
as an offset from that admission's admittime (hours): the store never holds a calendar
date. An index on hadm_id then gives any admission's events in one look-up. Memory is the
admission -> admittime map, the item dictionaries and one insert batch, whatever the size
of the tables (benchmarks/mimic_iv_events.py measures it).

The store lives in a temporary directory of the process that built it and is deleted when
the process exits; a process (a Beam worker) builds its own on its first admission.
"""

from __future__ import annotations

import atexit
import csv
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

OpenTable = Callable[[str], AbstractContextManager[IO[str]]]
EPOCH = datetime(1, 1, 1)
BATCH_ROWS = 20_000

EVENT_TABLES = ("labevents", "chartevents", "prescriptions", "icustays")
CODE_TABLES = ("diagnoses_icd", "procedures_icd")
REQUIRED = {
    "labevents": ("hadm_id", "itemid", "charttime", "value", "valuenum", "valueuom"),
    "chartevents": ("hadm_id", "itemid", "charttime", "value", "valuenum", "valueuom"),
    "prescriptions": ("hadm_id", "starttime", "drug"),
    "icustays": ("hadm_id", "intime", "outtime"),
}


class TableError(Exception):
    """An event table that cannot be partitioned (a missing column, a file that stops
    decoding); every admission reading it is quarantined with this message."""


def parse_time(text: str | None) -> float | None:
    """Seconds since year 1 of a MIMIC timestamp ('2150-03-15 08:00:00'); None if blank or
    not a timestamp. Only differences of these ever leave this module."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return (datetime.fromisoformat(text) - EPOCH).total_seconds()
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return v if v == v and v not in (float("inf"), float("-inf")) else None


def _text(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def _rows(open_table: OpenTable, rel: str) -> Iterator[dict[str, str]]:
    """Each row of a small table as a dict (dictionaries, admissions)."""
    header, rows = None, _lists(open_table, rel)
    for row in rows:
        if header is None:
            header = row
        elif len(row) == len(header):
            yield dict(zip(header, row, strict=True))


def _lists(open_table: OpenTable, rel: str) -> Iterator[list[str]]:
    """Each row of a table as a list, the header first; a row with the wrong number of
    cells belongs to no admission that can be named and is skipped."""
    with open_table(rel) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        yield header
        n = len(header)
        for row in reader:
            if len(row) == n:
                yield row


class _Clock:
    """parse_time with a bounded cache: a table repeats each timestamp many times (one
    specimen's labs, one charting round), so most rows cost a dict look-up."""

    def __init__(self, limit: int = 1 << 16) -> None:
        self.cache: dict[str, float | None] = {}
        self.limit = limit

    def __call__(self, text: str) -> float | None:
        t = self.cache.get(text, ...)
        if t is ...:
            if len(self.cache) >= self.limit:
                self.cache.clear()
            t = self.cache[text] = parse_time(text)
        return t  # type: ignore[return-value]


@dataclass
class EventStore:
    """A read-only handle on a built store (a path: safe to share between threads)."""

    path: Path

    def _query(self, sql: str, args: tuple) -> list[tuple]:
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def events(self, hadm_id: int) -> list[tuple]:
        """(time_h or None, code, kind, name, value, text, unit) in time order (ties in
        table then file order; undated rows last)."""
        return self._query(
            "SELECT t, code, kind, name, value, text, unit FROM events WHERE hadm = ? "
            "ORDER BY t IS NULL, t, tab, row", (hadm_id,))

    def codes(self, hadm_id: int) -> list[tuple]:
        """(kind, seq_num, icd_code, icd_version, title) of the admission's billed codes."""
        return self._query(
            "SELECT kind, seq, code, version, title FROM codes WHERE hadm = ? "
            "ORDER BY kind, seq, row", (hadm_id,))


def _dictionary(open_table: OpenTable, rel: str | None, key: str, label: str) -> dict[str, str]:
    if rel is None:
        return {}
    return {r[key].strip(): r[label].strip() for r in _rows(open_table, rel)}


def build_event_store(open_table: OpenTable, tables: dict[str, str], dest: Path) -> EventStore:
    """Partition the event tables named in `tables` (name -> relative path) by admission
    into a new SQLite file `dest`; offsets from each admission's admittime, in hours."""
    admit: dict[int, float] = {}
    for r in _rows(open_table, tables["admissions"]):
        hadm, t = r.get("hadm_id", "").strip(), parse_time(r.get("admittime"))
        if hadm.isdigit() and t is not None:
            admit[int(hadm)] = t
    labitems = _dictionary(open_table, tables.get("d_labitems"), "itemid", "label")
    items = _dictionary(open_table, tables.get("d_items"), "itemid", "label")
    icd_titles: dict[str, dict[tuple[str, str], str]] = {}
    for name, dict_name in (("diagnoses_icd", "d_icd_diagnoses"),
                            ("procedures_icd", "d_icd_procedures")):
        rel = tables.get(dict_name)
        icd_titles[name] = {} if rel is None else {
            (r["icd_code"].strip(), r["icd_version"].strip()): r["long_title"].strip()
            for r in _rows(open_table, rel)}

    con = sqlite3.connect(dest)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("CREATE TABLE events (hadm INTEGER, t REAL, tab INTEGER, row INTEGER, "
                "code TEXT, kind TEXT, name TEXT, value REAL, text TEXT, unit TEXT)")
    con.execute("CREATE TABLE codes (hadm INTEGER, kind TEXT, seq INTEGER, row INTEGER, "
                "code TEXT, version TEXT, title TEXT)")

    clock = _Clock()
    admit_by_text = {str(h): (h, t) for h, t in admit.items()}

    def event_rows(tab: int, name: str) -> Iterator[tuple]:
        rows = _lists(open_table, tables[name])
        col = {c: i for i, c in enumerate(next(rows, []))}
        missing = [c for c in REQUIRED[name] if c not in col]
        if missing:
            raise TableError(f"{tables[name]} has no column {', '.join(missing)}: not the "
                             "MIMIC-IV layout (check the file)")
        h = col["hadm_id"]
        if name in ("labevents", "chartevents"):
            prefix, kind = ("lab", "lab") if name == "labevents" else ("chart", "chart")
            names = labitems if name == "labevents" else items
            it, tt, vn, vt = col["itemid"], col["charttime"], col["valuenum"], col["value"]
            vu = col["valueuom"]
            for i, r in enumerate(rows):
                found = admit_by_text.get(r[h])
                if found is None:
                    continue  # outpatient rows (no hadm_id) and admissions not listed
                hadm, t0 = found
                t = clock(r[tt])
                itemid = r[it]
                yield (hadm, None if t is None else (t - t0) / 3600.0, tab, i,
                       f"{prefix}:{itemid}", kind, names.get(itemid), _float(r[vn]),
                       r[vt] or None, r[vu] or None)
        elif name == "prescriptions":
            st, dr, nd = col["starttime"], col["drug"], col.get("ndc")
            dv, du, ro = col.get("dose_val_rx"), col.get("dose_unit_rx"), col.get("route")
            for i, r in enumerate(rows):
                found = admit_by_text.get(r[h])
                if found is None:
                    continue
                hadm, t0 = found
                t = clock(r[st])
                ndc = r[nd].strip() if nd is not None else ""
                drug = _text(r[dr])
                code = f"ndc:{ndc}" if ndc.strip("0") else f"drug:{drug or ''}"
                yield (hadm, None if t is None else (t - t0) / 3600.0, tab, i, code,
                       "medication", drug, _float(r[dv]) if dv is not None else None,
                       _text(r[ro]) if ro is not None else None,
                       _text(r[du]) if du is not None else None)
        elif name == "icustays":
            spans = ((col["intime"], "in", col.get("first_careunit")),
                     (col["outtime"], "out", col.get("last_careunit")))
            for i, r in enumerate(rows):
                found = admit_by_text.get(r[h])
                if found is None:
                    continue
                hadm, t0 = found
                for j, (tc, what, uc) in enumerate(spans):
                    t = clock(r[tc])
                    yield (hadm, None if t is None else (t - t0) / 3600.0, tab, 2 * i + j,
                           f"icu:{what}", "icu", _text(r[uc]) if uc is not None else None,
                           None, None, None)

    def code_rows(name: str) -> Iterator[tuple]:
        kind = "diagnosis" if name == "diagnoses_icd" else "procedure"
        for i, r in enumerate(_rows(open_table, tables[name])):
            hadm_text = r.get("hadm_id", "").strip()
            if not hadm_text.isdigit() or int(hadm_text) not in admit:
                continue
            seq = (r.get("seq_num") or "").strip()
            code, version = r["icd_code"].strip(), r["icd_version"].strip()
            yield (int(hadm_text), kind, int(seq) if seq.isdigit() else None, i, code,
                   version, icd_titles[name].get((code, version)))

    def insert(sql: str, rows: Iterator[tuple]) -> None:
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                con.executemany(sql, batch)
                batch.clear()
        if batch:
            con.executemany(sql, batch)

    for tab, name in enumerate(EVENT_TABLES):
        if name in tables:
            insert("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?)", event_rows(tab, name))
    for name in CODE_TABLES:
        if name in tables:
            insert("INSERT INTO codes VALUES (?,?,?,?,?,?,?)", code_rows(name))
    con.execute("CREATE INDEX events_hadm ON events (hadm)")
    con.execute("CREATE INDEX codes_hadm ON codes (hadm)")
    con.commit()
    con.close()
    return EventStore(dest)


_STORES: dict[Any, EventStore | TableError] = {}
_LOCK = threading.Lock()
_TMP: list[Path] = []


def _cleanup() -> None:
    for d in _TMP:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def cached_event_store(key: Any, open_table: OpenTable, tables: dict[str, str]) -> EventStore:
    """The store of `key` (root, table files and their sizes/mtimes), built once per
    process into a temporary directory removed at exit."""
    with _LOCK:
        store = _STORES.get(key)
        if store is None:
            tmp = Path(tempfile.mkdtemp(prefix="medshard-mimic-iv-"))
            _TMP.append(tmp)
            try:
                store = build_event_store(open_table, tables, tmp / "events.sqlite")
            except (TableError, csv.Error, UnicodeError, EOFError, OSError) as exc:
                # one failed pass, not one per admission: later calls get the same error
                store = TableError(str(exc) if isinstance(exc, TableError) else
                                   f"an event table is unreadable: {type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''}")
                shutil.rmtree(tmp, ignore_errors=True)
            _STORES[key] = store
        if isinstance(store, TableError):
            raise store
        return store
