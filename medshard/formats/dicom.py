"""Shared DICOM reading for every DICOM source: de-identified metadata and lossless pixels.

De-identification is by allow-list. A file is parsed with `specific_tags` limited to
`ALLOWED_TAGS` plus the tags pixel decoding needs (`_DECODE_TAGS`), so names, ids,
dates, UIDs, institutions, device serials, free text, private tags, sequences,
overlays and burned-in-annotation flags are never even turned into values: they can
reach no output, log or error message. The one exception is `read_patient_id`, which
a source calls to fill `RawRecord.subject_id` (the pipeline replaces it with a keyed
hash before anything is written).

Pixels (`decode_image`): the stored values, the modality LUT applied as pydicom's
`apply_modality_lut` defines it, at native resolution, in the narrowest dtype that
holds every value the LUT can produce exactly:
  - linear rescale with integral slope and intercept (or no rescale, or a Modality
    LUT Sequence): applied. Output range within [0, 65535] -> uint16 (uint8 for 8-bit
    data), which the pipeline stores as PNG; a range that goes negative or past
    65535 (CT in HU) -> int16 / int32, which PNG cannot hold: stored as .npy.
  - linear rescale with a fractional slope or intercept (e.g. MR with slope 3.77):
    not applied, since the result is not an integer; the stored values are kept
    (uint16/int16) with `rescale_applied = False`, and the descriptor carries
    `rescale_slope` / `rescale_intercept` (also in `meta["dicom"]`), so
    `stored * slope + intercept` (float64) reproduces pydicom's output exactly; the
    loader does it with `apply_rescale=True`.
VOI (WindowCenter / WindowWidth) is never applied; the values go to the descriptor.

MONOCHROME1 (minimum value = white) is inverted to MONOCHROME2 by default
(`monochrome1="invert"`), so every image of a build has one polarity (a model fed both
learns two): the stored value is `lo + hi - value`, where [lo, hi] is the range the
modality LUT can produce from BitsStored / PixelRepresentation (for unsigned data
without rescale, `max_stored - value` with max_stored = 2**BitsStored - 1). Lossless and
exactly reversible: the constant is recorded as the descriptor's `inverted_from` (and
`meta["monochrome1_inverted_from"]`); window centers are mirrored the same way. With a
fractional rescale the inversion acts on stored values, so `x * slope + intercept` of
the stored image is the modality output mirrored over its range. `monochrome1="keep"`
keeps the stored values (`photometric` then says MONOCHROME1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.config import disable_value_validation
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut

from medshard.schemas.sample import RecordError

# The only attributes whose values may leave a DICOM file (acquisition and geometry,
# plus sex and age, the demographics CLIMB keeps). Anything else never leaves.
ALLOWED_TAGS: tuple[str, ...] = (
    "Modality",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "NumberOfFrames",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PhotometricInterpretation",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "ViewPosition",
    "ImageLaterality",
    "BodyPartExamined",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "PatientSex",
    "PatientAge",
)

# Read only for decoding pixels; their values are used, never copied to metadata.
# ModalityLUTSequence holds a table (LUTDescriptor, LUTData) and, optionally, a free-text
# LUTExplanation: the table is applied, the sequence itself never copied.
_DECODE_TAGS: tuple[str, ...] = (
    "PlanarConfiguration",
    "PixelData",
    "FloatPixelData",
    "DoubleFloatPixelData",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "ModalityLUTSequence",
    "BurnedInAnnotation",  # YES: quarantined (or kept and flagged); the value is not copied
)

# The values each allow-listed code string may take (DICOM PS3.3 defined terms, PS3.16
# Annex L for body parts); a code outside its vocabulary is dropped like free text.
# A source extends them with `read_image(..., codes=...)`.
CODE_VOCABULARY: dict[str, frozenset[str]] = {
    "Modality": frozenset({
        "CR", "DX", "MG", "CT", "MR", "US", "XA", "RF", "PT", "NM", "OT", "SC", "IO", "PX",
        "ES", "XC", "OP", "SM", "RG", "DG",
    }),
    "ViewPosition": frozenset({
        "AP", "PA", "LL", "RL", "RLD", "LLD", "RLO", "LLO", "LAO", "RAO", "LPO", "RPO", "CC",
        "MLO", "ML", "LM", "LMO", "SIO", "XCC", "XCCL", "XCCM", "FB", "AT", "LATERAL",
    }),
    "BodyPartExamined": frozenset({
        "ABDOMEN", "ABDOMENPELVIS", "ANKLE", "ARM", "BREAST", "CHEST", "CHESTABDOMEN",
        "CHESTABDPELVIS", "CLAVICLE", "COCCYX", "CSPINE", "ELBOW", "EXTREMITY", "FOOT",
        "HAND", "HEAD", "HEADNECK", "HEART", "HIP", "JAW", "KIDNEY", "KNEE", "LEG", "LSPINE",
        "LUNG", "NECK", "PELVIS", "RIBS", "SHOULDER", "SKULL", "SPINE", "SSPINE", "THORAX",
        "TSPINE", "WHOLEBODY", "WRIST",
    }),
    "PhotometricInterpretation": frozenset({
        "MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT",
        "PALETTE COLOR",
    }),
    "VOILUTFunction": frozenset({"LINEAR", "LINEAR_EXACT", "SIGMOID"}),
    "ImageLaterality": frozenset({"L", "R", "U", "B"}),
}
BURNED_IN_POLICIES = ("quarantine", "keep")

# Tags copied to `meta["dicom"]`; demographics are reported separately, normalized.
_META_TAGS = tuple(t for t in ALLOWED_TAGS if t not in ("PatientSex", "PatientAge"))

# Code strings (VR CS) are at most 16 of these characters; anything else is not a code
# (a site that typed free text into BodyPartExamined) and is dropped.
_CODE_STRING = re.compile(r"^[A-Z0-9 _]{1,16}$")
_AGE_STRING = re.compile(r"^(\d{3})([DWMY])$")
# HIPAA Safe Harbor: ages over 89 are aggregated into one category, reported as 90.
AGE_CAP_YEARS = 90

MONOCHROME1_POLICIES = ("keep", "invert")


@dataclass
class DicomImage:
    """Decoded pixels plus what a source puts in the image descriptor and sample meta."""

    pixels: np.ndarray
    descriptor: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def _parse(path: Path, tags: list[str], *, stop_before_pixels: bool) -> Dataset:
    """dcmread of `tags` only, every value converted with pydicom's value validation off.

    Validation warnings quote the value ("Invalid value for VR CS: '<free text>'") into
    warnings and the `pydicom` logger; values are converted here, silently, once.
    """
    with disable_value_validation():
        ds = pydicom.dcmread(path, specific_tags=tags, stop_before_pixels=stop_before_pixels)
        for _ in ds:  # iterating converts each raw element while validation is off
            pass
    return ds


def read_dataset(path: Path, *, pixels: bool = True) -> Dataset:
    """Parse only the allow-listed (and, with `pixels`, the decoding) tags of `path`.

    Raises RecordError (a message without any tag value) when the file is not DICOM.
    """
    tags = list(ALLOWED_TAGS) + (list(_DECODE_TAGS) if pixels else [])
    try:
        return _parse(path, tags, stop_before_pixels=not pixels)
    except FileNotFoundError:
        raise RecordError(f"missing file {path.name}") from None
    except Exception as exc:  # pydicom raises several types for non-DICOM input
        raise RecordError(f"{path.name} is not a readable DICOM file ({type(exc).__name__})") from None


def read_patient_id(path: Path) -> str | None:
    """The raw PatientID of `path` (None when absent or empty), for `RawRecord.subject_id` only.

    Never put the value anywhere else: the pipeline replaces it with a keyed hash.
    Reads the header only; pixels are not touched.
    """
    try:
        ds = _parse(path, ["PatientID"], stop_before_pixels=True)
    except Exception:  # unreadable files are quarantined by load(), with a reason
        return None
    value = ds.get("PatientID")
    text = str(value).strip() if value is not None else ""
    return text or None


def _json_value(value: Any) -> Any:
    """A DICOM element value as plain JSON (numbers as int/float, multi-values as lists)."""
    if isinstance(value, (MultiValue, list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _clean(keyword: str, value: Any,
           codes: dict[str, frozenset[str]] | None = None) -> Any:
    """Allow-listed value as JSON, or None when it is not the kind of value the tag holds:
    a code string must match the CS value representation and its vocabulary."""
    vr = pydicom.datadict.dictionary_VR(keyword)
    if vr == "CS":
        text = str(value).strip().upper()
        if not _CODE_STRING.match(text):
            return None
        allowed = (codes or {}).get(keyword, frozenset()) | CODE_VOCABULARY.get(keyword, frozenset())
        return text if keyword not in CODE_VOCABULARY or text in allowed else None
    out = _json_value(value)
    if pydicom.datadict.dictionary_VM(keyword) != "1" and not isinstance(out, list):
        # a multi-valued attribute (WindowCenter, PixelSpacing) is a list in every sample,
        # also when a file holds one value: one JSON type per field across a source
        out = [out]
    if vr in ("DS", "IS", "US", "SS", "FL", "FD"):
        flat = out if isinstance(out, list) else [out]
        if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in flat):
            return None
    return out


def dicom_metadata(ds: Dataset,
                   codes: dict[str, frozenset[str]] | None = None) -> dict[str, Any]:
    """The allow-listed acquisition and geometry attributes of `ds`, JSON-ready, keyed by
    keyword; code strings outside their vocabulary (`CODE_VOCABULARY` + `codes`) dropped.

    Every allow-listed keyword is present (null when the file lacks it), so the samples of
    a source share one JSON shape.
    """
    out: dict[str, Any] = {}
    for keyword in _META_TAGS:
        elem = ds.get(keyword)
        value = None if elem is None or elem == "" else _clean(keyword, elem, codes)
        out[keyword] = None if value == [] else value
    return out


def demographics(ds: Dataset) -> dict[str, Any]:
    """`sex` (M/F/O) and `age` (float, whole years; 90.0 means 90 or older), null when absent."""
    out: dict[str, Any] = {"sex": None, "age": None}
    sex = str(ds.get("PatientSex") or "").strip().upper()
    if sex in ("M", "F", "O"):
        out["sex"] = sex
    match = _AGE_STRING.match(str(ds.get("PatientAge") or "").strip())
    if match:
        n, unit = int(match.group(1)), match.group(2)
        years = {"Y": n, "M": n // 12, "W": n // 52, "D": n // 365}[unit]
        out["age"] = float(min(years, AGE_CAP_YEARS))
    return out


def _floats(value: Any) -> list[float] | None:
    if value is None or value == "":
        return None
    values = value if isinstance(value, (MultiValue, list, tuple)) else [value]
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return out if out and all(np.isfinite(out)) else None


def _spacing(value: Any) -> list[float] | None:
    """[row, column] spacing in mm, or None when absent or not two positive numbers (e.g. 0\\0)."""
    values = _floats(value)
    return values if values and len(values) == 2 and min(values) > 0 else None


def _stored_range(ds: Dataset) -> tuple[int, int]:
    """Smallest and largest value the stored pixels can hold (BitsStored, PixelRepresentation)."""
    bits = int(ds.BitsStored)
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _narrowest_int(lo: int, hi: int, bits_allocated: int) -> np.dtype:
    if lo >= 0 and hi <= 255 and bits_allocated <= 8:
        return np.dtype(np.uint8)
    for dtype in (np.uint16, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    raise RecordError(f"pixel value range [{lo}, {hi}] does not fit a 64-bit integer")


def _exact_cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`values` as `dtype`, widened to the data's actual range if the nominal one was wrong."""
    if values.dtype == dtype:
        return values
    out = values.astype(dtype)
    if np.array_equal(out, values):
        return out
    # stored bits beyond BitsStored (or a LUT past its descriptor): widen to the real range
    lo, hi = int(values.min()), int(values.max())
    out = values.astype(_narrowest_int(lo, hi, 16))
    if not np.array_equal(out, values):
        raise RecordError("pixel values are not integers after the modality LUT")
    return out


