"""A miniature Brain MRI Images for Brain Tumor Detection in its Kaggle layout, real slices.

Real: the pixels (axial slices of nibabel's bundled MRI volumes, mirrored left-right so
they differ from the other brain fixtures). Illustrative: yes/no of each slice and the
file names (in the set's mixed style: `Y1.jpg`, `Y2.JPG`, `no 1.jpg`, `1 no.jpeg`). As
the Kaggle archive does, the same files sit twice: in `yes/`, `no/` and again in
`brain_tumor_dataset/`; only the top copy is read. Broken: a truncated JPEG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medshard.sources.mri.class_folders import image_record_id
from medshard.sources.mri.slices_fixture import real_mri_slices, truncated_jpeg, write_image

# (class folder, file name, slice index, RGB)
FILES = [
    ("yes", "Y1.jpg", 0, False),
    ("yes", "Y2.JPG", 1, False),
    ("yes", "Y3.jpg", 2, True),
    ("yes", "Y4.jpg", 3, False),
    ("yes", "Y5.jpg", 4, False),
    ("yes", "Y6.jpg", 5, False),
    ("no", "no 1.jpg", 6, False),
    ("no", "N1.JPG", 8, False),
    ("no", "1 no.jpeg", 9, True),
    ("no", "No12.jpg", 10, False),
]
TRUNCATED = ("no", "no 2.jpg")


def write_fixture(root: Path) -> Path:
    slices = real_mri_slices()
    for top in (root, root / "brain_tumor_dataset"):
        for cls, name, index, rgb in FILES:
            write_image(top / cls / name, np.fliplr(slices[index]).copy(), rgb)
        (top / "/".join(TRUNCATED)).write_bytes(truncated_jpeg(np.fliplr(slices[13]).copy()))
    return root


def record_id(cls: str, name: str) -> str:
    return image_record_id(cls, name)


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 8, "val": 2},
        quarantined={record_id(*TRUNCATED): "transform"},
        real="axial slices of nibabel's bundled MRI volumes (`example4d.nii.gz`, "
        "`anatomical.nii`), mirrored, 8-bit JPEG as the Kaggle set ships",
        illustrative="yes/no of each slice and file names; the archive's second copy under "
        "brain_tumor_dataset/; a truncated JPEG",
    )


FIXTURE = _fixture()
