"""MetaImage (`.mhd` header + `.raw` voxels) read with SimpleITK, region by region.

The header gives the voxel grid in ITK's physical space, which is LPS (x towards the
patient's Left, y Posterior, z Superior): point = Offset + Direction @ (Spacing * index),
index (i, j, k) with i fastest in the file. `affine_lps` is that map as a 4 x 4 matrix;
`LPS_TO_RAS @ affine_lps` is the same grid in RAS (nibabel's convention). Arrays are
returned in index order (i, j, k), i.e. the transpose of SimpleITK's `GetArrayFromImage`.

`read_region` reads only the requested box (SimpleITK's streamed ImageFileReader with
ExtractIndex/ExtractSize), so cutting a 48 mm cube from a 300-slice CT never holds the
whole CT. Header free fields (MetaImage accepts any `Key = value` line, e.g. a patient
name) are never returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class MetaImageError(Exception):
    """A MetaImage header or its voxel file cannot be read."""


@dataclass(frozen=True)
class MetaImageHeader:
    size: tuple[int, ...]  # voxels along i, j, k
    spacing: tuple[float, ...]  # mm along i, j, k
    origin: tuple[float, ...]  # LPS mm of voxel (0, 0, 0)
    direction: tuple[float, ...]  # row-major 3 x 3 direction cosines
    pixel_type: str  # SimpleITK's name, e.g. "16-bit signed integer"

    @property
    def affine_lps(self) -> np.ndarray:
        """Voxel index (i, j, k) -> LPS mm."""
        d = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        aff = np.eye(4)
        aff[:3, :3] = d * np.asarray(self.spacing, dtype=np.float64)[None, :]
        aff[:3, 3] = self.origin
        return aff


def _reader(path: Path):
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO("MetaImageIO")
    reader.SetFileName(str(path))
    return reader


def read_header(path: Path) -> MetaImageHeader:
    """The grid of a 3-D MetaImage, from its header only (no voxel is read)."""
    import SimpleITK as sitk

    reader = _reader(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise MetaImageError(f"unreadable MetaImage header: {_first_line(exc)}") from None
    if reader.GetDimension() != 3 or reader.GetNumberOfComponents() != 1:
        raise MetaImageError(f"MetaImage is {reader.GetDimension()}-D with "
                             f"{reader.GetNumberOfComponents()} components; expected a 3-D scalar CT")
    return MetaImageHeader(
        size=tuple(int(v) for v in reader.GetSize()),
        spacing=tuple(float(v) for v in reader.GetSpacing()),
        origin=tuple(float(v) for v in reader.GetOrigin()),
        direction=tuple(float(v) for v in reader.GetDirection()),
        pixel_type=sitk.GetPixelIDValueAsString(reader.GetPixelID()),
    )


def read_region(path: Path, start: tuple[int, int, int], size: tuple[int, int, int]) -> np.ndarray:
    """Voxels [start, start + size) in index order (i, j, k), native byte order.

    The box must lie inside the image (clip it first); only the box is read.
    """
    import SimpleITK as sitk

    reader = _reader(path)
    reader.SetExtractIndex([int(v) for v in start])
    reader.SetExtractSize([int(v) for v in size])
    try:
        image = reader.Execute()
    except RuntimeError as exc:  # truncated .raw, missing data file, bad box
        raise MetaImageError(
            "cannot read MetaImage voxels: the data file is missing or shorter than the header's "
            f"DimSize x ElementType ({_first_line(exc)}); re-download the scan") from None
    arr = sitk.GetArrayFromImage(image)  # (k, j, i)
    return np.ascontiguousarray(arr.transpose(2, 1, 0))


def read_volume(path: Path) -> tuple[np.ndarray, MetaImageHeader]:
    """The whole volume in index order (i, j, k) and its header."""
    header = read_header(path)
    return read_region(path, (0, 0, 0), header.size), header  # type: ignore[arg-type]


def _first_line(exc: BaseException) -> str:
    # SimpleITK's messages start with the C++ location; the reason follows "Reason:"
    text = " ".join(str(exc).split())
    _, _, reason = text.rpartition("Reason:")
    return (reason.strip() or text or type(exc).__name__)[:200]