def _is_integral(x: float) -> bool:
    return float(x).is_integer()


def modality_lut_pixels(ds: Dataset, stored: np.ndarray) -> tuple[np.ndarray, bool, tuple[int, int]]:
    """Apply the modality LUT losslessly: (pixels, rescale_applied, nominal output range).

    Same values as `pydicom.pixels.apply_modality_lut(stored, ds)` when applied; see the
    module docstring for when a fractional rescale is left unapplied instead.
    """
    lo, hi = _stored_range(ds)
    bits_allocated = int(ds.get("BitsAllocated", 16))
    if ds.get("ModalityLUTSequence"):
        table = apply_modality_lut(stored, ds)  # uint8/uint16 table output
        info = np.iinfo(table.dtype)
        return table, True, (int(info.min), int(info.max))
    slope_elem, intercept_elem = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope_elem is None or intercept_elem is None:
        # pydicom applies a rescale only when both attributes are present
        return _exact_cast(stored, _narrowest_int(lo, hi, bits_allocated)), False, (lo, hi)
    slope, intercept = float(slope_elem), float(intercept_elem)
    if not (_is_integral(slope) and _is_integral(intercept)):
        return _exact_cast(stored, _narrowest_int(lo, hi, bits_allocated)), False, (lo, hi)
    s, b = int(slope), int(intercept)
    ends = (lo * s + b, hi * s + b)
    out_lo, out_hi = min(ends), max(ends)
    dtype = _narrowest_int(out_lo, out_hi, bits_allocated)
    if s == 1 and b == 0:  # identity (most MG/CR files say 1 / 0): no arithmetic, no copy
        return _exact_cast(stored, dtype), True, (out_lo, out_hi)
    out = _blockwise(stored, lambda block: block * s + b, dtype)
    if out is None:  # stored bits beyond BitsStored: the whole array, widened as needed
        work = stored.astype(np.int64) * s + b
        out = _exact_cast(work, _narrowest_int(int(work.min()), int(work.max()), 16))
    return out, True, (out_lo, out_hi)


