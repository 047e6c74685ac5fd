"""BCSS over its miniature (real H&E regions): names, site split, tiles, masks and composition."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from medshard.schemas import Filtered
from medshard.sources import get_source
from medshard.sources.pathology import bcss_fixture as fx
from medshard.sources.pathology.bcss import (
    GT_CODES,
    composition,
    cut_tiles,
    dominant_class,
    downsample_image,
    downsample_mask,
    parse_region_name,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return fx.write_fixture(tmp_path_factory.mktemp("bcss") / "bcss")


def _records(src, root):
    return {r.record_id: r for r in src.list_records(root)}


def test_region_name_gives_patient_site_origin_and_resolution():
    got = parse_region_name("TCGA-A1-A0SK-DX1_xmin45749_ymin25055_MPP-0.2500.png")
    assert got == {"slide": "TCGA-A1-A0SK-DX1", "patient": "TCGA-A1-A0SK", "site": "A1",
                   "xmin": 45749, "ymin": 25055, "mpp": 0.25}
    with pytest.raises(ValueError, match="not TCGA"):
        parse_region_name("TCGA-A1-A0SK_region.png")


def test_codes_are_the_published_table():
    assert GT_CODES[0] == "outside_roi" and GT_CODES[4] == "necrosis_or_debris"
    assert GT_CODES[21] == "other" and len(GT_CODES) == 22


def test_held_out_sites_are_test_and_patients_stay_whole(root):
    recs = _records(get_source("bcss", val_fraction=0.5), root)
    assert {r.split for r in recs.values() if r.meta["site"] in ("OL", "E2")} == {"test"}
    assert {r.split for r in recs.values() if r.meta["site"] not in ("OL", "E2")} <= {
        "train", "val"}
    two = [r for r in recs.values() if r.subject_id == "TCGA-A2-A0D0"]
    assert len(two) == 2 and len({r.split for r in two}) == 1


def test_image_downsampling_matches_opencv_area():
    img = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    ours = downsample_image(img, 4)
    ref = cv2.resize(img, (24, 16), interpolation=cv2.INTER_AREA)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


def test_mask_downsampling_is_the_block_mode_as_scipy_computes_it():
    from scipy import stats

    mask = np.random.default_rng(1).integers(0, 5, (32, 48), dtype=np.uint8)
    ours = downsample_mask(mask, 4)
    blocks = mask.reshape(8, 4, 12, 4).transpose(0, 2, 1, 3).reshape(8, 12, 16)
    ref = stats.mode(blocks, axis=2, keepdims=False).mode  # ties: the smallest value
    np.testing.assert_array_equal(ours, ref)


def test_composition_and_dominant_class():
    mask = np.zeros((10, 10), np.uint8)
    mask[:6] = 1
    mask[6:9] = 2
    comp = composition(mask)
    assert comp == [{"code": 0, "name": "outside_roi", "fraction": 0.1},
                    {"code": 1, "name": "tumor", "fraction": 0.6},
                    {"code": 2, "name": "stroma", "fraction": 0.3}]
    assert dominant_class(mask, 0.5) == "tumor"  # 60 of 90 annotated pixels
    assert dominant_class(mask, 0.7) is None
    assert dominant_class(np.full((4, 4), 9, np.uint8), 0.1) is None  # fat: no CLIMB class


def test_tiles_on_a_grid_skipping_unannotated_ones():
    image = np.zeros((256, 384, 3), np.uint8)
    mask = np.ones((256, 384), np.uint8)
    mask[:, 300:] = 0
    got = [(x, y) for x, y, *_ in cut_tiles(image, mask, 128, 1, 0.5)]
    assert got == [(0, 0), (128, 0), (0, 128), (128, 128)]  # x=256 tiles are 34% annotated
    assert len(list(cut_tiles(image, mask, 128, 1, 0.3))) == 6


def test_tiles_carry_the_raw_mask_codes_and_composition(root):
    src = get_source("bcss", tile_size=128)
    rec = _records(src, root)["TCGA-A1-A0SK-DX1_x45749_y25055"]
    samples = list(src.load(rec, root))
    assert [s.key_suffix for s in samples] == [
        "x0_y0", "x128_y0", "x256_y0", "x0_y128", "x128_y128", "x256_y128"]
    raw_mask = cv2.imread(str(root / rec.files[1]), cv2.IMREAD_UNCHANGED)
    raw_image = cv2.cvtColor(cv2.imread(str(root / rec.files[0])), cv2.COLOR_BGR2RGB)
    s = samples[4]
    np.testing.assert_array_equal(s.payloads["mask"].data, raw_mask[128:256, 128:256])
    np.testing.assert_array_equal(s.payloads["image"].data, raw_image[128:256, 128:256])
    codes, counts = np.unique(raw_mask[128:256, 128:256], return_counts=True)
    assert [c["code"] for c in s.meta["composition"]] == codes.tolist()
    np.testing.assert_allclose([c["fraction"] for c in s.meta["composition"]],
                               counts / counts.sum(), atol=1e-6)
    assert s.meta["tile_slide_origin_xy"] == [45749 + 128, 25055 + 128]
    assert s.meta["mpp"] == 0.25 and s.meta["magnification"] == "40x"
    assert s.payloads["mask"].descriptor["annotates"] == "image"
    assert s.classes == ([s.meta["dominant_class"]] if s.meta["dominant_class"] else [])


def test_coarser_resolution_tiles(root):
    src = get_source("bcss", tile_size=64, mpp=0.5)
    rec = _records(src, root)["TCGA-A1-A0SK-DX1_x45749_y25055"]
    samples = list(src.load(rec, root))
    assert len(samples) == 6 and samples[0].payloads["image"].data.shape == (64, 64, 3)
    raw_mask = cv2.imread(str(root / rec.files[1]), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(samples[0].payloads["mask"].data,
                                  downsample_mask(raw_mask[:128, :128], 2))
    assert samples[0].meta["magnification"] == "20x"


def test_a_region_outside_every_roi_is_filtered(root):
    src = get_source("bcss", tile_size=128)
    rec = _records(src, root)["TCGA-BH-A0BG-DX1_x5120_y6144"]
    with pytest.raises(Filtered, match="no tile"):
        list(src.load(rec, root))


def test_the_code_table_is_checked_and_is_a_label_file(root, tmp_path):
    import shutil

    from medshard.sources.base import MissingRawData

    src = get_source("bcss")
    assert src.label_files(root) == ["meta/gtruth_codes.tsv"]
    copy = tmp_path / "bcss"
    shutil.copytree(root, copy)
    tsv = copy / "meta" / "gtruth_codes.tsv"
    tsv.write_text(tsv.read_text().replace("stroma\t2", "stroma\t22"))
    with pytest.raises(MissingRawData, match="differs from the 2019 code table"):
        list(src.list_records(copy))
