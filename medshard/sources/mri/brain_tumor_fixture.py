"""A miniature Brain Tumor Classification (MRI) in its Kaggle layout, from real MRI slices.

Real: the pixels (axial slices of nibabel's bundled MRI volumes, `slices_fixture`).
Illustrative: which slice sits in which class folder, and the file names (in the set's
own style). One slice is planted here and in `brain-tumor-mri-7023`'s Testing folder,
as the two real sets share images. Broken: a truncated JPEG and a file that is not an
image, both quarantined at `transform`.
"""

from __future__ import annotations

from pathlib import Path

from medshard.sources.mri.class_folders import image_record_id
from medshard.sources.mri.slices_fixture import (
    SHARED_SLICE,
    real_mri_slices,
    truncated_jpeg,
    write_image,
)

# (folder, class folder, file name, slice index, RGB)
FILES = [
    ("Training", "glioma_tumor", "gg (1).jpg", 0, False),
    ("Training", "glioma_tumor", "gg (2).jpg", 1, True),
    ("Training", "meningioma_tumor", "m (1).jpg", 2, False),
    ("Training", "meningioma_tumor", "m (2).jpg", SHARED_SLICE, False),
    ("Training", "no_tumor", "image(1).jpg", 3, False),
    ("Training", "no_tumor", "1.jpg", 4, False),
    ("Training", "pituitary_tumor", "p (1).jpg", 5, True),
    ("Training", "pituitary_tumor", "p (2).jpg", 6, False),
    ("Testing", "glioma_tumor", "image(1).jpg", 8, False),
    ("Testing", "meningioma_tumor", "image(1).jpg", 9, False),
    ("Testing", "no_tumor", "image(1).jpg", 10, False),
    ("Testing", "pituitary_tumor", "image(1).jpg", 20, False),
]
TRUNCATED = ("Training", "glioma_tumor", "gg (3).jpg")
NOT_AN_IMAGE = ("Training", "no_tumor", "image(2).jpg")


def write_fixture(root: Path) -> Path:
    slices = real_mri_slices()
    for folder, cls, name, index, rgb in FILES:
        write_image(root / folder / cls / name, slices[index], rgb)
    (root / "/".join(TRUNCATED)).write_bytes(truncated_jpeg(slices[12]))
    (root / "/".join(NOT_AN_IMAGE)).write_bytes(b"<html>Kaggle download interrupted</html>\n")
    return root


def record_id(folder: str, cls: str, name: str) -> str:
    return image_record_id(f"{folder}_{cls}", name)


LONG_NAME = "glioma scan " + "x" * 150 + ".jpg"


def long_name(root: Path, outside: Path):
    """An image whose file name (166 characters) cannot fit a tar member name."""
    from medshard.testing.adversarial import Expect

    write_image(root / "Training" / "glioma_tumor" / LONG_NAME, real_mri_slices()[0])
    return Expect(long_keys=(record_id("Training", "glioma_tumor", LONG_NAME),))


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 7, "val": 1, "test": 4},
        quarantined={record_id(*TRUNCATED): "transform", record_id(*NOT_AN_IMAGE): "transform"},
        adversarial={"long_name": long_name},
        real="axial slices of nibabel's bundled MRI volumes (`example4d.nii.gz`, "
        "`anatomical.nii`), 8-bit JPEG as the Kaggle set ships",
        illustrative="class of each slice and file names; one slice is also in "
        "brain-tumor-mri-7023 (planted duplicate); a truncated JPEG and a non-image file",
    )


FIXTURE = _fixture()