# Rows per block of blockwise arithmetic: int64 temporaries stay near 2 MB whatever the
# image size, so a 4000 x 5000 16-bit mammogram is decoded in about twice its pixel bytes.
_BLOCK_ELEMENTS = 1 << 18


def _blockwise(values: np.ndarray, fn, dtype: np.dtype,
               out: np.ndarray | None = None) -> np.ndarray | None:
    """`fn(block as int64)` cast to `dtype`, computed a block of rows at a time (into `out`,
    which may be `values` itself); None when a result does not fit `dtype` exactly."""
    if out is None:
        out = np.empty(values.shape, dtype=dtype)
    info = np.iinfo(dtype)
    rows = max(1, _BLOCK_ELEMENTS // max(1, int(np.prod(values.shape[1:], dtype=np.int64))))
    for start in range(0, values.shape[0], rows):
        block = fn(values[start:start + rows].astype(np.int64))
        if block.size and (block.min() < info.min or block.max() > info.max):
            return None
        out[start:start + rows] = block
    return out


def _check_decodable(ds: Dataset, burned_in: str, monochrome1: str) -> None:
    """Refuse what `decode_image` cannot store, before any pixel is decoded."""
    if monochrome1 not in MONOCHROME1_POLICIES:
        raise ValueError(f"monochrome1 must be one of {MONOCHROME1_POLICIES}, not {monochrome1!r}")
    if burned_in not in BURNED_IN_POLICIES:
        raise ValueError(f"burned_in must be one of {BURNED_IN_POLICIES}, not {burned_in!r}")
    burned = str(ds.get("BurnedInAnnotation") or "").strip().upper() == "YES"
    if burned and burned_in == "quarantine":
        raise RecordError("BurnedInAnnotation is YES: the pixels may show identifying text; "
                          "the image is left out (set the source's burned_in option to keep it)")
    if "PixelData" not in ds:
        raise RecordError("DICOM file has no pixel data")
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames != 1:
        raise RecordError(f"multi-frame DICOM ({frames} frames) is not a single image")


def _pixel_array(ds: Dataset) -> np.ndarray:
    """`ds.pixel_array`, with a decoder failure as a value-free RecordError."""
    try:
        return ds.pixel_array
    except Exception as exc:  # decoder errors: missing plugin, truncated data, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RecordError(
            f"cannot decode DICOM pixel data ({type(exc).__name__}: {first[:160]}); for JPEG "
            "Lossless / JPEG-LS install pylibjpeg with pylibjpeg-libjpeg, or python-gdcm"
        ) from None


