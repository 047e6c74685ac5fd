"""BUSI over its miniature (real ultrasound pixels): one sample per image, every lesion mask a role."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from medshard.pipeline.encoders import encode_payloads
from medshard.schemas import RecordError
from medshard.sources import get_source
from medshard.sources.ultrasound import busi_fixture as fx
from medshard.sources.ultrasound.busi import record_id_of


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return fx.write_fixture(tmp_path_factory.mktemp("busi") / "busi")


@pytest.fixture(scope="module")
def records(root):
    return {r.record_id: r for r in get_source("busi").list_records(root)}


def test_record_ids_from_kaggle_names():
    assert record_id_of("benign", "benign (12)") == "benign_12"
    assert record_id_of("normal", "img 3") == "normal_img_3"


def test_masks_are_listed_with_their_image_not_as_images(records):
    assert set(records) == {f"{c}_{n}" for c, n, *_ in fx.IMAGES} | {"malignant_3"}
    r = records["benign_2"]
    assert r.files == [f"{fx.RELEASE}/benign/benign (2).png",
                       f"{fx.RELEASE}/benign/benign (2)_mask.png",
                       f"{fx.RELEASE}/benign/benign (2)_mask_1.png"]
    assert r.meta["mask_index"] == [0, 1]
    assert r.source_labels == {"class": "benign"}
    assert r.split is None and r.subject_id == "benign_2"  # no patient ids: split by image


def test_two_masks_are_two_roles_aligned_with_the_image(root, records):
    r = records["benign_2"]
    sample = next(get_source("busi").load(r, root))
    assert set(sample.payloads) == {"image", "mask", "mask_1"}
    assert sample.meta == {"n_masks": 2, "mask_roles": ["mask", "mask_1"]}
    image = cv2.imread(str(root / r.files[0]), cv2.IMREAD_UNCHANGED)
    for role, rel in (("mask", r.files[1]), ("mask_1", r.files[2])):
        raw = cv2.imread(str(root / rel), cv2.IMREAD_GRAYSCALE)  # OpenCV, not Pillow
        got = sample.payloads[role].data
        assert got.shape == raw.shape == image.shape[:2]
        np.testing.assert_array_equal(got, (raw >= 128).astype(np.uint8))
        assert got.any()
    # the two lesions are different pixels: kept apart, not merged
    assert not (sample.payloads["mask"].data & sample.payloads["mask_1"].data).any()
    members, desc = encode_payloads(sample, {}, "ultrasound", "busi_benign_2")
    assert set(members) == {"image.png", "mask.png", "mask_1.png"}
    assert desc["mask_1"]["annotates"] == "image"
    assert (desc["mask_1"]["height"], desc["mask_1"]["width"]) == (
        desc["image"]["height"], desc["image"]["width"])
    decoded = cv2.imdecode(np.frombuffer(members["mask_1.png"], np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded, sample.payloads["mask_1"].data)


def test_normal_images_carry_their_empty_mask(root, records):
    sample = next(get_source("busi").load(records["normal_1"], root))
    assert sample.classes == ["normal"] and not sample.payloads["mask"].data.any()


def test_image_bytes_are_kept(root, records):
    r = records["malignant_1"]
    sample = next(get_source("busi").load(r, root))
    assert sample.payloads["image"].data == (root / r.files[0]).read_bytes()


def test_a_mask_of_another_size_is_refused_when_encoded(root, records):
    sample = next(get_source("busi").load(records["malignant_4"], root))
    with pytest.raises(RecordError, match="annotates"):
        encode_payloads(sample, {}, "ultrasound", "busi_malignant_4")


def test_a_mask_number_beyond_the_declared_roles_is_a_record_error(root, tmp_path, records):
    import shutil

    copy = tmp_path / "busi"
    shutil.copytree(root, copy)
    src = copy / fx.RELEASE / "benign" / "benign (1)_mask.png"
    shutil.copy(src, src.with_name("benign (1)_mask_5.png"))
    src_obj = get_source("busi")
    rec = next(r for r in src_obj.list_records(copy) if r.record_id == "benign_1")
    with pytest.raises(RecordError, match="mask number 5"):
        next(src_obj.load(rec, copy))
