"""A miniature LNDb in its real layout: MetaImage CTs written by SimpleITK from real CT slices.

Real: the voxels, HU slices of pydicom-data's `693_UNCR.dcm`, pydicom's `CT_small.dcm`
and the two frames of `eCT_Supplemental.dcm`, block-averaged to 32 x 32 and stacked
(`ct_slices.py`). Illustrative: the slice positions, the grid (3 x 3 x 4 mm, origins,
one scan stored with flipped axes), the findings and their attributes, the folds.
Broken on purpose: a scan whose `.raw` is cut short, a finding whose scan is missing, a
finding whose world point lies outside its scan; the `malformed_row` mutation adds
malformed findings rows (Nodule "yes", LNDbID "one", x "inf") and a non-numeric cell
in trainFolds.csv. A patient name is planted as a free
field of one MetaImage header (MetaImage accepts any `Key = value` line).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

PHI_NAME = "Quillfeather^Rosamund"
SPACING = (3.0, 3.0, 4.0)
# LNDbID -> (folder, origin, direction (row-major 3x3), shift of the real slice stack)
SCANS: dict[int, tuple[str, tuple[float, float, float], tuple[float, ...], int]] = {
    1: ("data0", (-48.0, -60.0, -310.0), (1, 0, 0, 0, 1, 0, 0, 0, 1), 0),
    2: ("data0", (50.0, -40.0, -280.0), (-1, 0, 0, 0, 1, 0, 0, 0, -1), 1),
    3: ("data1", (-45.0, -50.0, -300.0), (1, 0, 0, 0, 1, 0, 0, 0, 1), 2),
    4: ("data1", (-45.0, -50.0, -300.0), (1, 0, 0, 0, 1, 0, 0, 0, 1), 3),  # .raw truncated
}
MISSING_SCAN = 5
FOLDS = {1: 0, 2: 1, 3: 3, 4: 2, MISSING_SCAN: 3}
# (LNDbID, FindingID, index (i, j, k) + sub-voxel offset, Nodule, Volume mm^3, Text, RadIDs)
FINDINGS = [
    (1, 1, (10.3, 12.6, 7.2), 1, 113.1, 5, "1,2"),   # d = 6.0 mm: nodule >= 3mm
    (1, 2, (1.0, 30.4, 2.0), 1, 4.19, 3, "2"),        # d = 2.0 mm, at the edge: padded
    (1, 3, (20.0, 5.0, 14.0), 0, 14.137, 0, "1"),     # non-nodule
    (2, 1, (16.0, 16.0, 8.0), 1, 14.137, 4, "3"),     # d = 3.0 mm exactly: >= 3mm (LNDb)
    (2, 2, (25.5, 8.49, 3.0), 1, 2.0, 2, "3"),        # d = 1.56 mm
    (3, 1, (15.0, 15.0, 8.0), 1, 268.1, 5, "1,2,3"),  # test fold
    (3, 2, (80.0, 15.0, 8.0), 1, 50.0, 5, "1"),       # outside the scan: quarantined
    (4, 1, (15.0, 15.0, 8.0), 1, 50.0, 5, "1"),       # truncated .raw: quarantined
    (MISSING_SCAN, 1, (15.0, 15.0, 8.0), 0, 14.137, 0, "2"),  # no scan file
]
OUTSIDE_FINDING = "LNDb-0003_f2"
TRUNCATED_FINDING = "LNDb-0004_f1"
MISSING_FINDING = "LNDb-0005_f1"
GT_HEADER = ["LNDbID", "RadID", "RadFindingID", "FindingID", "x", "y", "z", "AgrLevel",
             "Nodule", "Volume", "Text"]
RAD_HEADER = ["LNDbID", "RadID", "FindingID", "x", "y", "z", "Nodule", "Volume", "Text"]


def affine_lps(origin, direction) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = np.asarray(direction, dtype=float).reshape(3, 3) * np.asarray(SPACING)
    aff[:3, 3] = origin
    return aff


def world_of(lnd: int, ijk) -> list[float]:
    _, origin, direction, _ = SCANS.get(lnd, SCANS[1])
    return [round(float(v), 4) for v in (affine_lps(origin, direction) @ [*ijk, 1.0])[:3]]


def write_scan(folder: Path, lnd: int) -> Path:
    """Write LNDb-XXXX.mhd/.raw with SimpleITK; returns the .mhd path."""
    import SimpleITK as sitk

    from medshard.sources.ct.ct_slices import real_ct_volume

    sub, origin, direction, shift = SCANS[lnd]
    volume = real_ct_volume(size=32, depth=16, shift=shift)  # (i, j, k)
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.transpose(2, 1, 0)))
    image.SetSpacing(SPACING)
    image.SetOrigin(origin)
    image.SetDirection([float(v) for v in direction])
    out = folder / sub
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"LNDb-{lnd:04d}.mhd"
    sitk.WriteImage(image, str(path), useCompression=False)
    return path


def _plant_phi(mhd: Path) -> None:
    """A free `PatientName` field before ElementDataFile (which must stay last)."""
    lines = mhd.read_text().splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("ElementDataFile"))
    lines.insert(at, f"PatientName = {PHI_NAME}")
    mhd.write_text("\n".join(lines) + "\n")


def write_fixture(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for lnd in SCANS:
        mhd = write_scan(root, lnd)
        if lnd == 2:
            _plant_phi(mhd)
        if lnd == 4:
            raw = mhd.with_suffix(".raw")
            raw.write_bytes(raw.read_bytes()[: raw.stat().st_size // 3])
    gt_rows, rad_rows = [], []
    for lnd, fid, ijk, nodule, volume, text, rads in FINDINGS:
        x, y, z = world_of(lnd, ijk)
        agr = len(rads.split(",")) if nodule else 3
        gt_rows.append([lnd, rads, ",".join("1" for _ in rads.split(",")), fid, x, y, z, agr,
                        nodule, volume, text])
        for r in rads.split(","):
            rad_rows.append([lnd, r, fid, x, y, z, nodule, volume, text])
    _write_csv(root / "trainNodules_gt.csv", GT_HEADER, gt_rows)
    _write_csv(root / "trainNodules.csv", RAD_HEADER, rad_rows)
    by_fold: dict[int, list[str]] = {f: [] for f in range(4)}
    for lnd, fold in FOLDS.items():
        by_fold[fold].append(str(lnd))
    depth = max(len(v) for v in by_fold.values())
    _write_csv(root / "trainFolds.csv", [f"Fold{f}" for f in range(4)],
               [[by_fold[f][i] if i < len(by_fold[f]) else "" for f in range(4)]
                for i in range(depth)])
    return root


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def malformed_row(root: Path, outside: Path):
    """Findings rows with a non-numeric LNDbID, an infinite coordinate and Nodule "yes";
    a non-numeric LNDbID cell in trainFolds.csv."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / "trainNodules_gt.csv"
    first = csv_line_count(path) + 1
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["one", "1", "1", 9, 0.0, 0.0, 0.0, 1, 1, 30.0, 5])
        w.writerow([1, "1", "1", 9, "inf", 0.0, 0.0, 1, 1, 30.0, 5])
        w.writerow([2, "1", "4", 3, 0.0, 0.0, -300.0, 1, "yes", 30.0, 4])
    folds = root / "trainFolds.csv"
    fold_line = csv_line_count(folds) + 1
    with open(folds, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(["", "", "abc", ""])
    rows = {f"trainNodules_gt.csv:{first + i}": "list" for i in range(3)}
    return Expect({**rows, f"trainFolds.csv:{fold_line}": "list"},
                  {f"trainNodules_gt.csv:{first}": "one",
                   f"trainNodules_gt.csv:{first + 2}": "yes",
                   f"trainFolds.csv:{fold_line}": "abc"})


def outside_path(root: Path, outside: Path):
    """A scan header whose ElementDataFile climbs out of the root to a planted file."""
    from medshard.testing.adversarial import Expect, plant_outside

    mhd = root / "data0" / "LNDb-0001.mhd"
    raw = mhd.with_suffix(".raw").read_bytes()
    secret = plant_outside(outside, "LNDb-0001.raw", raw)
    text = mhd.read_text().replace("ElementDataFile = LNDb-0001.raw",
                                   f"ElementDataFile = ../../{outside.name}/{secret.name}")
    mhd.write_text(text)
    quarantined = {f"LNDb-0001_f{f}": "load" for f in (1, 2, 3)}
    return Expect(quarantined, {"LNDb-0001_f1": "ElementDataFile"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 5, "test": 1},
        quarantined={OUTSIDE_FINDING: "load", TRUNCATED_FINDING: "load",
                     MISSING_FINDING: "load"},
        phi_markers=(PHI_NAME,),
        adversarial={"malformed_row": malformed_row, "outside_path": outside_path},
        real="CT slices (HU) of pydicom-data's 693_UNCR, pydicom's CT_small and the two frames "
        "of eCT_Supplemental, block-averaged to 32 x 32, written as MetaImage by SimpleITK",
        illustrative="slice positions, grid (3 x 3 x 4 mm, one scan with flipped axes), "
        "findings, folds; broken: a truncated .raw, a missing scan, a finding outside its "
        "scan; malformed rows in the adversarial mutation",
    )


FIXTURE = _fixture()
