"""A miniature CC-CCII (CNCB layout) whose PNG slices are real CT slices.

Real: the pixels, HU slices of pydicom-data's `693_UNCR.dcm`, pydicom's `CT_small.dcm` and
`eCT_Supplemental.dcm`'s two frames, block-averaged to 32 x 32 and mapped to 8 bits
through a lung window (level -600, width 1500), as CC-CCII's PNGs are display images.
Illustrative: the scans' slice order, the patients, the classes, unzip_filenames.csv.
One scan names its slices without zero padding (1.png ... 11.png) so that numeric
sorting is exercised. Broken on purpose: a scan with an unreadable PNG, a scan listed
whose folder is missing. A patient name is planted in PNG text chunks.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

PHI_NAME = "Quillfeather^Rosamund"
# (label, patient, scan, slices, zero-padded names)
SCANS = [
    ("NCP", "1001", "2001", 5, True),
    ("NCP", "1001", "2002", 4, True),
    ("NCP", "1002", "2003", 11, False),
    ("CP", "1003", "2004", 4, True),
    ("CP", "1004", "2005", 3, True),
    ("Normal", "1005", "2006", 4, True),
    ("Normal", "1006", "2007", 5, True),
    ("CP", "1007", "2008", 4, True),  # one slice unreadable
    ("NCP", "1008", "2009", 6, True),  # folder missing
]
UNREADABLE = "CP_1007_2008"
MISSING = "NCP_1008_2009"


def windowed(hu: np.ndarray, level: float = -600.0, width: float = 1500.0) -> np.ndarray:
    lo = level - width / 2
    return np.clip(np.rint((hu.astype(np.float64) - lo) / width * 255.0), 0, 255).astype(np.uint8)


def slice_name(k: int, padded: bool) -> str:
    return f"{k:04d}.png" if padded else f"{k + 1}.png"


def write_fixture(root: Path) -> Path:
    from PIL import Image, PngImagePlugin

    from medshard.sources.ct.ct_slices import real_ct_slices

    real = [windowed(s) for s in real_ct_slices(32)]
    rows = []
    for n, (label, patient, scan, depth, padded) in enumerate(SCANS):
        rows.append([f"{label}-{n + 1}.zip", label, patient, scan, depth])
        if f"{label}_{patient}_{scan}" == MISSING:
            continue
        folder = root / label / patient / scan
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(depth):
            img = np.roll(real[(n + k) % len(real)], k, axis=0)  # distinct slices per scan
            info = PngImagePlugin.PngInfo()
            info.add_text("Comment", f"patient {PHI_NAME}")
            Image.fromarray(img, mode="L").save(folder / slice_name(k, padded), pnginfo=info)
    bad = root / "CP" / "1007" / "2008" / "0002.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a png" * 4)
    with open(root / "unzip_filenames.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["zip_file", "label", "patient_id", "scan_id", "n_slice"])
        w.writerows(rows)
    with open(root / "lesions_slices.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path"], ["NCP/1001/2001/0002.png"]])
    return root


def malformed_row(root: Path, outside: Path):
    """An unknown class, a patient_id with a path in it, a non-numeric n_slice."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / "unzip_filenames.csv"
    first = csv_line_count(path) + 1
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        w.writerow(["X.zip", "Flu", "1001", "2001", 5])
        w.writerow(["NCP-1.zip", "NCP", f"../../{outside.name}", "2001", 5])
        w.writerow(["NCP-1.zip", "NCP", "1001", "2001", "five"])
    return Expect({f"unzip_filenames.csv:{first + i}": "list" for i in range(3)},
                  {f"unzip_filenames.csv:{first}": "Flu"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 5, "test": 2},
        quarantined={UNREADABLE: "load", MISSING: "load"},
        phi_markers=(PHI_NAME,),
        adversarial={"malformed_row": malformed_row},
        real="CT slices of pydicom-data's 693_UNCR, pydicom's CT_small and eCT_Supplemental, "
        "block-averaged to 32 x 32, lung-windowed to 8-bit PNG",
        illustrative="slice order, patients, classes, unzip_filenames.csv; broken: an "
        "unreadable PNG, a listed scan without its folder",
    )


FIXTURE = _fixture()
