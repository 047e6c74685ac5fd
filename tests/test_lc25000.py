"""LC25000 over its miniature (real H&E tiles): labels, layouts, and near-duplicate grouping."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from medshard.formats.near_duplicates import (
    descriptor_distance,
    group_near_duplicates,
    pairwise_distances,
    ring_descriptor,
)
from medshard.pipeline.split import DEFAULT_FRACTIONS, assign_split
from medshard.sources import get_source
from medshard.sources.pathology import lc25000_fixture as fx


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return fx.write_fixture(tmp_path_factory.mktemp("lc25000") / "lc25000")


def _records(src, root):
    return {r.record_id: r for r in src.list_records(root) if hasattr(r, "record_id")}


def test_class_is_the_folder_and_listing_reads_no_pixels(root):
    recs = _records(get_source("lc25000"), root)
    assert recs["lung_scc_lungscc1"].source_labels == {"class": "lung_scc"}
    assert recs["colon_n_colonn2"].files == [
        "lung_colon_image_set/colon_image_sets/colon_n/colonn2.jpeg"]
    assert all(r.subject_id == rid for rid, r in recs.items())  # default: split by image
    assert all(r.meta["near_duplicate_group"] is None for r in recs.values())


def test_climb_flat_layout_is_accepted(root, tmp_path):
    flat = tmp_path / "flat"
    for cls, group in (("colon_aca", "colon_image_sets"), ("lung_n", "lung_image_sets")):
        shutil.copytree(root / "lung_colon_image_set" / group / cls, flat / cls)
    recs = _records(get_source("lc25000"), flat)
    assert {r.source_labels["class"] for r in recs.values()} == {"colon_aca", "lung_n"}
    assert recs["colon_aca_colonca1"].files == ["colon_aca/colonca1.jpeg"]


@pytest.fixture(scope="module")
def tiles():
    from medshard.sources.pathology.he_slide import he_level0, tissue_fraction

    slide, side, out = he_level0(), 256, []
    for y in range(0, slide.shape[0] - side + 1, side):  # non-overlapping originals
        for x in range(0, slide.shape[1] - side + 1, side):
            t = slide[y:y + side, x:x + side]
            if tissue_fraction(t) >= 0.8:
                out.append(np.ascontiguousarray(t))
    return out[:8]


def _zoomed_rotation(tile, deg):
    """Rotation by SciPy (not the fixture's Pillow), then Augmentor's inscribed-square crop
    and resize back (OpenCV)."""
    import cv2
    from scipy.ndimage import rotate

    side = tile.shape[0]
    rot = rotate(tile, deg, axes=(1, 0), reshape=False, order=3, mode="reflect")
    t = np.radians(abs(deg))
    inner = int(side / (np.cos(t) + np.sin(t)))
    off = (side - inner) // 2
    crop = np.ascontiguousarray(rot[off:off + inner, off:off + inner])
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("deg", [5, 12, 25, -20])
def test_copies_are_close_and_distinct_tiles_far(tiles, deg):
    d = [ring_descriptor(t) for t in tiles]
    for i, t in enumerate(tiles):
        copy = _zoomed_rotation(t, deg)[:, ::-1]
        assert descriptor_distance(d[i], ring_descriptor(copy)) <= 0.18
    far = pairwise_distances(np.stack(d), np.stack(d))
    np.testing.assert_allclose(np.diag(far), 0.0, atol=1e-6)
    np.testing.assert_allclose(far, far.T, atol=1e-9)
    assert far[~np.eye(len(d), dtype=bool)].min() > 0.18


def test_quarter_turns_and_flips_change_nothing(tiles):
    d = ring_descriptor(tiles[0])
    for v in (tiles[0][:, ::-1], tiles[0][::-1], np.rot90(tiles[0]), np.rot90(tiles[0], 3)):
        assert descriptor_distance(d, ring_descriptor(np.ascontiguousarray(v))) < 0.02


def test_grouping_is_single_linkage_with_its_first_member_as_root(tiles):
    a, b = tiles[0], tiles[1]
    descs = [ring_descriptor(x) for x in (b, a, _zoomed_rotation(a, 15), b[::-1])]
    assert group_near_duplicates(descs, 0.18) == [0, 1, 1, 0]
    assert group_near_duplicates([], 0.18) == []


def test_near_duplicate_option_groups_exactly_the_augmented_family(root):
    src = get_source("lc25000", near_duplicate_groups=True)
    recs = _records(src, root)
    family = {f"colon_aca_{stem}" for stem in fx.FAMILY}
    groups = {rid: r.subject_id for rid, r in recs.items()}
    assert {groups[rid] for rid in family} == {"colon_aca_colonca1"}
    others = set(recs) - family
    assert all(groups[rid] == rid for rid in others)
    assert all(recs[rid].meta["near_duplicate_group"] == "colon_aca_colonca1" for rid in family)
    # one group -> one split, whatever the fractions
    assert len({assign_split("lc25000", groups[rid], None, DEFAULT_FRACTIONS)
                for rid in family}) == 1
    # the truncated JPEG cannot be hashed: it stays its own group, for load to quarantine
    assert groups[fx.BROKEN] == fx.BROKEN


def test_without_grouping_the_family_straddles_splits(root):
    """The leakage the option exists for: split by image, copies land on both sides."""
    recs = _records(get_source("lc25000"), root)
    splits = {assign_split("lc25000", recs[f"colon_aca_{s}"].subject_id, None,
                           {"train": 0.5, "test": 0.5}) for s in fx.FAMILY}
    assert splits == {"train", "test"}


def test_jpeg_bytes_are_kept(root):
    src = get_source("lc25000")
    rec = _records(src, root)["lung_aca_lungaca1"]
    sample = next(src.load(rec, root))
    assert sample.payloads["image"].data == (root / rec.files[0]).read_bytes()
    assert sample.classes == ["lung_aca"]


def test_options_are_bounded():
    with pytest.raises(ValueError, match="near_duplicate_max_distance"):
        get_source("lc25000", near_duplicate_max_distance=1.5)
