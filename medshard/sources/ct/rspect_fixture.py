"""A miniature RSPECT (RSNA STR Pulmonary Embolism) train set in its Kaggle layout.

Real parts: the pixel data and every other header attribute come from real CT slices
that ship with pydicom (`CT_small.dcm`, 128 x 128, signed 16-bit, RescaleIntercept
-1024) and pydicom-data (`693_UNCR.dcm`, a 512 x 512 CQ500 head CT slice).
Illustrative parts: no contiguous series ships anywhere, so each "series" stacks one
real slice several times, rolled sideways by a few columns per slice (so that every
slice differs and a wrong order shows), at illustrative ImagePositionPatient values
along an illustrative ImageOrientationPatient (axial, feet-first axial, coronal,
oblique); the 12-hex-digit study / series / SOP ids (RSPECT's own form) and the
labels in train.csv are made up. Identities are planted in the patient tags of every
slice (PHI_MARKERS) and must never reach an output.

Records the build must quarantine: a series with a missing slice position and a slice
of another orientation (both reported), a series with one localizer-like slice of
another orientation, a series whose one file is cut short, a series one of whose
listed files is absent, a series with a malformed train.csv row (plus the row itself,
at stage `list`); one study is `indeterminate` (filtered).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PHI_MARKERS = ("Brackenbury^Ottoline", "RSPECT-MRN-550271", "Fenwick Vale Infirmary")

STUDY_COLUMNS = (
    "negative_exam_for_pe", "qa_motion", "qa_contrast", "flow_artifact", "rv_lv_ratio_gte_1",
    "rv_lv_ratio_lt_1", "leftsided_pe", "chronic_pe", "true_filling_defect_not_pe",
    "rightsided_pe", "acute_and_chronic_pe", "central_pe", "indeterminate",
)
CSV_COLUMNS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
               "pe_present_on_image", *STUDY_COLUMNS)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
AXIAL_FEET_FIRST = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)  # normal points to the feet
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def _unit_oblique() -> tuple[float, ...]:
    """Row and column cosines of an oblique plane (20 degrees about z, then 20 about x)."""
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    row = np.array([c, s, 0.0])
    col = np.array([-s, c, 0.0])
    tilt = np.radians(20)
    rx = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    row, col = rx @ row, rx @ col
    return tuple(float(round(v, 6)) for v in (*row, *col))


OBLIQUE = _unit_oblique()


def uid(name: str) -> str:
    """A 12-hex-digit id as RSPECT spells its study, series and SOP ids."""
    return hashlib.sha256(name.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SeriesSpec:
    name: str
    image: str  # "CT_small.dcm" or "693_UNCR.dcm"
    n: int  # slice positions k = 0 .. n-1
    orientation: tuple[float, ...]
    spacing_mm: float = 2.5
    skip: tuple[int, ...] = ()  # positions with no slice (a gap)
    tilted: tuple[int, ...] = ()  # positions with an extra slice of another orientation
    pe_slices: tuple[int, ...] = ()
    labels: tuple[tuple[str, int], ...] = ()  # study columns set to 1 (others 0)

    @property
    def study(self) -> str:
        return uid("study/" + self.name)

    @property
    def series(self) -> str:
        return uid("series/" + self.name)

    @property
    def record_id(self) -> str:
        return f"{self.study}_{self.series}"

    def positions(self) -> list[int]:
        return [k for k in range(self.n) if k not in self.skip]

    def sop(self, k: int, tilted: bool = False) -> str:
        return uid(f"sop/{self.name}/{k}" + ("/tilted" if tilted else ""))

    def slices(self) -> list[tuple[int, bool]]:
        """(position k, tilted) of every slice file, in position order."""
        return [(k, t) for k in self.positions() for t in (False, True)
                if not t or k in self.tilted]


SERIES: tuple[SeriesSpec, ...] = (
    SeriesSpec("no-pe", "CT_small.dcm", 5, AXIAL, labels=(("negative_exam_for_pe", 1),
                                                         ("qa_contrast", 1))),
    SeriesSpec("acute", "693_UNCR.dcm", 2, AXIAL_FEET_FIRST, spacing_mm=5.0, pe_slices=(1,),
               labels=(("rightsided_pe", 1), ("rv_lv_ratio_lt_1", 1))),
    SeriesSpec("chronic", "CT_small.dcm", 4, CORONAL, spacing_mm=3.0, pe_slices=(2, 3),
               labels=(("chronic_pe", 1), ("leftsided_pe", 1), ("rv_lv_ratio_gte_1", 1))),
    SeriesSpec("acute-chronic", "CT_small.dcm", 3, OBLIQUE, spacing_mm=1.25, pe_slices=(0,),
               labels=(("acute_and_chronic_pe", 1), ("central_pe", 1),
                       ("rv_lv_ratio_lt_1", 1))),
    # broken on purpose
    SeriesSpec("gap-and-tilt", "CT_small.dcm", 7, AXIAL, skip=(3,), tilted=(5,),
               labels=(("negative_exam_for_pe", 1),)),
    SeriesSpec("tilted", "CT_small.dcm", 4, AXIAL, tilted=(2,), pe_slices=(1,),
               labels=(("leftsided_pe", 1), ("rv_lv_ratio_lt_1", 1))),
    SeriesSpec("truncated", "CT_small.dcm", 3, AXIAL, labels=(("negative_exam_for_pe", 1),)),
    SeriesSpec("missing-file", "CT_small.dcm", 3, AXIAL, labels=(("negative_exam_for_pe", 1),)),
    SeriesSpec("bad-row", "CT_small.dcm", 3, AXIAL, labels=(("negative_exam_for_pe", 1),)),
    SeriesSpec("indeterminate", "CT_small.dcm", 2, AXIAL,
               labels=(("indeterminate", 1), ("qa_motion", 1))),
)
BY_NAME = {s.name: s for s in SERIES}
WRITTEN = ("no-pe", "acute", "chronic", "acute-chronic")
CLASSES = {"no-pe": "No PE", "acute": "Acute PE", "chronic": "Chronic PE",
           "acute-chronic": "Acute and Chronic PE"}
TILT = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)  # a coronal localizer-like slice in an axial series


def real_slice(name: str):
    """The real pydicom(-data) CT slice `name`, parsed."""
    import pydicom
    from pydicom.data import get_testdata_file

    return pydicom.dcmread(get_testdata_file(name))


def slice_path(spec: SeriesSpec, k: int, tilted: bool = False) -> str:
    return f"train/{spec.study}/{spec.series}/{spec.sop(k, tilted)}.dcm"


def write_series(root: Path, spec: SeriesSpec, origin=(-100.0, -120.0, -60.0)) -> list[Path]:
    """Write the slice files of `spec` under root/train/...; returns them in position order."""
    import pydicom

    base = real_slice(spec.image)
    pixels = base.pixel_array
    ref = np.asarray(spec.orientation)
    normal = np.cross(ref[:3], ref[3:])
    out = []
    for k, tilted in spec.slices():
        ds = base.copy()
        ds.PixelData = np.roll(pixels, 3 * k, axis=1).astype(pixels.dtype).tobytes()
        orient = TILT if tilted else spec.orientation
        pos = np.asarray(origin) + k * spec.spacing_mm * normal
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in orient]
        ds.InstanceNumber = spec.n - k  # reversed: sorting by it would be wrong
        ds.PatientName, ds.PatientID, ds.InstitutionName = PHI_MARKERS
        ds.PatientBirthDate = "19470312"
        ds.PatientSex, ds.PatientAge = "F", "067Y"
        ds.SliceThickness = "7.0"  # deliberately not the spacing: never used
        # the headers carry dotted UIDs derived from the 12-hex-digit ids (only the CSV
        # and the paths are read)
        ds.StudyInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[spec.study])
        ds.SeriesInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[spec.series])
        ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[spec.sop(k, tilted)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = root / slice_path(spec, k, tilted)
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def csv_rows(spec: SeriesSpec) -> list[dict[str, str]]:
    study = {c: 0 for c in STUDY_COLUMNS}
    study.update(dict(spec.labels))
    rows = []
    for k, tilted in spec.slices():
        rows.append({"StudyInstanceUID": spec.study, "SeriesInstanceUID": spec.series,
                     "SOPInstanceUID": spec.sop(k, tilted),
                     "pe_present_on_image": str(int(k in spec.pe_slices)),
                     **{c: str(v) for c, v in study.items()}})
    # train.csv lists a study's images in no positional order: sort by SOP id
    return sorted(rows, key=lambda r: r["SOPInstanceUID"])


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


BAD_ROW_SERIES = "bad-row"


def write_fixture(root: Path) -> Path:
    """train.csv and train/<study>/<series>/<sop>.dcm for every series, broken ones included."""
    rows: list[dict[str, str]] = []
    for spec in SERIES:
        files = write_series(root, spec)
        spec_rows = csv_rows(spec)
        if spec.name == "truncated":
            data = files[1].read_bytes()
            files[1].write_bytes(data[: len(data) * 2 // 3])
        if spec.name == "missing-file":
            files[0].unlink()
        if spec.name == BAD_ROW_SERIES:
            spec_rows[1]["pe_present_on_image"] = "maybe"
        rows += spec_rows
    write_csv(root / "train.csv", rows)
    return root


def bad_row_line() -> int:
    """The 1-based line of train.csv (header = line 1) holding the malformed row."""
    line = 1
    for spec in SERIES:
        for i, _ in enumerate(csv_rows(spec)):
            line += 1
            if spec.name == BAD_ROW_SERIES and i == 1:
                return line
    raise AssertionError("no bad row")


def outside_uid_row(root: Path, outside: Path):
    """A train.csv row whose series id climbs out of the root."""
    from medshard.testing.adversarial import Expect

    path = root / "train.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rows.append({**rows[0], "SeriesInstanceUID": "../../outside", "SOPInstanceUID": "x"})
    write_csv(path, rows)
    return Expect({f"train.csv:{len(rows) + 1}": "list"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 4},
        quarantined={**{BY_NAME[n].record_id: "load"
                        for n in ("gap-and-tilt", "tilted", "truncated", "missing-file",
                                  BAD_ROW_SERIES)},
                     f"train.csv:{bad_row_line()}": "list"},
        filtered={"indeterminate exam (the readers could not call it): no PE class": 1},
        phi_markers=PHI_MARKERS,
        adversarial={"malformed_row": outside_uid_row},
        real="pydicom's CT_small.dcm and pydicom-data's 693_UNCR.dcm CT slices "
        "(pixels and headers)",
        illustrative="series stacked from one real slice (rolled per slice) at illustrative "
        "positions and orientations; ids and train.csv labels; a series with a missing slice "
        "and a tilted one, one with a tilted slice, one with a file cut short, one with a "
        "listed file absent, one with a malformed row (quarantined)",
    )


FIXTURE = _fixture()
