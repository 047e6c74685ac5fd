"""PNG compression level: encode time and bytes per level on real images.

Images without a standard encoding in the raw data (DICOM pixel data, masks, tiles) are
stored as lossless PNG. zlib's level trades encode time for bytes, and the encode is the
dominant cost of a DICOM image source's build. This measures both, per level, on the
real images that ship in packages (pydicom-data's computed radiographs, CT and MR slices;
scikit-image's fundus photograph), so the default (`medshard build --png-level`) is
chosen from figures, not folklore. Every level decodes to the same pixels (checked).

    python benchmarks/png_level.py            # ~30 s on 2 cores
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image


def real_images() -> dict[str, np.ndarray]:
    import pydicom
    from pydicom.data import get_testdata_file

    images = {}
    for name in ("RG1_UNCR.dcm", "RG3_UNCR.dcm", "693_UNCR.dcm", "MR2_UNCR.dcm"):
        ds = pydicom.dcmread(get_testdata_file(name))
        arr = ds.pixel_array
        images[name] = arr.astype(np.uint16 if ds.BitsAllocated > 8 else np.uint8)
    try:
        from medshard.testing import realdata

        with Image.open(realdata.get("skimage-retina")) as im:
            images["retina.jpg (RGB, decoded)"] = np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - a missing optional image is reported, not fatal
        print(f"retina: not run ({exc})")
    return images


def encode(arr: np.ndarray, level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,3,6,9")
    parser.add_argument("--rounds", type=int, default=3, help="best of N encodes")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    images = real_images()
    print(f"{'image':34} {'shape':>16} " + " ".join(f"{'L' + str(lv) + ' ms':>9} {'MB':>6}"
                                                      for lv in levels))
    totals = {lv: [0.0, 0] for lv in levels}
    for name, arr in images.items():
        cells = []
        for lv in levels:
            best = float("inf")
            for _ in range(args.rounds):
                t = time.process_time()
                data = encode(arr, lv)
                best = min(best, time.process_time() - t)
            with Image.open(io.BytesIO(data)) as im:
                back = np.asarray(im)
            assert np.array_equal(back.astype(arr.dtype), arr), f"{name} level {lv} not lossless"
            totals[lv][0] += best
            totals[lv][1] += len(data)
            cells.append(f"{best * 1000:9.0f} {len(data) / 1e6:6.2f}")
        print(f"{name:34} {str(arr.shape) + ' ' + str(arr.dtype):>16} " + " ".join(cells))
    ref = 6 if 6 in totals else levels[-1]
    print(f"\nall images, relative to level {ref} (zlib's and Pillow's default):")
    for lv in levels:
        t, b = totals[lv]
        print(f"  level {lv}: encode time x{t / totals[ref][0]:.2f}, bytes x{b / totals[ref][1]:.3f}")


if __name__ == "__main__":
    main()
