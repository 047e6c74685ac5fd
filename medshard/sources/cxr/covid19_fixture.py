"""A miniature COVID-19 Detection X-Ray set in its real layout, from real radiographs.

Real: the pixels, from pydicom-data's computed radiographs `RG1_UNCR.dcm` and
`RG3_UNCR.dcm` (8-bit, as CheXpert's fixture makes them), saved as JPEG, some as PNG.
Illustrative: the file names (the collections' naming patterns), the class of each image
and the upstream covid-chestxray-dataset `metadata.csv` rows (its column names, invented
values; a planted identity in its free-text and location columns must never leave the
source); several images are crops of the same radiograph. Broken on purpose: one image is
truncated, one is empty.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

# folder, class folder, file name
IMAGES = [
    ("TrainData", "Normal", "IM-0115-0001.jpeg"),
    ("TrainData", "Normal", "NORMAL2-IM-0552-0001.jpeg"),
    ("TrainData", "BacterialPneumonia", "person1_bacteria_1.jpeg"),
    ("TrainData", "BacterialPneumonia", "person1_bacteria_2.jpeg"),
    ("TrainData", "ViralPneumonia", "person33_virus_72.jpeg"),
    ("TrainData", "COVID-19", "covid-19-pneumonia-15-PA.jpg"),
    ("TrainData", "COVID-19", "auntminnie-a-2020_01_28_23_51_6665_2020_01_28_Vietnam.jpeg"),
    ("TrainData", "COVID-19", "nejmoa2001191_f1-PA.png"),
    ("ValData", "Normal", "IM-0003-0001.jpeg"),
    ("ValData", "BacterialPneumonia", "person102_bacteria_487.jpeg"),
    ("ValData", "ViralPneumonia", "person35_virus_80.jpeg"),
    ("ValData", "COVID-19", "covid-19-pneumonia-15-L.jpg"),
    ("ValData", "COVID-19", "ct-scan-slice-01.png"),
    ("TrainData", "ViralPneumonia", "person1500_virus_2611.jpeg"),  # truncated
    ("ValData", "Normal", "IM-0999-0001.jpeg"),  # empty file
]
TRUNCATED = "person1500_virus_2611.jpeg"
EMPTY = "IM-0999-0001.jpeg"
PHI_MARKER = "Wexley Marchbank"
UPSTREAM_COLUMNS = [
    "patientid", "offset", "sex", "age", "finding", "RT_PCR_positive", "survival", "view",
    "modality", "date", "location", "folder", "filename", "doi", "url", "license",
    "clinical_notes", "other_notes",
]
# patientid, finding, view, modality, file name: the same patient's PA and lateral
# images sit in TrainData and ValData of the release
UPSTREAM = [
    ("19", "Pneumonia/Viral/COVID-19", "PA", "X-ray", "covid-19-pneumonia-15-PA.jpg"),
    ("19", "Pneumonia/Viral/COVID-19", "L", "X-ray", "covid-19-pneumonia-15-L.jpg"),
    ("6", "Pneumonia/Viral/COVID-19", "PA", "X-ray", "nejmoa2001191_f1-PA.png"),
    ("77", "Pneumonia/Viral/COVID-19", "Axial", "CT", "ct-scan-slice-01.png"),
]


def write_fixture(root: Path) -> Path:
    from PIL import Image

    from medshard.sources.cxr.chexpert_fixture import real_radiographs

    root.mkdir(parents=True, exist_ok=True)
    sources = real_radiographs()
    for i, (folder, cls, name) in enumerate(IMAGES):
        path = root / folder / cls / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == EMPTY:
            path.write_bytes(b"")
            continue
        img = sources[i % len(sources)]
        h, w = img.shape
        im = Image.fromarray(img[(i * 43) % (h // 8):, (i * 19) % (w // 8):])
        im.thumbnail((300, 300))
        buf = io.BytesIO()
        im.save(buf, format="PNG" if name.endswith(".png") else "JPEG", quality=90)
        data = buf.getvalue()
        path.write_bytes(data[: len(data) // 2] if name == TRUNCATED else data)
    with open(root / "metadata.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=UPSTREAM_COLUMNS)
        w.writeheader()
        for patient, finding, view, modality, name in UPSTREAM:
            w.writerow({
                "patientid": patient, "offset": "0", "sex": "M", "age": "65",
                "finding": finding, "RT_PCR_positive": "Y", "view": view,
                "modality": modality, "date": "2020", "location": f"{PHI_MARKER} Hospital",
                "folder": "images", "filename": name,
                "clinical_notes": f"Patient {PHI_MARKER} presented with fever and cough.",
            })
    return root


def outside_path(root: Path, outside: Path):
    """A metadata.csv row whose filename has `..`: it names no image of the release, so it
    changes nothing (the adapter opens only files it finds under the class folders)."""
    from medshard.testing.adversarial import Expect, plant_outside

    plant_outside(outside, "escape.jpg", (root / "TrainData/Normal/IM-0115-0001.jpeg").read_bytes())
    with open(root / "metadata.csv", "a", newline="") as f:
        csv.DictWriter(f, fieldnames=UPSTREAM_COLUMNS).writerow(
            {"patientid": "500", "filename": f"../../{outside.name}/escape.jpg",
             "modality": "X-ray"})
    return Expect()


def malformed_rows(root: Path, outside: Path):
    """metadata.csv rows without a filename or a patientid."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / "metadata.csv"
    first = csv_line_count(path) + 1
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=UPSTREAM_COLUMNS)
        w.writerow({"patientid": "501", "filename": ""})
        w.writerow({"patientid": "", "filename": "covid-19-pneumonia-99.jpg"})
    return Expect({f"metadata.csv:{first}": "list", f"metadata.csv:{first + 1}": "list"},
                  {f"metadata.csv:{first}": "blank"})


def _fixture():
    from medshard.sources.cxr.covid19 import record_id_for
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 7, "val": 3, "test": 2},
        quarantined={record_id_for("TrainData", "ViralPneumonia", TRUNCATED): "transform",
                     record_id_for("ValData", "Normal", EMPTY): "transform"},
        filtered={"upstream metadata.csv says the image is not an X-ray": 1},
        phi_markers=(PHI_MARKER,),
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        real="pixels of pydicom-data's computed radiographs `RG1_UNCR.dcm`, `RG3_UNCR.dcm` "
        "(8-bit JPEG and PNG)",
        illustrative="file names, classes and the upstream metadata.csv rows; several images "
        "are crops of the same radiograph; one image truncated, one empty",
    )


FIXTURE = _fixture()
