"""Brain Tumor MRI Dataset, Kaggle (Masoud Nickparvar): 7,023 slices, 4 classes (MultiMed's set).

Raw layout (the Kaggle download `masoudnickparvar/brain-tumor-mri-dataset`, unzipped):
    Training/{glioma,meningioma,notumor,pituitary}/Tr-<gl|me|no|pi>_NNNN.jpg
    Testing/{glioma,meningioma,notumor,pituitary}/Te-<gl|me|no|pi>_NNNN.jpg
Where each fact came from: MultiMed cites a 7,023-scan Kaggle brain tumour MRI set ([9])
without naming it (../shared/SOURCES.md: unconfirmed); the only Kaggle set of exactly
7,023 images is this one. Folder and file names (`Training/glioma/Tr-gl_0010.jpg`,
`Testing/notumor/Te-no_0010.jpg`) are from public code that reads the set; the split
counts 5,712 / 1,311 and the composition (figshare's Cheng et al. set, SARTAJ =
`brain-tumor` without its glioma folder, Br35H for `notumor`) and CC0 are the Kaggle
page's description, not re-checked here: re-check them against the page.

Labels: the class folder, verbatim (`glioma`, `meningioma`, `notumor`, `pituitary`): the
same concepts as `brain-tumor`'s folders (docs/vocabulary.md).

Split: the official Training/Testing folders (Testing = test); val carved from Training
by keyed hash of the image. No patient identity is published (figshare's patient ids are
lost in the renaming), so the unit kept whole is the image. The set re-uses images of
`brain-tumor` and of Br35H: build with the others and read the manifest's duplicate
report, or build with `--dedupe`, before mixing them.
"""

from __future__ import annotations

from typing import ClassVar

from medshard.schemas import License, SourceInfo
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import CarveValOptions
from medshard.sources.mri.class_folders import ClassFolderImages

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


class BrainTumorMRI7023(ClassFolderImages):
    Options = CarveValOptions
    fixture = "medshard.sources.mri.brain_tumor_mri_7023_fixture:FIXTURE"
    split_folders: ClassVar[dict[str, str | None]] = {"Training": "train", "Testing": "test"}
    class_folders = CLASSES

    info: ClassVar[SourceInfo] = SourceInfo(
        name="brain-tumor-mri-7023",
        title="Brain Tumor MRI Dataset, 7,023 images (Nickparvar, Kaggle)",
        version="kaggle-v1",
        modality="mri",
        tasks=["multi-class classification"],
        license=License(name="CC0 1.0 (as the Kaggle page states)", spdx="CC0-1.0",
                        url="https://www.kaggle.com/datasets/masoudnickparvar/"
                        "brain-tumor-mri-dataset",
                        terms_version="as stated on the Kaggle page"),
        access="open",
        homepage="https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset",
        citation="Nickparvar M. Brain Tumor MRI Dataset. Kaggle, 2021. "
        "doi:10.34740/KAGGLE/DSV/2645886",
        label_space=list(CLASSES),
        split_policy="official Training/Testing folders (Testing is test); val carved from "
        "Training by keyed hash of the image (no patient ids)",
        split_unit="image",
        release_notes={"0.1.0": "first medshard adapter: Training/Testing class folders"},
        published_counts=PublishedCounts(
            train=5712, test=1311, unit="images",
            reference="MultiMed [9] gives the total 7,023 only; the split is the Kaggle "
            "page's Training/Testing folders"),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="kaggle", dataset="masoudnickparvar/brain-tumor-mri-dataset",
        approx_bytes=160_000_000)
