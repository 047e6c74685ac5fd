"""A miniature Kermany OCT (the Kaggle `OCT2017/` layout), from real grey scans pydicom ships.

Real: the pixels, grey ultrasound images from pydicom's `OBXXXX1A_2frame.dcm` and
pydicom-data's `US1_UNCR.dcm` (speckled cross-sections like OCT B-scans, but not
retina), cropped to a wide 2:1 window and saved as grey JPEG like the release.
Illustrative: the modality of the pixels, the patients and the classes. Patient 1001 has
scans of two diseases (CNV and DME) and must stay in one split; one file is truncated.
"""

from __future__ import annotations

import io
from pathlib import Path

RELEASE = "OCT2017"
# (release folder, file name)
FILES = [
    ("train", "CNV-1001-1.jpeg"), ("train", "CNV-1001-2.jpeg"), ("train", "DME-1001-3.jpeg"),
    ("train", "DME-1002-1.jpeg"), ("train", "DRUSEN-1003-1.jpeg"), ("train", "DRUSEN-1003-2.jpeg"),
    ("train", "NORMAL-1004-1.jpeg"), ("train", "NORMAL-1005-1.jpeg"), ("train", "CNV-1006-1.jpeg"),
    ("train", "NORMAL-1007-1.jpeg"), ("train", "DME-1008-1.jpeg"), ("train", "DRUSEN-1009-1.jpeg"),
    ("val", "NORMAL-1010-1.jpeg"),
    ("test", "CNV-2001-1.jpeg"), ("test", "DME-2002-1.jpeg"), ("test", "NORMAL-2003-1.jpeg"),
]
TRUNCATED = ("train", "DRUSEN-1011-1.jpeg")


def write_fixture(root: Path) -> Path:
    from PIL import Image

    from medshard.sources.ultrasound.echonet_fixture import ultrasound_frames

    frames = ultrasound_frames()
    first = b""
    for i, (folder, name) in enumerate(FILES):
        frame = frames[i % len(frames)]
        h, w = frame.shape
        top, left = (i * 17) % (h // 3), (i * 29) % (w // 4)
        crop = frame[top:top + h // 2, left:left + w // 2 + w // 4]
        im = Image.fromarray(crop).resize((192, 96), Image.Resampling.BILINEAR)
        cls = name.split("-")[0]
        out = root / RELEASE / folder / cls / name
        out.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
        out.write_bytes(buf.getvalue())
        first = first or buf.getvalue()
    folder, name = TRUNCATED
    out = root / RELEASE / folder / name.split("-")[0] / name
    out.write_bytes(first[: len(first) // 2])
    return root


def misnamed(root: Path, outside: Path):
    """A scan whose name is not <DISEASE>-<patient>-<n>, and one in the wrong class folder."""
    from medshard.testing.adversarial import Expect

    src = (root / RELEASE / "train" / "CNV" / "CNV-1001-1.jpeg").read_bytes()
    bad = [f"{RELEASE}/train/CNV/CNV_1001_9.jpeg", f"{RELEASE}/train/DME/CNV-1012-1.jpeg"]
    for rel in bad:
        (root / rel).write_bytes(src)
    return Expect({f"{rel}:0": "list" for rel in bad},
                  {f"{bad[0]}:0": "not <DISEASE>", f"{bad[1]}:0": "its folder DME"})


def long_name(root: Path, outside: Path):
    from medshard.testing.adversarial import Expect

    name = "NORMAL-1013-" + "4" * 170 + ".jpeg"
    src = (root / RELEASE / "train" / "NORMAL" / "NORMAL-1004-1.jpeg").read_bytes()
    (root / RELEASE / "train" / "NORMAL" / name).write_bytes(src)
    return Expect(long_keys=(f"train_{name[:-5]}",))


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 12, "val": 1, "test": 3},  # val: keyed hash of the patient
        quarantined={"train_DRUSEN-1011-1": "transform"},
        adversarial={"malformed_row": misnamed, "long_name": long_name},
        real="pixels of pydicom's `OBXXXX1A_2frame.dcm` and pydicom-data's `US1_UNCR.dcm` "
        "(grey ultrasound cross-sections, cropped)",
        illustrative="modality of the pixels (ultrasound, not retinal OCT), patients, classes; "
        "one patient with two diseases; a truncated JPEG (quarantined)",
    )


FIXTURE = _fixture()
