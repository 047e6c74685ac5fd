"""A miniature BUSI in its real layout, from real ultrasound images pydicom ships.

Real: the pixels, grey ultrasound images from pydicom's `OBXXXX1A_2frame.dcm` and
pydicom-data's `US1_UNCR.dcm` (obstetric and abdominal scans, not breast), cropped and
shrunk to BUSI-like sizes and saved as PNG (most as 3 identical channels, like BUSI).
Illustrative: the anatomy, the classes, and the lesion masks (ellipses drawn on the
image grid). `benign (2)` has two lesion masks (`_mask.png`, `_mask_1.png`). Broken on
purpose: a truncated image and a mask whose size differs from its image (the adversarial
case adds a mask with no image: a bad listing entry).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

RELEASE = "Dataset_BUSI_with_GT"
# (class, n, image size (w, h), lesion ellipses (cx, cy, rx, ry) as fractions, rgb?)
IMAGES = [
    ("normal", 1, (180, 140), [], True),
    ("normal", 2, (160, 130), [], True),
    ("normal", 3, (170, 150), [], False),
    ("benign", 1, (180, 150), [(0.5, 0.45, 0.15, 0.1)], True),
    ("benign", 2, (200, 160), [(0.3, 0.4, 0.1, 0.08), (0.7, 0.6, 0.12, 0.09)], True),
    ("benign", 3, (170, 140), [(0.55, 0.5, 0.2, 0.12)], False),
    ("malignant", 1, (190, 150), [(0.45, 0.5, 0.22, 0.18)], True),
    ("malignant", 2, (180, 160), [(0.5, 0.55, 0.18, 0.2)], True),
    ("malignant", 4, (160, 140), [(0.5, 0.5, 0.1, 0.1)], True),
]
TRUNCATED = ("malignant", 3)
WRONG_SIZE_MASK = ("malignant", 4)
ORPHAN_MASK = "benign (9)_mask.png"


def _ellipse_mask(size: tuple[int, int], ellipse: tuple[float, float, float, float]) -> np.ndarray:
    from PIL import Image, ImageDraw

    w, h = size
    cx, cy, rx, ry = ellipse
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).ellipse([(cx - rx) * w, (cy - ry) * h, (cx + rx) * w, (cy + ry) * h],
                               fill=255)
    return np.asarray(im)


def write_fixture(root: Path) -> Path:
    from PIL import Image

    from medshard.sources.ultrasound.echonet_fixture import ultrasound_frames

    frames = ultrasound_frames()
    for i, (cls, n, size, lesions, rgb) in enumerate(IMAGES):
        folder = root / RELEASE / cls
        folder.mkdir(parents=True, exist_ok=True)
        frame = frames[i % len(frames)]
        h, w = frame.shape
        crop = frame[(i * 23) % (h // 4):, (i * 31) % (w // 4):]
        im = Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR)
        (im.convert("RGB") if rgb else im).save(folder / f"{cls} ({n}).png")
        masks = [_ellipse_mask(size, e) for e in lesions] or [np.zeros(size[::-1], np.uint8)]
        for k, mask in enumerate(masks):
            suffix = "_mask" if k == 0 else f"_mask_{k}"
            if (cls, n) == WRONG_SIZE_MASK:
                mask = mask[:-10]
            Image.fromarray(mask).save(folder / f"{cls} ({n}){suffix}.png")
    cls, n = TRUNCATED
    good = (root / RELEASE / "malignant" / "malignant (1).png").read_bytes()
    (root / RELEASE / cls / f"{cls} ({n}).png").write_bytes(good[: len(good) // 2])
    Image.fromarray(np.zeros((140, 160), np.uint8)).save(root / RELEASE / cls / f"{cls} ({n})_mask.png")
    return root


def orphan_mask(root: Path, outside: Path):
    """A mask file with no image beside it: a bad listing entry, the listing goes on."""
    from PIL import Image

    from medshard.testing.adversarial import Expect

    Image.fromarray(np.zeros((100, 100), np.uint8)).save(root / RELEASE / "benign" / ORPHAN_MASK)
    rel = f"{RELEASE}/benign/{ORPHAN_MASK}:0"
    return Expect({rel: "list"}, {rel: "has no image"})


def long_name(root: Path, outside: Path):
    """An image (and its mask) whose file name is longer than a tar header holds."""
    from medshard.testing.adversarial import Expect

    folder = root / RELEASE / "benign"
    stem = "benign (" + "8" * 160 + ")"
    (folder / f"{stem}.png").write_bytes((folder / "benign (1).png").read_bytes())
    (folder / f"{stem}_mask.png").write_bytes((folder / "benign (1)_mask.png").read_bytes())
    return Expect(long_keys=(f"benign_{'8' * 160}",))


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 6, "val": 1, "test": 1},  # keyed hash of each image
        quarantined={
            "malignant_3": "transform",
            "malignant_4": "transform",
        },
        adversarial={"long_name": long_name, "malformed_row": orphan_mask},
        real="pixels of pydicom's `OBXXXX1A_2frame.dcm` and pydicom-data's `US1_UNCR.dcm` "
        "ultrasound images (grey, cropped and shrunk)",
        illustrative="anatomy (obstetric/abdominal, not breast), classes and lesion masks "
        "(ellipses); one image with two masks; a truncated image and a mask of the wrong size "
        "(quarantined)",
    )


FIXTURE = _fixture()
