"""Shared DICOM reading: lossless pixels against pydicom's own LUT, MONOCHROME1, allow-list."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.config
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from medshard.formats.dicom import (
    ALLOWED_TAGS,
    decode_image,
    demographics,
    dicom_metadata,
    read_dataset,
    read_image,
    read_patient_id,
)
from medshard.pipeline.transforms.image import decode_png, encode_png
from medshard.schemas import RecordError
from medshard.sources.cxr.vindr_cxr_fixture import (
    IDENTITY,
    PRIVATE_CREATOR,
    PRIVATE_TEXT,
    DemoImage,
    _identify,
)


def _testdata(name: str) -> Path:
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom-data file {name} not installed")
    return Path(path)


def _reference(path: Path) -> tuple[pydicom.Dataset, np.ndarray]:
    """pydicom's own reading of the whole file: pixel_array then apply_modality_lut."""
    ds = pydicom.dcmread(path)
    return ds, apply_modality_lut(ds.pixel_array, ds)


# name, expected dtype, rescale applied, what it exercises
LUT_CASES = [
    ("RG1_UNCR.dcm", np.uint16, False, "CR MONOCHROME1 15-bit, 1955 x 1841"),
    ("RG3_UNCR.dcm", np.uint16, False, "CR MONOCHROME1 10-bit"),
    ("RG3_J2KR.dcm", np.uint16, False, "same image, JPEG 2000 lossless"),
    ("examples_overlay.dcm", np.uint16, False, "MR 12-bit with overlay planes"),
    ("vlut_04.dcm", np.uint8, False, "8-bit"),
    ("mlut_18.dcm", np.uint16, True, "Modality LUT Sequence (a table, not a rescale)"),
    ("CT_small.dcm", np.int32, True, "CT signed, intercept -1024: HU below zero"),
    ("693_J2KR.dcm", np.int32, True, "CT JPEG 2000, intercept -1024"),
    ("MR_small.dcm", np.int16, False, "signed 16-bit, no rescale"),
    ("J2K_pixelrep_mismatch.dcm", np.int16, True, "J2K signedness differs from the header"),
]


@pytest.mark.parametrize(("name", "dtype", "applied", "why"), LUT_CASES, ids=[c[0] for c in LUT_CASES])
def test_pixels_equal_pydicom_modality_lut(name, dtype, applied, why):
    path = _testdata(name)
    ds, expected = _reference(path)
    image = read_image(path, monochrome1="keep")  # pydicom keeps the stored polarity
    assert image.pixels.dtype == dtype, why
    assert image.pixels.shape == (ds.Rows, ds.Columns)
    assert np.array_equal(image.pixels, expected), why
    d = image.descriptor
    assert (d["height"], d["width"]) == (ds.Rows, ds.Columns)
    assert d["rescale_applied"] is applied
    assert d["photometric"] == ds.PhotometricInterpretation
    assert d["source_encoding"] == f"dicom:{ds.file_meta.TransferSyntaxUID}"


@pytest.mark.parametrize(
    "name", ["RG1_UNCR.dcm", "RG3_UNCR.dcm", "examples_overlay.dcm", "vlut_04.dcm", "mlut_18.dcm"]
)
def test_unsigned_pixels_survive_png_round_trip(name):
    path = _testdata(name)
    _, expected = _reference(path)
    image = read_image(path, monochrome1="keep")
    back = decode_png(encode_png(image.pixels))
    assert back.dtype == image.pixels.dtype
    assert np.array_equal(back, expected)


def test_negative_lut_output_is_not_forced_into_png():
    # CT in HU goes below zero: a signed array, which the PNG encoder refuses
    image = read_image(_testdata("CT_small.dcm"))
    assert image.pixels.min() < 0
    with pytest.raises(RecordError):
        encode_png(image.pixels)


