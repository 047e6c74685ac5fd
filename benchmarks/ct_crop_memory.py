"""Peak memory of loading one LNDb finding crop and one CT-ICH slice from CT-sized files.

Writes one CT-sized MetaImage (LNDb) and one CT-sized NIfTI (CT-ICH) whose voxels are the
real CT slices of the fixtures (`ct_slices.py`) repeated to 512 x 512 x DEPTH, then loads
in a fresh process each: the adapter's sample (LNDb: a 48 mm crop through SimpleITK's
streamed region read; CT-ICH: one slice through nibabel's array proxy) and, for
comparison, the whole file (SimpleITK ReadImage / nibabel get_fdata-free dataobj read).
Peak resident memory (VmHWM) of each process minus that of a process that only
imports the same modules.

    /work/main/.venv/bin/python benchmarks/ct_crop_memory.py [--depth 300]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys
from pathlib import Path
import numpy as np, nibabel as nib, SimpleITK as sitk
from medshard.sources.ct.lndb import LNDb
from medshard.sources.ct.hemorrhage import Hemorrhage
root, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "lndb-crop":
    src = LNDb()
    rec = next(r for r in src.list_records(root / "lndb"))
    [s] = src.load(rec, root / "lndb")
    n = s.payloads["volume"].data.nbytes
elif mode == "lndb-whole":
    n = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "lndb/data0/LNDb-0001.mhd"))).nbytes
elif mode == "ich-slice":
    src = Hemorrhage()
    rec = next(r for r in src.list_records(root / "ich"))
    [s] = src.load(rec, root / "ich")
    n = s.payloads["volume"].data.nbytes + s.payloads["segmentation"].data.nbytes
elif mode == "ich-whole":
    n = np.array(nib.load(root / "ich/ct_scans/049.nii").dataobj, copy=True).nbytes
else:
    n = 0
# VmHWM, not ru_maxrss: the latter carries the parent's high-water mark across fork + exec
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"peak_kib": hwm, "bytes": n}))
"""


def write_inputs(root: Path, depth: int) -> int:
    import csv

    import nibabel as nib
    import numpy as np
    import SimpleITK as sitk

    from medshard.sources.ct.ct_slices import real_ct_slices

    slices = real_ct_slices(128)
    plane = [np.kron(s, np.ones((4, 4), dtype=np.int16)) for s in slices]  # 512 x 512
    vol = np.stack([plane[k % len(plane)] for k in range(depth)], axis=0)  # (k, j, i)
    lndb = root / "lndb" / "data0"
    lndb.mkdir(parents=True)
    img = sitk.GetImageFromArray(vol)
    img.SetSpacing((0.7, 0.7, 1.0))
    sitk.WriteImage(img, str(lndb / "LNDb-0001.mhd"), useCompression=False)
    with open(root / "lndb" / "trainNodules_gt.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["LNDbID", "RadID", "RadFindingID", "FindingID", "x", "y", "z", "AgrLevel",
                    "Nodule", "Volume", "Text"])
        w.writerow([1, "1", "1", 1, 180.0, 180.0, depth / 2, 1, 1, 100.0, 5])
    ich = root / "ich"
    (ich / "ct_scans").mkdir(parents=True)
    (ich / "masks").mkdir()
    xyz = np.ascontiguousarray(vol.transpose(2, 1, 0))
    nib.Nifti1Image(xyz, np.diag([0.5, 0.5, 5.0, 1.0])).to_filename(ich / "ct_scans/049.nii")
    nib.Nifti1Image((xyz > 40).astype(np.uint8), np.diag([0.5, 0.5, 5.0, 1.0])).to_filename(
        ich / "masks/049.nii")
    with open(ich / "hemorrhage_diagnosis_raw_ct.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["PatientNumber", "SliceNumber", "Intraventricular", "Intraparenchymal",
                    "Subarachnoid", "Epidural", "Subdural", "No_Hemorrhage", "Fracture_Yes_No"])
        w.writerow([49, depth // 2, 0, 0, 0, 0, 1, 0, 0])
    return vol.nbytes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        voxel_bytes = write_inputs(root, args.depth)
        out = {}
        for mode in ("baseline", "lndb-crop", "lndb-whole", "ich-slice", "ich-whole"):
            res = subprocess.run([sys.executable, "-c", CHILD, str(root), mode],
                                 capture_output=True, text=True, check=True)
            out[mode] = json.loads(res.stdout.strip().splitlines()[-1])
    base = out["baseline"]["peak_kib"]
    print(f"CT 512 x 512 x {args.depth} int16: {voxel_bytes / 2**20:.0f} MiB of voxels")
    for mode in ("lndb-crop", "lndb-whole", "ich-slice", "ich-whole"):
        r = out[mode]
        print(f"{mode:11s} payload {r['bytes'] / 2**10:9.0f} KiB   peak over imports "
              f"{(r['peak_kib'] - base) / 1024:7.1f} MiB")


if __name__ == "__main__":
    main()
