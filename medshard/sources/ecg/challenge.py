"""The PhysioNet/CinC Challenge 2021 12-lead ECG training sets: CPSC 2018, Georgia, Chapman-Shaoxing.

Raw layout (PhysioNet `challenge-2021` 1.0.3, `training/<set>/g<N>/`; the Challenge's own
tarballs `WFDB_CPSC2018.tar.gz`, `WFDB_Ga.tar.gz`, `WFDB_ChapmanShaoxing.tar.gz` that
CLIMB's code downloads unpack to one flat folder of the same files):

    <id>.hea   WFDB header: `<id> 12 500 <n_samples> <date> <time>`, 12 signal lines
               `<id>.mat 16+24 1000/mV 16 0 <first> <checksum> 0 <lead>` (I ... V6), then
               `#Age:`, `#Sex:`, `#Dx:` (comma-separated SNOMED CT codes), `#Rx:`, `#Hx:`, `#Sx:`
    <id>.mat   MATLAB file with one variable `val`, 12 x n_samples int16 (`16+24`: WFDB
               format 16 after the 24-byte MATLAB v4 preamble)

Facts and where they came from: header and `.mat` layout, `#Dx` codes and the example
`A0001.hea` (7,500 samples at 500 Hz): the Challenge 2020 README; every code's name and
how many records of each set carry it: the Challenge's `dx_mapping_scored.csv` and
`dx_mapping_unscored.csv` (physionetchallenges/evaluation-2021); CLIMB reads `val` with
`loadmat` and downloads the three tarballs (DDVD233/CLIMB `src/datasets/ecg/`). Record
lengths: CPSC 2018 6-60 s (its description: CPSC 2018 challenge paper, Liu et al. 2018);
Georgia and Chapman-Shaoxing mostly 10 s. Record-id prefixes (A = CPSC, E = Georgia,
JS = Chapman-Shaoxing) are not relied on: a record is any `<id>.hea` under the root.

Labels. `source_labels["dx"]` keeps the `#Dx` codes verbatim. The classes are those codes;
each maps to concepts through `medshard/schemas/ecg_challenge_snomed.csv`, the reviewed
table of every code the Challenge names (docs/vocabulary.md says why each code maps as it
does). A code takes the class of the PTB-XL statement of the same meaning, never CLIMB's
coarse class: sinus rhythm alone is not Normal, and atrial fibrillation is not CPSC's
"CD". A source's label space is the codes the Challenge counts for that set; a record
with a code outside it is quarantined with the code named.

Windows. The ECG standard is 10 s; a record gives floor(duration / 10 s) consecutive
non-overlapping 10-s windows (key suffix `w00`, `w01`, ...; `window_index` in meta), all
in the record's split. The tail shorter than 10 s after the last full window is dropped
and its length kept in meta (`tail_dropped_s`). A record shorter than 10 s gives one
window that the pipeline pads to 10 s; the signal descriptor keeps its true duration
(`original_duration_s`) and how many samples are real (`valid_samples`).

Split. No set has an official split, and the headers identify no patient, so the split
is the pipeline's keyed hash of the *record* (split_unit "record"); two records of one
patient may land in different splits.

Demographics: `#Age` (number, or absent for NaN) and `#Sex` leave the source; `#Rx`,
`#Hx`, `#Sx` (free text) and the recording date and time never do.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from medshard.errors import UserError
from medshard.formats.challenge_mat import (
    ChallengeFormatError,
    dx_codes,
    parse_comments,
    read_record,
)
from medshard.schemas import License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source

WINDOW_S = 10.0
SNOMED_TABLE = "ecg_challenge_snomed.csv"
CHALLENGE_URL = "https://physionet.org/content/challenge-2021/1.0.3/"
CHALLENGE_CITATION = (
    "Reyna MA, Sadr N, Perez Alday EA, et al. Will Two Do? Varying Dimensions in "
    "Electrocardiography: The PhysioNet/Computing in Cardiology Challenge 2021. "
    "Computing in Cardiology 48 (2021)."
)


@lru_cache(maxsize=1)
def snomed_table() -> tuple[dict[str, str], ...]:
    """The reviewed SNOMED CT -> concept table, one dict per code (all columns as text)."""
    text = resources.files("medshard.schemas").joinpath(SNOMED_TABLE).read_text("utf-8")
    return tuple(csv.DictReader(text.splitlines()))


def codes_of_set(column: str) -> list[str]:
    """The codes the Challenge counts in a set (`cpsc`, `georgia`, `chapman_shaoxing`)."""
    return [row["snomed_ct_code"] for row in snomed_table() if int(row[column]) > 0]


def _age(text: str) -> float | None:
    try:
        age = float(text)
    except ValueError:
        return None
    return age if age == age and 0 <= age < 130 else None  # NaN and impossible ages: absent


def _sex(text: str) -> str | None:
    return {"male": "M", "m": "M", "female": "F", "f": "F"}.get(text.strip().lower())


class ChallengeECG(Source):
    """What the three Challenge sets share; a subclass sets `info`, `set_column` and `folder`."""
    payload_members = ("signal.npy",)

    set_column: ClassVar[str]  # its column in the Challenge's mapping files
    folder: ClassVar[str]  # its folder under training/ in challenge-2021

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not any(root.rglob("*.hea")):
            raise MissingRawData(
                f"{self.info.name}: no .hea record under {root}; put the Challenge's "
                f"training/{self.folder}/ (or the unpacked WFDB tarball) there"
            )

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        """One record per `<id>.hea` under the root, sorted by path; reads headers only."""
        self.check_root(root)
        seen: dict[str, str] = {}
        for hea in sorted(root.rglob("*.hea")):
            rel = hea.relative_to(root).as_posix()
            record_id = hea.stem
            if record_id in seen:
                raise UserError(f"{self.info.name}: {rel} and {seen[record_id]} are both record "
                                f"{record_id}; remove the duplicate copy from the raw tree")
            seen[record_id] = rel
            with open(self.path(root, rel), encoding="utf-8", errors="replace") as f:
                comments = parse_comments(f.read())
            # every key in every sample, null when the header leaves it blank (one JSON shape)
            meta: dict[str, Any] = {"age": _age(comments.get("Age", "")),
                                    "sex": _sex(comments.get("Sex", ""))}
            mat = hea.with_suffix(".mat")
            yield RawRecord(
                record_id=record_id,
                subject_id=record_id,  # the header identifies no patient
                files=[rel, mat.relative_to(root).as_posix()],
                source_labels={"dx": dx_codes(comments)},
                split=None,
                size_bytes=mat.stat().st_size if mat.exists() else 0,
                meta=meta,
            )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        """One sample per 10-s window of the record (see the module docstring)."""
        codes = list(record.source_labels["dx"])
        unknown = [c for c in codes if c not in self.info.label_space]
        if unknown:
            raise RecordError(
                f"#Dx code(s) {', '.join(unknown)} not among the {len(self.info.label_space)} "
                f"codes the Challenge lists for {self.info.name}"
            )
        try:
            signal, header = read_record(self.path(root, record.files[0]),
                                         resolve=lambda p: self.path(root, p))
        except FileNotFoundError as exc:
            raise RecordError(f"missing signal file {Path(exc.filename or '').name}") from None
        except ChallengeFormatError as exc:
            raise RecordError(str(exc)) from None
        units = sorted(set(header.units))
        if len(units) != 1:
            raise RecordError(f"mixed units across leads: {units}")
        win = WINDOW_S * header.fs
        if win != int(win):
            raise RecordError(f"{header.fs} Hz gives no whole number of samples per 10 s")
        win = int(win)
        n = header.n_samples
        n_windows = max(1, n // win)
        duration = n / header.fs
        common = {
            **record.meta,
            "record_duration_s": duration,
            "n_windows": n_windows,
            "window_duration_s": WINDOW_S,
            "tail_dropped_s": (n - n_windows * win) / header.fs if n >= win else 0.0,
        }
        classes = sorted(set(codes))
        for w in range(n_windows):
            yield Sample(
                key_suffix=f"w{w:02d}",
                classes=classes,
                source_labels={"dx": codes},
                payloads={"signal": Payload("signal", signal[:, w * win : (w + 1) * win], {
                    "sampling_rate_hz": header.fs, "channels": header.leads, "units": units[0],
                })},
                meta={**common, "window_index": w, "window_start_s": w * WINDOW_S},
                task="multi-label classification",
            )

    def estimate_output_bytes(self, record: RawRecord) -> int:
        # each window: 12 leads x 5000 float32; a .mat holds ~2 bytes per lead sample at 500 Hz
        windows = max(1, record.size_bytes // (12 * 2 * 5000))
        return windows * (12 * 5000 * 4 + 2048)


def _challenge_download(folder: str) -> DownloadSpec:
    return DownloadSpec(provider="physionet", project="challenge-2021", version="1.0.3",
                        include=[f"training/{folder}/*"])


def _info(name: str, title: str, column: str, *, citation: str, homepage: str,
          published: PublishedCounts, split_note: str = "") -> SourceInfo:
    return SourceInfo(
        name=name,
        title=title,
        version="challenge-2021 1.0.3",
        modality="ecg",
        tasks=["multi-label classification"],
        license=License(
            name="Creative Commons Attribution 4.0 International", spdx="CC-BY-4.0",
            url="https://physionet.org/content/challenge-2021/view-license/1.0.3/",
            terms_version="1.0.3",
        ),
        access="open",
        homepage=homepage,
        citation=f"{citation} {CHALLENGE_CITATION}",
        label_space=codes_of_set(column),
        split_policy="no official split and no patient identity in the headers: keyed hash "
        "of the record id (the build's split fractions, 80/10/10 by default)" + split_note,
        split_unit="record",
        release_notes={"0.1.0": "first medshard adapter: the Challenge 2021 training set, "
                       "SNOMED CT codes through the reviewed table, 10-s windows"},
        published_counts=published,
    )


class CPSC2018(ChallengeECG):
    """CPSC 2018 (the Challenge's WFDB_CPSC2018): 6,877 records, 6-60 s at 500 Hz."""

    set_column = "cpsc"
    folder = "cpsc_2018"
    info = _info(
        "cpsc", "China Physiological Signal Challenge 2018 (PhysioNet/CinC Challenge copy)",
        "cpsc", homepage=CHALLENGE_URL,
        citation="Liu F, Liu C, Zhao L, et al. An open access database for evaluating the "
        "algorithms of electrocardiogram rhythm and morphology abnormality detection. "
        "Journal of Medical Imaging and Health Informatics 8(7):1368-1373 (2018).",
        published=PublishedCounts(
            train=4815, test=1377, unit="records",
            reference="CLIMB A.2, records of CPSC 2018 (6,877 records of 6-60 s; medshard "
            "counts 10-s windows)"),
        split_note="; CLIMB's paper links CPSC 2021 (Holter, 200 Hz) but its numbers and code "
        "come from this 2018 set (SOURCES.md note a)",
    )
    download = _challenge_download("cpsc_2018")
    fixture = "medshard.sources.ecg.challenge_fixture:CPSC_FIXTURE"


class Georgia(ChallengeECG):
    """Georgia 12-lead ECG Challenge database (the Challenge's WFDB_Ga): 10,344 records."""

    set_column = "georgia"
    folder = "georgia"
    info = _info(
        "georgia", "Georgia 12-lead ECG Challenge database (G12EC)", "georgia",
        homepage=CHALLENGE_URL,
        citation="Georgia 12-lead ECG Challenge Database, Emory University, as released in "
        "the PhysioNet/CinC Challenge 2020/2021.",
        published=PublishedCounts(
            train=18622, test=2067, unit="records",
            reference="CLIMB A.2, records (the Challenge copy has 10,344; medshard counts "
            "10-s windows)"),
    )
    download = _challenge_download("georgia")
    fixture = "medshard.sources.ecg.challenge_fixture:GEORGIA_FIXTURE"


class ChapmanShaoxing(ChallengeECG):
    """Chapman University / Shaoxing People's Hospital 12-lead ECGs (WFDB_ChapmanShaoxing)."""

    set_column = "chapman_shaoxing"
    folder = "chapman_shaoxing"
    info = _info(
        "chapman-shaoxing", "Chapman University and Shaoxing People's Hospital 12-lead ECG "
        "database (PhysioNet/CinC Challenge 2021 copy)", "chapman_shaoxing",
        homepage=CHALLENGE_URL,
        citation="Zheng J, Zhang J, Danioko S, et al. A 12-lead electrocardiogram database "
        "for arrhythmia research covering more than 10,000 patients. Scientific Data 7, 48 "
        "(2020).",
        published=PublishedCounts(
            train=38207, test=2051, unit="records",
            reference="CLIMB A.2, records (the Challenge 2021 copy has 10,247; medshard counts "
            "10-s windows)"),
    )
    download = _challenge_download("chapman_shaoxing")
    fixture = "medshard.sources.ecg.challenge_fixture:CHAPMAN_FIXTURE"
