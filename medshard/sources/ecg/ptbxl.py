"""PTB-XL: 21,837 clinical 12-lead ECGs (10 s) from 18,885 patients, PhysioNet 1.0.3.

Raw layout (as PhysioNet ships it):
    ptbxl_database.csv     one row per ECG (ecg_id, patient_id, age, sex, ..., scp_codes,
                           strat_fold, filename_lr, filename_hr)
    scp_statements.csv     SCP-ECG statements: code (first column), diagnostic / form /
                           rhythm flags, diagnostic_class (NORM, MI, STTC, CD, HYP)
    records500/NNNNN/NNNNN_hr.{hea,dat}   WFDB, 500 Hz  (preferred)
    records100/NNNNN/NNNNN_lr.{hea,dat}   WFDB, 100 Hz  (fallback)

Labels. `source_labels` keeps `scp_codes` verbatim, as [{"statement", "likelihood"}]. Classes
(multi-label) follow the `label_policy` option:
  - "climb" (default): CLIMB's 7 ECG classes from its statement -> class table (BenchMD's
    `generate_labels.py`, which CLIMB's ECG code reads), statement by statement: NORM,
    CD, HYP, MI, STTC, AFIB and AFLT (two classes here; CLIMB's merged "A. Fib/Aflutter"
    is a loader label view), OTHER. `CLIMB_STATEMENT_CLASS` below is that table with three
    documented departures (docs/vocabulary.md): the sinus rhythms SR, SARRH, SBRAD and
    STACH give no class (CLIMB calls them Normal, but a rhythm statement never makes an
    ECG normal on its own: a record whose statements are STD_ and SR is STTC only);
    INVT (inverted T waves) is STTC, not MI (the same table files the SNOMED code for
    T-wave inversion under STTC); INJIN, missing from the table, is MI as PTB-XL files it.
  - "ptbxl-superclass": PTB-XL's five official diagnostic superclasses (NORM, MI, STTC,
    CD, HYP): the `diagnostic_class` of every diagnostic statement the record lists
    (scp_statements.csv `diagnostic == 1`), as in the PTB-XL benchmark code; form and
    rhythm statements give no class, and the build's label mask covers only the five.
`min_likelihood` drops diagnostic statements listed with a lower likelihood. It never
applies to form and rhythm statements: PTB-XL gives those likelihood 0, meaning "unknown".

Split: PTB-XL's own `strat_fold` (1-8 train, 9 val, 10 test), never a random split.
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from medshard.formats.wfdb import read_record
from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import Source, SourceOptions

DIAGNOSTIC_CLASSES = ("NORM", "MI", "STTC", "CD", "HYP")

# CLIMB's PTB-XL statement -> class table (BenchMD src/datasets/ecg/generate_labels.py:
# lists normal, cd, hyp, mi, sttc, afib, other), restricted to PTB-XL's 71 statements.
# None: the statement gives no class (it stays in source_labels). Departures from the
# table are marked; docs/vocabulary.md prints this table and says why.
CLIMB_STATEMENT_CLASS: dict[str, str | None] = {
    "NORM": "NORM",
    # sinus rhythms: CLIMB "normal"; here no class (a rhythm alone is not a normal ECG)
    "SR": None, "SARRH": None, "SBRAD": None, "STACH": None,
    # conduction disturbance
    "1AVB": "CD", "2AVB": "CD", "3AVB": "CD", "CLBBB": "CD", "CRBBB": "CD", "ILBBB": "CD",
    "IRBBB": "CD", "IVCD": "CD", "LAFB": "CD", "LPFB": "CD", "LPR": "CD", "PSVT": "CD",
    "SVARR": "CD", "SVTAC": "CD", "WPW": "CD",
    # hypertrophy
    "LAO/LAE": "HYP", "LVH": "HYP", "RAO/RAE": "HYP", "RVH": "HYP", "SEHYP": "HYP",
    "VCLVH": "HYP",
    # myocardial infarction (INJIN: not in CLIMB's table; PTB-XL's diagnostic class MI)
    "ALMI": "MI", "AMI": "MI", "ASMI": "MI", "ILMI": "MI", "IMI": "MI", "INJAL": "MI",
    "INJAS": "MI", "INJIL": "MI", "INJIN": "MI", "INJLA": "MI", "IPLMI": "MI", "IPMI": "MI",
    "LMI": "MI", "PMI": "MI",
    # ST/T change (INVT: CLIMB's table says MI; T-wave inversion is an ST/T change)
    "ANEUR": "STTC", "DIG": "STTC", "EL": "STTC", "INVT": "STTC", "ISC_": "STTC",
    "ISCAL": "STTC", "ISCAN": "STTC", "ISCAS": "STTC", "ISCIL": "STTC", "ISCIN": "STTC",
    "ISCLA": "STTC", "LNGQT": "STTC", "NDT": "STTC", "NST_": "STTC", "NT_": "STTC",
    "STD_": "STTC", "STE_": "STTC", "TAB_": "STTC",
    # atrial fibrillation and flutter: two classes (CLIMB merges them into one)
    "AFIB": "AFIB", "AFLT": "AFLT",
    # other
    "ABQRS": "OTHER", "BIGU": "OTHER", "HVOLT": "OTHER", "LOWT": "OTHER", "LVOLT": "OTHER",
    "PAC": "OTHER", "PACE": "OTHER", "PRC(S)": "OTHER", "PVC": "OTHER", "QWAVE": "OTHER",
    "TRIGU": "OTHER",
}

# Allow-listed metadata columns; staff ids (nurse, validated_by), dates and the free-text
# report never leave the source.
def _scp_list(text: str) -> list[dict[str, Any]]:
    """`scp_codes` ("{'NORM': 100.0, 'SR': 0.0}") as [{"statement", "likelihood"}] in file
    order: a list of objects, not a map keyed by statement, so every sample has one JSON
    type (readers that infer a schema refuse a map whose keys differ per sample)."""
    codes = ast.literal_eval(text or "{}")
    if not isinstance(codes, dict):
        raise ValueError(f"scp_codes {text[:40]!r} is not a dict literal")
    return [{"statement": str(k), "likelihood": float(v)} for k, v in codes.items()]


META_COLUMNS = {
    "age": float,
    "height": float,
    "weight": float,
    "heart_axis": str,
    "pacemaker": str,
    "baseline_drift": str,
    "static_noise": str,
    "burst_noise": str,
    "electrodes_problems": str,
    "extra_beats": str,
    "validated_by_human": str,
    "second_opinion": str,
    "initial_autogenerated_report": str,
    "site": lambda v: str(int(float(v))),  # the recording site's number, as a code
}


def _fold_split(fold: int) -> str:
    if 1 <= fold <= 8:
        return "train"
    if fold == 9:
        return "val"
    if fold == 10:
        return "test"
    raise ValueError(f"strat_fold {fold} outside 1..10")


def _number(text: str) -> str:
    """`15709.0` -> `15709` (patient ids are written as floats in the CSV)."""
    text = text.strip()
    return text[:-2] if text.endswith(".0") else text


class PTBXLOptions(SourceOptions):
    prefer_rate: Literal[500, 100] = Field(
        500, description="read records500/ (500 Hz) or records100/ first; the other is the fallback"
    )
    min_likelihood: float = Field(
        0.0, ge=0.0, le=100.0, strict=True,
        description="drop diagnostic statements listed with a lower likelihood; form and "
        "rhythm statements are always kept (their 0 means unknown)",
    )
    label_policy: Literal["climb", "ptbxl-superclass"] = Field(
        "climb", description="climb: CLIMB's statement table; ptbxl-superclass: PTB-XL's 5 "
        "diagnostic superclasses",
    )


class PTBXL(Source):
    payload_members = ("signal.npy",)
    required_files = ("ptbxl_database.csv", "scp_statements.csv")
    root_hint = "download PTB-XL 1.0.3 from PhysioNet (`medshard download ptb-xl`)"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="ptb-xl",
        title="PTB-XL, a large publicly available electrocardiography dataset",
        version="1.0.3",
        modality="ecg",
        tasks=["multi-label classification"],
        license=License(
            name="Creative Commons Attribution 4.0 International",
            spdx="CC-BY-4.0",
            url="https://physionet.org/content/ptb-xl/view-license/1.0.3/",
            terms_version="1.0.3",
        ),
        access="open",
        homepage="https://physionet.org/content/ptb-xl/1.0.3/",
        citation=(
            "Wagner P, Strodthoff N, Bousseljot R-D, et al. PTB-XL, a large publicly available "
            "electrocardiography dataset. Scientific Data 7, 154 (2020)."
        ),
        label_space=["NORM", "CD", "HYP", "MI", "STTC", "AFIB", "AFLT", "OTHER"],
        split_policy="PTB-XL strat_fold: folds 1-8 train, 9 val, 10 test",
        release_notes={
            "0.1.0": "first medshard adapter, PTB-XL 1.0.3",
            "0.2.0": "CLIMB's statement -> class table (label_policy=climb) and PTB-XL's "
            "superclasses (label_policy=ptbxl-superclass); AFIB and AFLT separate; "
            "min_likelihood applies to diagnostic statements only",
        },
        published_counts=PublishedCounts(
            train=17476, test=4361, unit="records",
            reference="CLIMB A.2",
        ),
    )
    # Every file of the project, as listed and checksummed by PhysioNet's SHA256SUMS.txt.
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="physionet", project="ptb-xl", version="1.0.3",
        approx_bytes=3_500_000_000,  # generous bound for the disk check (both sampling rates)
    )

    Options = PTBXLOptions
    fixture = "medshard.sources.ecg.ptbxl_fixture:FIXTURE"

    def label_classes(self) -> list[str]:
        if self._options["label_policy"] == "ptbxl-superclass":
            return [c for c in self.info.label_space if c in DIAGNOSTIC_CLASSES]
        return list(self.info.label_space)

    def _load_statements(self, root: Path) -> dict[str, dict[str, str]]:
        with open(self.path(root, "scp_statements.csv"), newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader)
            rows = {}
            for row in reader:
                if row:
                    rows[row[0].strip()] = dict(zip(header[1:], row[1:], strict=False))
        return rows

    def classes_for(self, scp_codes: dict[str, float], statements: dict[str, dict]) -> list[str]:
        """The record's classes under `label_policy` (see the module docstring)."""
        out: set[str] = set()
        min_lh = float(self._options["min_likelihood"])
        superclass = self._options["label_policy"] == "ptbxl-superclass"
        for code, likelihood in scp_codes.items():
            st = statements.get(code)
            if st is None:
                raise RecordError(f"SCP statement {code!r} not in scp_statements.csv")
            diagnostic = st.get("diagnostic", "").strip() in ("1", "1.0")
            if diagnostic and float(likelihood) < min_lh:
                continue
            if superclass:
                cls = st.get("diagnostic_class", "").strip() if diagnostic else ""
                if cls in DIAGNOSTIC_CLASSES:
                    out.add(cls)
                continue
            if code not in CLIMB_STATEMENT_CLASS:
                raise RecordError(f"SCP statement {code!r} has no class in CLIMB's PTB-XL table")
            target = CLIMB_STATEMENT_CLASS[code]
            if target is not None:
                out.add(target)
        return sorted(out)

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        yield from self.csv_records(root, "ptbxl_database.csv", lambda row: self._record(root, row))

    def _record(self, root: Path, row: dict[str, str]) -> RawRecord:
        """One row of ptbxl_database.csv as a record; raises (a bad row) on a malformed cell."""
        prefer_hr = int(self._options["prefer_rate"]) == 500
        ecg_id = int(float(row["ecg_id"]))
        candidates = [row["filename_hr"], row["filename_lr"]]
        if not prefer_hr:
            candidates.reverse()
        base = next((c for c in candidates if (root / f"{c}.hea").exists()), candidates[0])
        files = [f"{base}.hea", f"{base}.dat"]
        dat = root / files[1]
        # every column in every sample, null when blank: one JSON shape per source
        meta: dict[str, Any] = {}
        for col, typ in META_COLUMNS.items():
            v = (row.get(col) or "").strip()
            meta[col] = typ(v) if v else None
        sex = (row.get("sex") or "").strip()
        meta["sex"] = {"0": "M", "1": "F", "0.0": "M", "1.0": "F"}.get(sex, sex) or None
        meta["strat_fold"] = int(float(row["strat_fold"]))
        return RawRecord(
            record_id=f"{ecg_id:05d}",
            subject_id=_number(row["patient_id"]),
            files=files,
            source_labels={"scp_codes": _scp_list(row["scp_codes"])},
            split=_fold_split(meta["strat_fold"]),  # type: ignore[arg-type]
            size_bytes=dat.stat().st_size if dat.is_file() else 0,
            meta=meta,
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        statements = self._statements_for(root)
        scp = {c["statement"]: c["likelihood"] for c in record.source_labels["scp_codes"]}
        classes = self.classes_for(scp, statements)
        try:
            header = self.path(root, record.files[0])
            signal, fields = read_record(header.with_suffix(""),
                                         resolve=lambda p: self.path(root, p))
        except FileNotFoundError as exc:
            raise RecordError(f"missing WFDB file: {Path(exc.filename or record.files[0]).name}"
                              ) from None
        except RecordError:
            raise
        except Exception as exc:  # wfdb's fallback raises many types for broken records
            raise RecordError(f"unreadable WFDB record: {exc}") from None
        expected = int(fields["sig_len"])
        if signal.shape[0] != expected:
            raise RecordError(f"WFDB record has {signal.shape[0]} samples, header says {expected}")
        units = sorted(set(fields["units"]))
        if len(units) != 1:
            raise RecordError(f"mixed units across leads: {units}")
        yield Sample(
            classes=classes,
            source_labels=record.source_labels,
            payloads={
                "signal": Payload(
                    "signal",
                    signal.T,
                    {
                        "sampling_rate_hz": float(fields["fs"]),
                        "channels": list(fields["sig_name"]),
                        "units": units[0],
                    },
                )
            },
            meta=dict(record.meta),
            task="multi-label classification",
        )

    def _statements_for(self, root: Path) -> dict[str, dict[str, str]]:
        cache = self.__dict__.setdefault("_statements_cache", {})
        key = str(root)
        if key not in cache:
            cache[key] = self._load_statements(root)
        return cache[key]

    def estimate_output_bytes(self, record: RawRecord) -> int:
        # 12 leads x 5000 float32 samples (10 s at 500 Hz) + metadata, whatever the raw rate
        return 12 * 5000 * 4 + 2048
