"""A DICOM series (one file per slice) as one volume in RAS, in bounded memory.

Geometry comes from the slice headers only (DICOM PS3.3 C.7.6.2, Image Plane Module):
  - the slice normal is the cross product of ImageOrientationPatient's row and column
    direction cosines; each slice's position along it is ImagePositionPatient . normal;
  - slices are sorted by that position, never by file name or InstanceNumber;
  - the spacing between slices comes from the positions (first to last over n - 1),
    never from SliceThickness (which is the reconstructed thickness, and overlapping or
    gapped reconstructions make it differ from the spacing);
  - in-plane spacing is PixelSpacing = [row spacing, column spacing] in mm.
Problems are reported as `SeriesProblem`s (what, which files, why), decided by the caller:
  - `orientation`: a slice whose ImageOrientationPatient differs from the series' majority
    (a localizer or a reformat filed in the series);
  - `gap`: a step between consecutive positions larger than `gap_factor` x the median
    step (a missing slice: the volume would have no single voxel grid);
  - `duplicate`: two slices at the same position; `irregular`: steps that differ from
    their mean by more than 10 % (no single grid either);
  - `size`: Rows / Columns / PixelSpacing differing from the majority.

Voxels: HU = stored x RescaleSlope + RescaleIntercept per slice (pydicom's modality LUT).
Integral slopes and intercepts give an integer volume: int16, widened to int32 (one copy)
only if a slice's values do not fit (its nominal 16-bit range alone does not widen it: CT
values in HU lie within -1024..3071 and more); any fractional one gives float32 (exact to
float32's precision, as SimpleITK's float output). The volume is allocated once, in its
final RAS layout, and filled one slice at a time (each slice's 2-D array flipped and
transposed into its place by a strided view), so a series needs its voxel bytes plus one
decoded slice: no list of datasets, no stacking, no reorientation copy.

Orientation: DICOM's patient coordinates are LPS; the volume and its affine are RAS+
(array axis i increases towards R, A, S), as `nibabel.as_closest_canonical` gives them:
the LPS affine is flipped on its first two axes and the array permuted/flipped to the
closest canonical orientation, never resampled (an oblique series keeps its obliquity
in the affine).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from nibabel.orientations import (
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

from medshard.formats.dicom import (
    _floats as _floats_or_none,
)
from medshard.formats.dicom import (
    _parse,
    _pixel_array,
    demographics,
    dicom_metadata,
    read_dataset,
)
from medshard.schemas.sample import RecordError

# Geometry and pixel-format tags read from every slice header (values used, not copied,
# except through the affine). No identifying tag is among them.
GEOMETRY_TAGS: tuple[str, ...] = (
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns",
    "RescaleSlope", "RescaleIntercept", "BitsStored", "BitsAllocated", "PixelRepresentation",
    "SamplesPerPixel", "NumberOfFrames", "PhotometricInterpretation",
)
ORIENTATION_TOLERANCE = 1e-3  # max |difference| of a direction cosine for "same orientation"
IRREGULAR_TOLERANCE = 0.10  # steps may differ from their mean by 10 % (rounded positions)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class SliceHeader:
    """What one slice's header says about its place and its stored values."""

    index: int  # position of the file in the caller's list
    position: tuple[float, float, float]  # ImagePositionPatient (LPS, mm)
    orientation: tuple[float, ...]  # ImageOrientationPatient: row cosines, column cosines
    spacing: tuple[float, float]  # PixelSpacing: row spacing, column spacing (mm)
    rows: int
    columns: int
    slope: float
    intercept: float


@dataclass(frozen=True)
class SeriesProblem:
    """A reason a series cannot be one regular volume, naming the slices concerned."""

    kind: str  # "orientation", "gap", "duplicate", "irregular", "size"
    slices: tuple[int, ...]  # indices into the caller's file list
    message: str


