"""Brain Tumor Classification (MRI), Kaggle (Sartaj Bhuvaji et al.): 3,264 JPEG slices, 4 classes.

Raw layout (the Kaggle download `sartajbhuvaji/brain-tumor-classification-mri`, unzipped):
    Training/{glioma_tumor,meningioma_tumor,no_tumor,pituitary_tumor}/*.jpg
    Testing/{glioma_tumor,meningioma_tumor,no_tumor,pituitary_tumor}/*.jpg
File names are free text such as `gg (1).jpg`, `m (12).jpg`, `image(3).jpg`, `p (7).jpg`.
Where each fact came from: the folder names and the Training/Testing split are what
CLIMB's loader reads (DDVD233/CLIMB `src/datasets/mri/brain_tumor.py`: the four class
folders under `Training` for train and `Testing` for test); the counts 2,870 / 394 are
CLIMB's Table (A.2); MIT licence and the Kaggle page from ../shared/SOURCES.md (CLIMB's
table). The example file names are from public code that reads this set.

Labels: the class folder, verbatim (`source_labels["class_folder"]`); each tumour type
maps to its own concept and to `mri.brain-tumor`, `no_tumor` to `mri.no-brain-tumor`
(docs/vocabulary.md).

Split: the official Training/Testing folders (Testing = test, as CLIMB); val is carved
from Training by keyed hash. The set has no patient identity (no ids in names or
metadata), so the unit kept whole is the image: slices of one patient may sit in two
splits, and this set shares images with the 7,023-image set (`brain-tumor-mri-7023`),
which took Bhuvaji's non-glioma folders. Build them together and read the manifest's
duplicate report (or build with `--dedupe`) before mixing them.
"""

from __future__ import annotations

from typing import ClassVar

from medshard.schemas import License, SourceInfo
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import CarveValOptions
from medshard.sources.mri.class_folders import ClassFolderImages

CLASSES = ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor")


class BrainTumor(ClassFolderImages):
    Options = CarveValOptions
    fixture = "medshard.sources.mri.brain_tumor_fixture:FIXTURE"
    split_folders: ClassVar[dict[str, str | None]] = {"Training": "train", "Testing": "test"}
    class_folders = CLASSES

    info: ClassVar[SourceInfo] = SourceInfo(
        name="brain-tumor",
        title="Brain Tumor Classification (MRI) (Bhuvaji et al., Kaggle)",
        version="kaggle-v2",
        modality="mri",
        tasks=["multi-class classification"],
        license=License(name="MIT", spdx="MIT",
                        url="https://www.kaggle.com/datasets/sartajbhuvaji/"
                        "brain-tumor-classification-mri",
                        terms_version="as stated on the Kaggle page"),
        access="open",
        homepage="https://www.kaggle.com/datasets/sartajbhuvaji/brain-tumor-classification-mri",
        citation="Bhuvaji S, Kadam A, Bhumkar P, Dedge S, Kanchan S. Brain Tumor "
        "Classification (MRI). Kaggle, 2020. doi:10.34740/KAGGLE/DSV/1183165",
        label_space=list(CLASSES),
        split_policy="official Training/Testing folders (Testing is test); val carved from "
        "Training by keyed hash of the image (no patient ids)",
        split_unit="image",
        release_notes={"0.1.0": "first medshard adapter: Training/Testing class folders"},
        published_counts=PublishedCounts(train=2870, test=394, unit="images",
                                         reference="CLIMB A.2 (Training / Testing folders)"),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="kaggle", dataset="sartajbhuvaji/brain-tumor-classification-mri",
        approx_bytes=90_000_000)
