"""Real fundus pictures for the fundus fixtures, from scikit-image's bundled data.

scikit-image 0.26 ships, inside its wheel, `skimage/data/retina.jpg` (1411 x 1411 colour
photograph of a normal left eye, Wikimedia Commons, CC0 1.0; Häggström 2014) and
`microaneurysms.png` (102 x 102 green-channel crop of HRF image 07_dr.JPG, CC0 by the owner;
Budai et al. 2013), as `skimage.data.retina` / `microaneurysms` document them. Both are read
from the installed package: nothing is downloaded. Fixtures
take views of the real photograph (crops, flips, downsizing) so each record differs while the
pixels stay fundus.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np


def _data_file(name: str) -> Path:
    import skimage

    path = Path(skimage.__file__).parent / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not in the installed scikit-image; the fundus "
                                "fixtures need scikit-image>=0.24 (medshard[formats])")
    return path


@lru_cache(maxsize=1)
def retina() -> np.ndarray:
    """The bundled colour fundus photograph, H x W x 3 uint8 (read-only: cached)."""
    from PIL import Image

    with Image.open(_data_file("retina.jpg")) as im:
        picture = np.asarray(im.convert("RGB"))
    picture.flags.writeable = False
    return picture


def microaneurysms() -> np.ndarray:
    """The bundled HRF crop with microaneurysms, as 3 equal channels (fundus sets ship RGB)."""
    from PIL import Image

    with Image.open(_data_file("microaneurysms.png")) as im:
        grey = np.asarray(im.convert("L"))
    return np.repeat(grey[..., None], 3, axis=2)


def fundus_view(n: int, side: int = 96) -> np.ndarray:
    """View `n` of the real photographs: a crop of retina.jpg (or the microaneurysm crop for
    every fifth view), mirrored for odd n like a left eye, downsized to about `side` pixels."""
    from PIL import Image

    if n % 5 == 4:
        picture = microaneurysms()
    else:
        full = retina()
        h, w = full.shape[:2]
        m = (n % 4) * h // 16
        picture = full[m: h - m // 2, m // 2: w - m]
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