@dataclass
class SeriesPlan:
    """The sorted slices of a series and its voxel grid, before any pixel is read."""

    order: list[int]  # file indices, sorted along the normal (first = lowest position)
    excluded: list[SeriesProblem] = field(default_factory=list)  # orientation outliers
    problems: list[SeriesProblem] = field(default_factory=list)  # what prevents a volume
    positions_mm: list[float] = field(default_factory=list)  # along the normal, sorted
    slice_spacing_mm: float = 0.0
    max_step_deviation_mm: float = 0.0
    lps_affine: np.ndarray | None = None  # array axes (slice, row, column) -> LPS mm
    shape: tuple[int, int, int] = (0, 0, 0)  # (slices, rows, columns)
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.int16))


def _floats(value: Any, n: int, what: str, name: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise RecordError(f"{name}: {what} is not numeric") from None
    if len(out) != n or not all(np.isfinite(out)):
        raise RecordError(f"{name}: {what} has {len(out)} values; expected {n} finite numbers")
    return out


def read_slice_header(path: Path, index: int, name: str) -> SliceHeader:
    """The geometry of one slice file from its header (no pixels); RecordError when the file
    is missing, not DICOM, multi-frame, colour, or lacks position/orientation/spacing."""
    try:
        ds = _parse(path, list(GEOMETRY_TAGS), stop_before_pixels=True)
    except FileNotFoundError:
        raise RecordError(f"missing slice file {name}") from None
    except Exception as exc:  # pydicom raises several types for non-DICOM input
        raise RecordError(f"{name} is not a readable DICOM file ({type(exc).__name__})") from None
    for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows",
                "Columns", "BitsStored"):
        if ds.get(tag) in (None, ""):
            raise RecordError(f"{name} has no {tag}: its place in the volume is unknown")
    if int(ds.get("NumberOfFrames") or 1) != 1:
        raise RecordError(f"{name} is multi-frame; a series of single-slice files is expected")
    if int(ds.get("SamplesPerPixel") or 1) != 1:
        raise RecordError(f"{name} is not a grayscale image")
    orientation = _floats(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", name)
    spacing = _floats(ds.PixelSpacing, 2, "PixelSpacing", name)
    if min(spacing) <= 0:
        raise RecordError(f"{name}: PixelSpacing {spacing} is not positive")
    slope = ds.get("RescaleSlope")
    intercept = ds.get("RescaleIntercept")
    return SliceHeader(
        index=index,
        position=_floats(ds.ImagePositionPatient, 3, "ImagePositionPatient", name),  # type: ignore[arg-type]
        orientation=orientation,
        spacing=spacing,  # type: ignore[arg-type]
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        slope=1.0 if slope in (None, "") else float(slope),
        intercept=0.0 if intercept in (None, "") else float(intercept),
    )


def _normal(orientation: Sequence[float]) -> np.ndarray:
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    n = np.cross(row, col)
    norm = np.linalg.norm(n)
    if norm < 1e-6:
        raise RecordError("ImageOrientationPatient's row and column cosines are parallel")
    return n / norm


def _majority(headers: Sequence[SliceHeader], key: Callable[[SliceHeader], Any]) -> Any:
    counts = Counter(key(h) for h in headers)
    # most common; ties broken by the first slice that has it (deterministic)
    best = max(counts.values())
    return next(key(h) for h in headers if counts[key(h)] == best)


def _volume_dtype(headers: Sequence[SliceHeader]) -> np.dtype:
    """float32 when any slope or intercept is fractional; else int16 to start with (every
    CT in HU fits it; `fill_volume` widens to int32 if a slice's values do not)."""
    if not all(float(h.slope).is_integer() and float(h.intercept).is_integer() for h in headers):
        return np.dtype(np.float32)
    return np.dtype(np.int16)


def plan_series(headers: Sequence[SliceHeader], names: Sequence[str],
                gap_factor: float = 1.5) -> SeriesPlan:
    """Sort the slices along their normal and check that they make one regular grid.

    Orientation outliers go to `excluded` (the rest are sorted without them); every other
    problem goes to `problems` (then the series is not one volume).
    """
    if not headers:
        raise RecordError("the series has no slices")

    # the majority by cosines rounded to 1e-4 (float noise between files is not a vote of
    # its own); the reference is the first slice's exact cosines of that majority
    key = _majority(headers, lambda h: tuple(round(v, 4) for v in h.orientation))
    ref = np.asarray(next(h.orientation for h in headers
                          if tuple(round(v, 4) for v in h.orientation) == key))
    plan = SeriesPlan(order=[])
    kept: list[SliceHeader] = []
    for h in headers:
        if np.max(np.abs(np.asarray(h.orientation) - ref)) > ORIENTATION_TOLERANCE:
            plan.excluded.append(SeriesProblem(
                "orientation", (h.index,),
                f"slice {names[h.index]} has ImageOrientationPatient "
                f"{[round(v, 4) for v in h.orientation]}, the series "
                f"{[round(float(v), 4) for v in ref]}"))
        else:
            kept.append(h)
    grid = _majority(kept, lambda h: (h.rows, h.columns, h.spacing))
    odd = [h for h in kept if (h.rows, h.columns, h.spacing) != grid]
    if odd:
        plan.problems.append(SeriesProblem(
            "size", tuple(h.index for h in odd),
            f"{len(odd)} slice(s) (first {names[odd[0].index]}) have Rows/Columns/PixelSpacing "
            f"{(odd[0].rows, odd[0].columns, list(odd[0].spacing))}, the series "
            f"{(grid[0], grid[1], list(grid[2]))}"))
    normal = _normal(ref)
    dist = {h.index: float(np.dot(h.position, normal)) for h in kept}
    kept.sort(key=lambda h: (dist[h.index], h.index))
    plan.order = [h.index for h in kept]
    positions = [dist[i] for i in plan.order]
    plan.positions_mm = positions
    steps = np.diff(positions)
    if len(kept) > 1:
        dup = [i for i, s in enumerate(steps) if s < 1e-3]
        if dup:
            a, b = kept[dup[0]], kept[dup[0] + 1]
            plan.problems.append(SeriesProblem(
                "duplicate", (a.index, b.index),
                f"slices {names[a.index]} and {names[b.index]} lie at the same position "
                f"({positions[dup[0]]:.3f} mm along the normal)"))
        median = float(np.median(steps))
        gaps = [i for i, s in enumerate(steps) if median > 0 and s > gap_factor * median]
        for i in gaps:
            a, b = kept[i], kept[i + 1]
            missing = int(round(steps[i] / median)) - 1
            plan.problems.append(SeriesProblem(
                "gap", (a.index, b.index),
                f"gap of {steps[i]:.3f} mm between slices {names[a.index]} and {names[b.index]} "
                f"(median spacing {median:.3f} mm): about {max(missing, 1)} slice(s) missing"))
        plan.slice_spacing_mm = (positions[-1] - positions[0]) / (len(kept) - 1)
        plan.max_step_deviation_mm = float(np.max(np.abs(steps - plan.slice_spacing_mm)))
        if not gaps and not dup and plan.max_step_deviation_mm > (
                IRREGULAR_TOLERANCE * plan.slice_spacing_mm):
            plan.problems.append(SeriesProblem(
                "irregular", tuple(plan.order),
                f"slice steps range {steps.min():.3f}-{steps.max():.3f} mm around a mean of "
                f"{plan.slice_spacing_mm:.3f} mm: not one regular grid"))
    first = kept[0]
    row_cos, col_cos = np.asarray(ref[:3]), np.asarray(ref[3:])
    row_spacing, col_spacing = first.spacing
    # array axes (slice k, row j, column i): column index moves along the row cosines
    step = plan.slice_spacing_mm if len(kept) > 1 else 1.0
    affine = np.eye(4)
    affine[:3, 0] = normal * step
    affine[:3, 1] = col_cos * row_spacing
    affine[:3, 2] = row_cos * col_spacing
    affine[:3, 3] = first.position
    plan.lps_affine = affine
    plan.shape = (len(kept), first.rows, first.columns)
    plan.dtype = _volume_dtype(kept)
    return plan


@dataclass
class Volume:
    """A filled RAS volume, its affine (voxel -> RAS mm) and where the slices went."""

    array: np.ndarray
    affine: np.ndarray
    slice_axis: int  # the array axis the DICOM slices lie along
    slice_axis_flipped: bool  # True: array index 0 holds the last sorted slice
    meta: dict[str, Any]  # allow-listed DICOM attributes and demographics of the first slice
    window_center: list[float] | None = None
    window_width: list[float] | None = None


def ras_layout(plan: SeriesPlan) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(orientation transform to RAS, RAS affine, RAS shape) of the plan's grid."""
    ras_in = LPS_TO_RAS @ plan.lps_affine
    ornt = io_orientation(ras_in)
    shape = tuple(int(plan.shape[int(np.where(ornt[:, 0] == axis)[0][0])]) for axis in range(3))
    return ornt, ras_in @ inv_ornt_aff(ornt, plan.shape), shape


def fill_volume(plan: SeriesPlan, paths: Sequence[Path], names: Sequence[str]) -> Volume:
    """Read each planned slice's pixels once, in sorted order, into one RAS array.

    `paths[i]` / `names[i]` are the file of index i (the index of its `SliceHeader`).
    """
    if plan.problems:
        raise RecordError("; ".join(p.message for p in plan.problems))
    ornt, affine, shape = ras_layout(plan)
    out = np.empty(shape, dtype=plan.dtype)
    # `out` seen in the plan's (slice, row, column) layout: flips and a transpose, no copy
    back = ornt_transform(axcodes2ornt(("R", "A", "S")), ornt)
    view = apply_orientation(out, back)
    if view.shape != plan.shape or not np.shares_memory(view, out):
        raise RuntimeError("the RAS view of the volume does not match the slice layout")
    first_meta: dict[str, Any] = {}
    window: tuple[list[float] | None, list[float] | None] = (None, None)
    for k, index in enumerate(plan.order):
        ds = read_dataset(paths[index], pixels=True)
        if "PixelData" not in ds:
            raise RecordError(f"{names[index]} has no pixel data")
        stored = _pixel_array(ds)
        if stored.shape != plan.shape[1:]:
            raise RecordError(f"{names[index]}: pixel array {stored.shape} does not match its "
                              f"Rows x Columns {plan.shape[1:]}")
        slope = ds.get("RescaleSlope")
        intercept = ds.get("RescaleIntercept")
        s = 1.0 if slope in (None, "") else float(slope)
        b = 0.0 if intercept in (None, "") else float(intercept)
        if out.dtype.kind == "f":
            view[k] = stored.astype(np.float64) * s + b
        else:
            hu = stored.astype(np.int64) * int(s) + int(b)
            info = np.iinfo(out.dtype)
            if hu.size and (hu.min() < info.min or hu.max() > info.max):
                # the values, not the nominal range, decide: widen once (rare: 16-bit CT
                # whose stored values really exceed int16 after the rescale)
                if hu.min() < -(2**31) or hu.max() >= 2**31:
                    raise RecordError(f"{names[index]}: rescaled values exceed 32-bit integers")
                out = out.astype(np.int32)
                view = apply_orientation(out, back)
            view[k] = hu
            del hu
        if k == 0:
            first_meta = {"dicom": dicom_metadata(ds), **demographics(ds)}
            window = (_floats_or_none(ds.get("WindowCenter")), _floats_or_none(ds.get("WindowWidth")))
        del ds, stored
    slice_out_axis = int(ornt[0, 0])
    return Volume(array=out, affine=affine, slice_axis=slice_out_axis,
                  slice_axis_flipped=bool(ornt[0, 1] < 0), meta=first_meta,
                  window_center=window[0], window_width=window[1])
