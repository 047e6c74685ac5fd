"""A miniature 7,023-image Brain Tumor MRI Dataset in its Kaggle layout, from real MRI slices.

Real: the pixels (axial slices of nibabel's bundled MRI volumes, `slices_fixture`).
Illustrative: which slice sits in which class folder; the file names follow the set's
`Tr-gl_0001.jpg` pattern. Planted duplicates, as in the real set: one slice also in
`brain-tumor`'s Training folder (here in Testing), one slice in both Training and
Testing. Broken: a truncated JPEG, quarantined at `transform`.
"""

from __future__ import annotations

from pathlib import Path

from medshard.sources.mri.class_folders import image_record_id
from medshard.sources.mri.slices_fixture import (
    SHARED_SLICE,
    TRAIN_TEST_SLICE,
    real_mri_slices,
    truncated_jpeg,
    write_image,
)

# (folder, class folder, file name, slice index, RGB)
FILES = [
    ("Training", "glioma", "Tr-gl_0001.jpg", 12, False),
    ("Training", "glioma", "Tr-gl_0002.jpg", 13, False),
    ("Training", "meningioma", "Tr-me_0001.jpg", 14, False),
    ("Training", "meningioma", "Tr-me_0002.jpg", TRAIN_TEST_SLICE, False),
    ("Training", "notumor", "Tr-no_0001.jpg", 15, False),
    ("Training", "pituitary", "Tr-pi_0001.jpg", 16, False),
    ("Training", "pituitary", "Tr-pi_0002.jpg", 21, True),
    ("Testing", "glioma", "Te-gl_0001.jpg", 17, False),
    ("Testing", "meningioma", "Te-me_0001.jpg", SHARED_SLICE, False),
    ("Testing", "meningioma", "Te-me_0002.jpg", TRAIN_TEST_SLICE, False),
    ("Testing", "notumor", "Te-no_0001.jpg", 22, False),
    ("Testing", "pituitary", "Te-pi_0001.jpg", 18, False),
]
TRUNCATED = ("Training", "pituitary", "Tr-pi_0003.jpg")


def write_fixture(root: Path) -> Path:
    slices = real_mri_slices()
    for folder, cls, name, index, rgb in FILES:
        write_image(root / folder / cls / name, slices[index], rgb)
    (root / "/".join(TRUNCATED)).write_bytes(truncated_jpeg(slices[19]))
    return root


def record_id(folder: str, cls: str, name: str) -> str:
    return image_record_id(f"{folder}_{cls}", name)


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 4, "val": 3, "test": 5},
        quarantined={record_id(*TRUNCATED): "transform"},
        real="axial slices of nibabel's bundled MRI volumes (`example4d.nii.gz`, "
        "`anatomical.nii`), 8-bit JPEG as the Kaggle set ships",
        illustrative="class of each slice; one slice also in brain-tumor and one in both "
        "Training and Testing (planted duplicates); a truncated JPEG",
    )


FIXTURE = _fixture()