def decode_image(ds: Dataset, *, monochrome1: str = "invert", burned_in: str = "quarantine",
                 codes: dict[str, frozenset[str]] | None = None,
                 stored: np.ndarray | None = None, own: bool = False) -> DicomImage:
    """Pixels of a single-frame image at native resolution, modality LUT applied losslessly.

    Returns the array (H x W, or H x W x 3 for colour), the ImageDescriptor fields a
    source fills (height, width, bit_depth, photometric, channels, source_encoding,
    pixel_spacing_mm, view, laterality, window_center, window_width, rescale_applied) and the
    sample meta (`dicom`: allow-listed attributes; `sex`, `age` where present).
    Raises RecordError with a value-free message for what it cannot store losslessly.
    An image whose BurnedInAnnotation is YES (text such as a name may be in the pixels)
    raises RecordError with `burned_in="quarantine"` (default); with "keep" it is
    returned with `meta["burned_in_annotation"] = True`.
    """
    if stored is None:  # else `read_image` checked the file and decoded it already
        _check_decodable(ds, burned_in, monochrome1)
        stored, own = _pixel_array(ds), False
    burned = str(ds.get("BurnedInAnnotation") or "").strip().upper() == "YES"
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()

    meta: dict[str, Any] = {"dicom": dicom_metadata(ds, codes), **demographics(ds),
                            "monochrome1_inverted_from": None,
                            "burned_in_annotation": bool(burned)}
    window_center = _floats(ds.get("WindowCenter"))
    window_width = _floats(ds.get("WindowWidth"))
    inverted_from: int | None = None

    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        pixels, rescaled, (lo, hi) = modality_lut_pixels(ds, stored)
        if photometric == "MONOCHROME1" and monochrome1 == "invert":
            mirror = lo + hi
            # in place when the array is ours (not the caller's dataset's cached pixel_array)
            mine = pixels is not stored or (own and pixels.flags.writeable)
            # every value in [lo, hi] mirrors into [lo, hi]: an in-place pass cannot fail halfway
            in_range = not pixels.size or (lo <= int(pixels.min()) and int(pixels.max()) <= hi)
            inverted = (_blockwise(pixels, lambda block: mirror - block, pixels.dtype,
                                   out=pixels if mine else None) if in_range else None)
            pixels = (inverted if inverted is not None
                      else _exact_cast(mirror - pixels.astype(np.int64), pixels.dtype))
            if window_center is not None:
                window_center = [mirror - c for c in window_center]
            photometric = "MONOCHROME2"
            meta["monochrome1_inverted_from"] = mirror
            inverted_from = int(mirror)
        channels = 1
        bit_depth = max((hi - lo).bit_length(), 1)
    elif photometric == "RGB" or photometric.startswith("YBR"):
        # pydicom converts YBR to RGB when decoding; there is no modality LUT for colour
        pixels, rescaled = stored, False
        photometric, channels = "RGB", 3
        bit_depth = int(ds.BitsStored)
        if pixels.dtype != np.uint8:
            raise RecordError(f"{bit_depth}-bit colour DICOM images are not supported")
    else:
        raise RecordError(f"unsupported DICOM photometric interpretation {photometric or 'missing'}")

    if pixels.ndim != (2 if channels == 1 else 3):
        raise RecordError(f"unexpected DICOM pixel array shape {pixels.shape}")
    spacing = _spacing(ds.get("PixelSpacing")) or _spacing(ds.get("ImagerPixelSpacing"))
    view = meta["dicom"].get("ViewPosition")
    descriptor: dict[str, Any] = {
        "height": int(pixels.shape[0]),
        "width": int(pixels.shape[1]),
        "bit_depth": bit_depth,
        "photometric": photometric,
        "channels": channels,
        "source_encoding": _source_encoding(ds),
        "pixel_spacing_mm": spacing,
        "view": view,
        "laterality": meta["dicom"].get("ImageLaterality"),
        "window_center": window_center,
        "window_width": window_width,
        "rescale_applied": rescaled,
        "inverted_from": inverted_from,
        **_unapplied_rescale(ds, rescaled, photometric),
    }
    return DicomImage(pixels=np.ascontiguousarray(pixels), descriptor=descriptor, meta=meta)