def test_integral_rescale_set_on_file_is_applied(tmp_path):
    ds = pydicom.dcmread(_testdata("examples_overlay.dcm"))
    ds.RescaleSlope, ds.RescaleIntercept = 2, 100
    path = tmp_path / "rescaled.dcm"
    ds.save_as(path)
    ref_ds, expected = _reference(path)
    image = read_image(path)
    assert image.descriptor["rescale_applied"] is True
    assert image.pixels.dtype == np.uint16
    assert np.array_equal(image.pixels, expected)
    assert np.array_equal(image.pixels, ref_ds.pixel_array.astype(np.int64) * 2 + 100)
    assert image.descriptor["bit_depth"] == 13  # [100, 4095 * 2 + 100]


def test_fractional_rescale_keeps_stored_values_and_the_rescale():
    path = _testdata("MR2_UNCR.dcm")  # slope 3.774114, intercept 0.000061
    ds, expected = _reference(path)
    image = read_image(path)
    assert image.descriptor["rescale_applied"] is False
    assert image.pixels.dtype == np.uint16
    assert np.array_equal(image.pixels, ds.pixel_array)
    slope = image.meta["dicom"]["RescaleSlope"]
    intercept = image.meta["dicom"]["RescaleIntercept"]
    # the stored values plus the recorded rescale give pydicom's output exactly
    assert np.array_equal(image.pixels.astype(np.float64) * slope + intercept, expected)
    # ... and the image descriptor itself carries them, for the loader's apply_rescale
    assert image.descriptor["rescale_slope"] == float(ds.RescaleSlope)
    assert image.descriptor["rescale_intercept"] == float(ds.RescaleIntercept)


def test_applied_rescale_leaves_no_slope_in_the_descriptor():
    image = read_image(_testdata("CT_small.dcm"))
    assert image.descriptor["rescale_applied"] is True
    assert "rescale_slope" not in image.descriptor


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG3_UNCR.dcm", "RG3_J2KR.dcm"])
def test_monochrome1_becomes_monochrome2_by_default_as_max_minus_x(name):
    path = _testdata(name)
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    max_stored = 2 ** int(ds.BitsStored) - 1  # no rescale on these CR files
    image = read_image(path)
    assert image.descriptor["photometric"] == "MONOCHROME2"
    assert image.descriptor["inverted_from"] == max_stored
    assert np.array_equal(image.pixels.astype(np.int64), max_stored - ds.pixel_array.astype(np.int64))
    # exact: inverting again gives the stored values back
    assert np.array_equal(max_stored - image.pixels.astype(np.int64), ds.pixel_array)


def test_monochrome1_kept_as_stored_on_request():
    path = _testdata("RG3_UNCR.dcm")
    ds, expected = _reference(path)
    image = read_image(path, monochrome1="keep")
    assert image.descriptor["photometric"] == "MONOCHROME1"
    assert image.descriptor["inverted_from"] is None
    assert np.array_equal(image.pixels, expected)
    assert image.descriptor["window_center"] == [550.0]
    assert image.descriptor["window_width"] == [1024.0]
    assert image.meta["monochrome1_inverted_from"] is None


def test_monochrome1_invert_is_lossless_and_mirrors_the_window():
    path = _testdata("RG3_UNCR.dcm")  # 10-bit: values 0..1023
    ds, expected = _reference(path)
    image = read_image(path, monochrome1="invert")
    assert image.descriptor["photometric"] == "MONOCHROME2"
    assert image.meta["monochrome1_inverted_from"] == 1023
    assert image.pixels.dtype == np.uint16
    assert np.array_equal(image.pixels, 1023 - expected.astype(np.int64))
    assert np.array_equal(1023 - image.pixels.astype(np.int64), expected)  # reversible
    assert image.descriptor["window_center"] == [1023 - 550.0]
    assert image.descriptor["window_width"] == [1024.0]
    # the source's own tag still says what the file was
    assert image.meta["dicom"]["PhotometricInterpretation"] == "MONOCHROME1"


