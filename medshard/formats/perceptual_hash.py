"""A perceptual hash that ignores flips and quarter turns, and near-duplicate grouping.

Used where a dataset was augmented from fewer originals and publishes no map from copy to
original (LC25000), so that copies of one original can be kept in one split.

`dihedral_phash(image)`: the image in grey, area-averaged to 32 x 32, for each of the 8
flips/quarter turns the DCT-II's 8 x 8 lowest frequencies (DC excluded) thresholded at
their median -> 64 bits; the hash is the smallest of the 8 (so a flipped or rotated copy
has the same hash). Low frequencies change little under small rotations, zoom, and
brightness or colour jitter, so such copies land a few bits away; rotation by larger
arbitrary angles is not covered (a rotated copy whose hash differs by more than the
threshold stays in its own group).

`group_near_duplicates(hashes, max_distance)`: single-linkage groups of hashes within
`max_distance` bits (union-find over all pairs, in blocks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

HASH_SIDE = 32
LOW = 8
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: coefficients = M @ x."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(HASH_SIDE)


def grey_thumbnail(image: np.ndarray) -> np.ndarray:
    """H x W (x C) uint8/float -> 32 x 32 float64 grey, by area averaging (Pillow BOX)."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    img = Image.fromarray(arr.astype(np.float32), mode="F")
    return np.asarray(img.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX),
                      dtype=np.float64)


def _phash_bits(thumb: np.ndarray) -> int:
    coeffs = (_DCT @ thumb @ _DCT.T)[:LOW, :LOW].ravel()[1:]  # drop DC
    bits = coeffs > np.median(coeffs)
    out = 0
    for b in bits:
        out = (out << 1) | int(b)
    return out


def dihedral_phash(image: np.ndarray) -> int:
    """63-bit perceptual hash, the same for the image and its flips and quarter turns."""
    thumb = grey_thumbnail(image)
    variants = []
    for t in (thumb, thumb.T):
        for k in range(4):
            variants.append(_phash_bits(np.rot90(t, k)))
    return min(variants)


def hamming(a: int, b: int) -> int:
    return int(bin(a ^ b).count("1"))


def group_near_duplicates(hashes: Sequence[int], max_distance: int,
                          block: int = 1024) -> list[int]:
    """For each hash, the index of its group's first member (single linkage within
    `max_distance` bits). Groups are the same whatever order ties are met in."""
    n = len(hashes)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n == 0:
        return []
    h = np.array(hashes, dtype=np.uint64)
    for start in range(0, n, block):
        a = h[start:start + block]
        x = (a[:, None] ^ h[None, :]).view(np.uint8).reshape(len(a), n, 8)
        dist = _POPCOUNT[x].sum(axis=2)
        rows, cols = np.nonzero(dist <= max_distance)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i, j = start + r, c
            if j <= i:
                continue
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    return [find(i) for i in range(n)]
