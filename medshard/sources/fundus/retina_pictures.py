"""Real fundus pictures for the fundus fixtures, from scikit-image's bundled data.

scikit-image 0.26 ships, inside its wheel, `skimage/data/retina.jpg` (1411 x 1411 colour
photograph of a normal left eye, Wikimedia Commons, CC0 1.0; Häggström 2014) and
`microaneurysms.png` (102 x 102 green-channel crop of HRF image 07_dr.JPG, CC0 by the owner;
Budai et al. 2013), as `skimage.data.retina` / `microaneurysms` document them. They come
through `medshard.testing.realdata` (sha256-checked: an installed scikit-image's copy, or
the file taken out of the wheel once), so scikit-image is not a dependency. Fixtures
take views of the real photograph (crops, flips, downsizing) so each record differs while the
pixels stay fundus.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np

from medshard.testing import realdata


@lru_cache(maxsize=1)
def retina() -> np.ndarray:
    """The bundled colour fundus photograph, H x W x 3 uint8 (read-only: cached)."""
    from PIL import Image

    with Image.open(realdata.get("skimage-retina")) as im:
        picture = np.asarray(im.convert("RGB"))
    picture.flags.writeable = False
    return picture


def microaneurysms() -> np.ndarray:
    """The bundled HRF crop with microaneurysms, as 3 equal channels (fundus sets ship RGB)."""
    from PIL import Image

    with Image.open(realdata.get("skimage-microaneurysms")) as im:
        grey = np.asarray(im.convert("L"))
    return np.repeat(grey[..., None], 3, axis=2)


def fundus_view(n: int, side: int = 96) -> np.ndarray:
    """View `n` of the real photographs: a crop of retina.jpg (of the microaneurysm crop for
    every fifth view) whose offsets move with n, so no two views of one fixture share their
    bytes; mirrored for odd n like a left eye; downsized to about `side` pixels."""
    from PIL import Image

    picture = microaneurysms() if n % 5 == 4 else retina()
    h, w = picture.shape[:2]
    top, left = (n * 37) % (h // 6), (n * 53) % (w // 6)
    picture = picture[top: h - (n * 11) % (h // 8), left: w - (n * 17) % (w // 8)]
    if n % 2:
        picture = picture[:, ::-1]
    im = Image.fromarray(np.ascontiguousarray(picture))
    im.thumbnail((side, side))
    return np.asarray(im)


def encode(picture: np.ndarray, fmt: str) -> bytes:
    """JPEG (quality 92) or PNG bytes of the picture."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buf.getvalue()
