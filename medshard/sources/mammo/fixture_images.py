"""Mammograms for the mammography fixtures: real radiograph pixels re-tagged as MG.

No mammogram ships inside any package (../shared/FIXTURE-DATA.md). The pixels are real
computed radiographs from pydicom-data, `RG1_UNCR.dcm` (1955 x 1841, 15-bit) and
`RG3_UNCR.dcm` (1760 x 1760, 10-bit), both MONOCHROME1 and uncompressed, cropped to
small windows so each fixture builds in about a second. What makes them mammograms is
illustrative: Modality MG, the Digital Mammography SOP class, ViewPosition (or a
ViewCodeSequence code), ImageLaterality, BodyPartExamined BREAST. Every file also gets
the identifying values of the VinDr-CXR fixture (names, ids, dates, free text, a
sequence, a private tag) so the kit can prove none of them leaks. ROI masks (CBIS-DDSM)
are illustrative ellipses on the image's grid, 8-bit 0/255 as CBIS-DDSM stores them.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from medshard.sources.cxr.vindr_cxr_fixture import (
    IDENTITY,
    PRIVATE_CREATOR,
    PRIVATE_TEXT,
    REQUESTED_PROCEDURE_TEXT,
)

RADIOGRAPHS = ("RG1_UNCR.dcm", "RG3_UNCR.dcm")
MG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image - For Presentation
VIEW_CODES = {"CC": ("R-10242", "cranio-caudal"), "MLO": ("R-10226", "medio-lateral oblique")}
PHI_MARKERS: tuple[str, ...] = (*IDENTITY.values(), REQUESTED_PROCEDURE_TEXT, PRIVATE_TEXT)


@lru_cache(maxsize=2)
def _radiograph(name: str) -> tuple[Dataset, np.ndarray]:
    """(header without pixels, pixels) of a pydicom-data radiograph, read once."""
    path = get_testdata_file(name)
    if path is None:
        raise FileNotFoundError(f"pydicom test file {name} is missing: install pydicom-data "
                                "(pip install pydicom-data) for the mammography fixtures")
    ds = dcmread(path)
    pixels = ds.pixel_array
    del ds.PixelData
    return ds, pixels


def mg_view(name: str, crop: tuple[int, int, int, int], *, view: str | None, laterality: str,
            patient_id: str, age: str = "052Y", view_as_code: bool = False) -> Dataset:
    """A real radiograph's window `crop` = (row, col, height, width) as an MG image of `view`
    (ViewPosition, or only a ViewCodeSequence code with `view_as_code`) and `laterality`."""
    header, full = _radiograph(name)
    ds = copy.deepcopy(header)
    r, c, h, w = crop
    pixels = np.ascontiguousarray(full[r:r + h, c:c + w])
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality = "MG"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MG_SOP_CLASS
    ds.BodyPartExamined = "BREAST"
    ds.ImageLaterality = laterality
    if "ViewPosition" in ds:  # the radiograph's own (AP)
        del ds.ViewPosition
    if view is not None and view_as_code:
        code, meaning = VIEW_CODES[view]
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, "SRT", meaning
        ds.ViewCodeSequence = Sequence([item])
    elif view is not None:
        ds.ViewPosition = view
    for keyword, value in IDENTITY.items():
        setattr(ds, keyword, value)
    ds.PatientID = patient_id
    ds.PatientSex = "F"
    ds.PatientAge = age
    ds.BurnedInAnnotation = "NO"
    item = Dataset()
    item.RequestedProcedureDescription = REQUESTED_PROCEDURE_TEXT
    ds.RequestAttributesSequence = Sequence([item])
    ds.private_block(0x0099, PRIVATE_CREATOR, create=True).add_new(0x01, "LO", PRIVATE_TEXT)
    return ds


def ellipse_mask(shape: tuple[int, int], center: tuple[int, int],
                 axes: tuple[int, int]) -> np.ndarray:
    """uint8 0/255 mask of an axis-aligned ellipse (row, col centre; row, col half-axes)."""
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    inside = (((rows - center[0]) / axes[0]) ** 2 + ((cols - center[1]) / axes[1]) ** 2) <= 1
    return np.where(inside, 255, 0).astype(np.uint8)


def mask_dataset(image: Dataset, mask: np.ndarray) -> Dataset:
    """An 8-bit MONOCHROME2 DICOM of `mask` with `image`'s header (identity included)."""
    ds = copy.deepcopy(image)
    ds.Rows, ds.Columns = mask.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.ascontiguousarray(mask, dtype=np.uint8).tobytes()
    ds["PixelData"].VR = "OB"
    for keyword in ("ViewPosition", "WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    return ds


def cropped_dataset(image: Dataset, box: tuple[int, int, int, int]) -> Dataset:
    """`image` cut to box = (row, col, height, width): CBIS-DDSM's lesion crop."""
    ds = copy.deepcopy(image)
    r, c, h, w = box
    pixels = np.ascontiguousarray(image.pixel_array[r:r + h, c:c + w])
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    return ds