def test_invert_leaves_monochrome2_alone():
    path = _testdata("examples_overlay.dcm")
    _, expected = _reference(path)
    image = read_image(path, monochrome1="invert")
    assert image.descriptor["photometric"] == "MONOCHROME2"
    assert np.array_equal(image.pixels, expected)


def test_descriptor_fields():
    image = read_image(_testdata("examples_overlay.dcm"))
    d = image.descriptor
    assert d["bit_depth"] == 12
    assert d["channels"] == 1
    assert d["pixel_spacing_mm"] == pytest.approx([0.72314049586777] * 2)
    assert d["window_center"] == [450.0, 200.0]
    assert d["window_width"] == [790.0, 443.0]
    # a zero PixelSpacing (RG1) is no spacing at all
    assert read_image(_testdata("RG1_UNCR.dcm")).descriptor["pixel_spacing_mm"] is None
    assert read_image(_testdata("RG1_UNCR.dcm")).descriptor["view"] == "PA"


def _identified_file(tmp_path: Path, name: str = "RG3_UNCR.dcm", **overrides: str) -> Path:
    ds = pydicom.dcmread(_testdata(name))
    _identify(ds, DemoImage(name, "train", 0, "097Y"))
    with pydicom.config.disable_value_validation():  # overrides may be invalid on purpose
        for keyword, value in overrides.items():
            if keyword in ds:
                del ds[keyword]  # an element keeps the validation mode it was created with
            setattr(ds, keyword, value)
        path = tmp_path / "identified.dcm"
        ds.save_as(path, enforce_file_format=True)
    return path


