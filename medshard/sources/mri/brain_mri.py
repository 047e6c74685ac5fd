"""Brain MRI Images for Brain Tumor Detection, Kaggle (Navoneel Chakrabarty): 253 JPEGs, yes/no.

Raw layout (Kaggle `navoneel/brain-mri-images-for-brain-tumor-detection`, unzipped):
    yes/*.jpg   (tumour; names like `Y1.jpg`, `Y100.JPG`)
    no/*.jpg    (no tumour; names like `N1.JPG`, `no 1.jpg`, `1 no.jpeg`)
CLIMB downloads the mirror `jjprotube/brain-mri-images-for-brain-tumor-detection` of the
same files; either unzipped folder works. The archive also holds the same two folders again under `brain_tumor_dataset/`; the top
`yes/`, `no/` are read when present (as CLIMB does), else `brain_tumor_dataset/{yes,no}`,
never both (they would double every image). Where each fact came from: folder names and
CLIMB's reading (DDVD233/CLIMB `src/datasets/mri/brain_tumor_2.py`: labels `no`, `yes`,
every .jpg/.jpeg/.png under each folder, a seeded random 80/20 split); 202 / 51 from
CLIMB A.2; `brain_tumor_dataset/yes/Y1.jpg`, `.JPG` extensions and both nestings from
public code that reads this set; licence: none stated (../shared/SOURCES.md).

Labels: the folder, verbatim (`yes`, `no`): `mri.brain-tumor` / `mri.no-brain-tumor`.

Split: none is published. CLIMB's is a seeded shuffle of images; here the build assigns
one by keyed hash. The set carries no patient id at all (not in names, no metadata), so
the hash is of the image and patient-level splits cannot be promised (`split_unit` image).
"""

from __future__ import annotations

from typing import ClassVar

from medshard.schemas import License, SourceInfo
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.mri.class_folders import ClassFolderImages

CLASSES = ("yes", "no")


class BrainMRI(ClassFolderImages):
    fixture = "medshard.sources.mri.brain_mri_fixture:FIXTURE"
    split_folders: ClassVar[dict[str, str | None]] = {"": None}
    class_folders = CLASSES
    layout_folders = ("", "brain_tumor_dataset")
    task = "binary classification"

    info: ClassVar[SourceInfo] = SourceInfo(
        name="brain-mri",
        title="Brain MRI Images for Brain Tumor Detection (Chakrabarty, Kaggle)",
        version="kaggle-v1",
        modality="mri",
        tasks=["binary classification"],
        license=License(name="none stated (the dataset 'does not have a license')",
                        url="https://www.kaggle.com/datasets/navoneel/"
                        "brain-mri-images-for-brain-tumor-detection",
                        terms_version="not stated"),
        access="open",
        homepage="https://www.kaggle.com/datasets/navoneel/brain-mri-images-for-brain-tumor-detection",
        citation="Chakrabarty N. Brain MRI Images for Brain Tumor Detection. Kaggle, 2019.",
        label_space=list(CLASSES),
        split_policy="no official split and no patient ids: keyed hash of the image "
        "(80/10/10 by default)",
        split_unit="image",
        release_notes={"0.1.0": "first medshard adapter: yes/no folders, either nesting"},
        published_counts=PublishedCounts(
            train=202, test=51, unit="images",
            reference="CLIMB A.2 (a seeded random 80/20 split of the 253 images; ours is a "
            "keyed hash, so the per-split counts differ, the total must not)"),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="kaggle", dataset="navoneel/brain-mri-images-for-brain-tumor-detection",
        approx_bytes=16_000_000)
