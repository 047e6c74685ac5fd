"""Illustrative skin-lesion pictures for the dermatology fixtures.

No dermoscopic or clinical skin photograph with a clear licence ships inside any package
(../shared/FIXTURE-DATA.md), so the dermatology fixtures draw their pictures: a skin-toned
field with a pigmented, irregular blob, seeded per image. They exercise the real formats
(JPEG as the ISIC archive and HAM10000 ship it, PNG as PAD-UFES-20 does) and nothing more:
the pixels are **illustrative**, never dermatology.
"""

from __future__ import annotations

import io

import numpy as np


def lesion_picture(seed: int, height: int = 72, width: int = 96) -> np.ndarray:
    """An H x W x 3 uint8 picture: skin tone, an irregular darker blob, mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    cy = height * rng.uniform(0.4, 0.6)
    cx = width * rng.uniform(0.4, 0.6)
    angle = np.arctan2(yy - cy, xx - cx)
    radius = min(height, width) * rng.uniform(0.2, 0.35)
    edge = radius * (1 + 0.15 * np.sin(3 * angle + rng.uniform(0, 6)))
    inside = np.hypot(yy - cy, xx - cx) < edge
    skin = np.array([rng.uniform(200, 235), rng.uniform(150, 185), rng.uniform(120, 160)])
    pigment = np.array([rng.uniform(60, 120), rng.uniform(35, 70), rng.uniform(20, 50)])
    img = np.where(inside[..., None], pigment, skin) + rng.normal(0, 6, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(picture: np.ndarray, fmt: str) -> bytes:
    """The picture as JPEG (quality 90) or PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()