def _markers(path: Path) -> list[str]:
    full = pydicom.dcmread(path)
    uids = [str(full[k].value) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID") if k in full]
    return [*IDENTITY.values(), full.PatientID, PRIVATE_CREATOR, PRIVATE_TEXT, *uids]


def test_only_allow_listed_tags_leave_the_file(tmp_path):
    path = _identified_file(tmp_path)
    image = read_image(path)
    assert set(image.meta["dicom"]) <= set(ALLOWED_TAGS)
    assert set(image.meta) <= {"dicom", "sex", "age", "monochrome1_inverted_from",
                               "burned_in_annotation"}
    text = json.dumps([image.meta, image.descriptor])
    for marker in _markers(path):
        assert marker not in text
    for keyword in ("BurnedInAnnotation", "RequestAttributesSequence", "OverlayData", "PatientID"):
        assert keyword not in text


def test_identifying_tags_are_never_parsed(tmp_path):
    ds = read_dataset(_identified_file(tmp_path, name="examples_overlay.dcm"))
    parsed = {elem.keyword for elem in ds}
    # pydicom always reads SpecificCharacterSet: it says how to decode text
    assert parsed <= set(ALLOWED_TAGS) | {"PixelData", "PlanarConfiguration", "SpecificCharacterSet",
                                          "BurnedInAnnotation"}  # read, never copied
    assert not any(elem.tag.is_private for elem in ds)
    assert not any(0x6000 <= elem.tag.group <= 0x60FF for elem in ds)  # overlays
    assert "PatientName" not in ds and "RequestAttributesSequence" not in ds


def test_malformed_identifying_values_leave_no_trace_in_warnings_or_logs(tmp_path, caplog):
    # an invalid date in a PHI tag: a full parse would warn with the value in the message
    path = _identified_file(
        tmp_path, PatientBirthDate="Zebulon-1947", StudyDate="Quillfeather",
        BodyPartExamined="chest of Mrs Quillfeather",
    )
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_patient_id(path)
        image = read_image(path)
    said = " ".join(str(w.message) for w in caught) + caplog.text + json.dumps(image.meta)
    assert "Zebulon" not in said and "Quillfeather" not in said


def test_code_strings_with_free_text_are_dropped(tmp_path):
    path = _identified_file(tmp_path, BodyPartExamined="left lung of Mrs Quill", ViewPosition="PA")
    meta = read_image(path).meta["dicom"]
    assert meta["BodyPartExamined"] is None
    assert meta["ViewPosition"] == "PA"


@pytest.mark.parametrize(
    ("age", "sex", "expected"),
    [
        ("045Y", "F", {"age": 45.0, "sex": "F"}),
        ("089Y", "M", {"age": 89.0, "sex": "M"}),
        ("097Y", "O", {"age": 90.0, "sex": "O"}),  # Safe Harbor: 90 or older is one category
        ("018M", "", {"age": 1.0, "sex": None}),  # every key, null when absent
        ("3 years", "female", {"age": None, "sex": None}),
    ],
)
def test_demographics(age, sex, expected):
    ds = pydicom.Dataset()
    with pydicom.config.disable_value_validation():
        ds.PatientAge, ds.PatientSex = age, sex
    assert demographics(ds) == expected


def test_metadata_values_are_plain_json():
    ds = read_dataset(_testdata("examples_overlay.dcm"))
    meta = dicom_metadata(ds)
    assert json.loads(json.dumps(meta)) == meta
    assert meta["PixelSpacing"] == pytest.approx([0.72314049586777] * 2)
    assert meta["Rows"] == 300 and isinstance(meta["Rows"], int)


def test_read_patient_id(tmp_path):
    path = _identified_file(tmp_path)
    assert read_patient_id(path) == "VNPID58213QX"
    ds = pydicom.dcmread(path)
    ds.PatientID = ""
    ds.save_as(path)
    assert read_patient_id(path) is None
    assert read_patient_id(tmp_path / "absent.dcm") is None


def test_broken_files_raise_record_errors_without_values(tmp_path):
    not_dicom = tmp_path / "notes.dicom"
    not_dicom.write_text("Quillfeather Rosamund 19470214")
    with pytest.raises(RecordError, match="not a readable DICOM file") as err:
        read_image(not_dicom)
    assert "Quillfeather" not in str(err.value)
    with pytest.raises(RecordError, match="missing file"):
        read_image(tmp_path / "absent.dicom")
    with pytest.raises(RecordError, match="multi-frame"):
        read_image(_testdata("emri_small.dcm"))
    with pytest.raises(RecordError, match="no pixel data"):
        read_image(_testdata("rtplan.dcm"))


def test_truncated_pixel_data_is_a_record_error(tmp_path):
    raw = _testdata("RG3_UNCR.dcm").read_bytes()
    path = tmp_path / "truncated.dicom"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(RecordError):
        read_image(path)


def test_colour_images_pass_through():
    path = _testdata("SC_rgb.dcm")
    ds = pydicom.dcmread(path)
    image = decode_image(read_dataset(path))
    assert image.pixels.shape == (100, 100, 3)
    assert image.descriptor["channels"] == 3
    assert np.array_equal(image.pixels, ds.pixel_array)


def test_unknown_monochrome1_policy_is_refused():
    with pytest.raises(ValueError, match="monochrome1"):
        read_image(_testdata("RG3_UNCR.dcm"), monochrome1="flip")


@pytest.mark.parametrize(
    ("compressed", "uncompressed"),
    [("RG3_J2KR.dcm", "RG3_UNCR.dcm"), ("MR2_J2KR.dcm", "MR2_UNCR.dcm")],
)
def test_lossless_jpeg2000_decodes_to_the_uncompressed_pixels(compressed, uncompressed):
    # the same images stored both ways: an independent check of the installed J2K decoder
    a = read_image(_testdata(compressed))
    b = read_image(_testdata(uncompressed))
    assert a.pixels.dtype == b.pixels.dtype
    assert np.array_equal(a.pixels, b.pixels)
    assert a.descriptor["source_encoding"] == "dicom:1.2.840.10008.1.2.4.90"