def _unapplied_rescale(ds: Dataset, applied: bool, photometric: str) -> dict[str, float]:
    """`rescale_slope` / `rescale_intercept` of a linear rescale left unapplied, else {}."""
    if applied or photometric not in ("MONOCHROME1", "MONOCHROME2") or ds.get("ModalityLUTSequence"):
        return {}
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is None or intercept is None:
        return {}
    return {"rescale_slope": float(slope), "rescale_intercept": float(intercept)}


def _source_encoding(ds: Dataset) -> str:
    """`dicom:<transfer syntax UID>`, e.g. dicom:1.2.840.10008.1.2.4.90 for JPEG 2000 lossless."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return f"dicom:{uid}" if uid else "dicom"


def read_image(path: Path, *, monochrome1: str = "invert", burned_in: str = "quarantine",
               codes: dict[str, frozenset[str]] | None = None) -> DicomImage:
    """`decode_image` of the file at `path`, parsing allow-listed and decoding tags only.

    Memory: the encoded pixel data is released as soon as it is decoded and the decoded
    array is transformed in place, so a 4000 x 5000 16-bit mammogram peaks near twice its
    pixel bytes (benchmarks/mammo_memory.py).
    """
    ds = read_dataset(path, pixels=True)
    _check_decodable(ds, burned_in, monochrome1)
    stored = _pixel_array(ds)
    del ds.PixelData  # the encoded bytes: not needed once decoded
    return decode_image(ds, monochrome1=monochrome1, burned_in=burned_in, codes=codes,
                        stored=stored, own=True)


# View for Mammography (DICOM CID 4014) in ViewCodeSequence, where a file has no
# ViewPosition: SNOMED-RT and SNOMED CT codes of the standard views.
MAMMOGRAPHY_VIEW_CODES: dict[str, str] = {
    "R-10242": "CC", "399162004": "CC",
    "R-10226": "MLO", "399368009": "MLO",
    "R-10224": "ML", "399260004": "ML",
    "R-10228": "LM", "399352003": "LM",
}


def read_view_laterality(path: Path) -> tuple[str | None, str | None]:
    """(view, laterality) of an image from its header only: ViewPosition, else the code of
    ViewCodeSequence's first item (`MAMMOGRAPHY_VIEW_CODES`); ImageLaterality, else
    Laterality. Values outside their vocabularies are None. Raises RecordError (value-free)
    when the file is not DICOM."""
    try:
        ds = _parse(path, ["ViewPosition", "ViewCodeSequence", "ImageLaterality", "Laterality"],
                    stop_before_pixels=True)
    except FileNotFoundError:
        raise RecordError(f"missing file {path.name}") from None
    except Exception as exc:  # pydicom raises several types for non-DICOM input
        raise RecordError(f"{path.name} is not a readable DICOM file ({type(exc).__name__})") from None
    view = _clean("ViewPosition", ds.get("ViewPosition") or "")
    if not view:
        items = ds.get("ViewCodeSequence") or []
        code = str(items[0].get("CodeValue") or "").strip() if len(items) else ""
        view = MAMMOGRAPHY_VIEW_CODES.get(code)
    side = None
    for keyword in ("ImageLaterality", "Laterality"):
        text = str(ds.get(keyword) or "").strip().upper()
        if text in CODE_VOCABULARY["ImageLaterality"]:
            side = text
            break
    return view or None, side
