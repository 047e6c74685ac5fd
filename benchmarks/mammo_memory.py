"""Peak memory of building a large mammogram: 4000 x 5000 pixels, 16 bits (40 MB of pixels).

    PYTHONPATH=. python benchmarks/mammo_memory.py [--height 5000] [--width 4000]

Writes MG DICOM files of that size (pydicom-data's real RG1_UNCR radiograph tiled to
fill them: MONOCHROME1, 15 bits stored in 16, uncompressed) in two variants, without a
rescale and with RescaleSlope 1 / RescaleIntercept 0 (what many MG files carry), and a
one-breast VinDr-Mammo tree whose CC and MLO views are two such files. Then, each in a
fresh process (imports done before measuring):

  standardize   `read_image` + the image encoder (PNG) of one view: tracemalloc peak
                (Python and numpy allocations) and the growth of the process's peak RSS
                (ru_maxrss), which also sees Pillow's and zlib's C buffers;
  build         `run_build` of the one-breast tree (in-process Beam runner, tar and
                Parquet): growth of peak RSS over the same build of a breast of
                256 x 200 views (Beam's own cost), and tracemalloc's peak.

Figures are multiples of one view's pixel bytes (height x width x 2). Nothing here is
asserted; `tests/test_dicom_memory.py` asserts the standardize path's tracemalloc peak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

STANDARDIZE = """
import json, resource, sys, tracemalloc
from pathlib import Path
from medshard.formats.dicom import read_image
from medshard.pipeline.encoders import EncodeContext, encode_payload
from medshard.schemas import Payload
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tracemalloc.start()
image = read_image(Path(sys.argv[1]))
members, _ = encode_payload(Payload("image", image.pixels, image.descriptor),
                            EncodeContext(key="k", role="cc"))
traced = tracemalloc.get_traced_memory()[1]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
print(json.dumps({"traced": traced, "rss": rss, "png": len(members["cc.png"])}))
"""

BUILD = """
import json, resource, sys, tracemalloc
from pathlib import Path
from medshard.pipeline.build import BuildConfig, run_build
import apache_beam  # imported before the baseline
raw, out = Path(sys.argv[1]), Path(sys.argv[2])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tracemalloc.start()
run_build(BuildConfig(sources=["vindr-mammo"], data_root=raw, out=out,
                      formats=("webdataset", "parquet"), progress=False))
traced = tracemalloc.get_traced_memory()[1]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
print(json.dumps({"traced": traced, "rss": rss}))
"""


def write_mg(path: Path, height: int, width: int, rescale: bool) -> None:
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(get_testdata_file("RG1_UNCR.dcm"))
    src = ds.pixel_array
    reps = (-(-height // src.shape[0]), -(-width // src.shape[1]))
    ds.Rows, ds.Columns = height, width
    ds.PixelData = np.tile(src, reps)[:height, :width].astype(np.uint16).tobytes()
    ds["PixelData"].VR = "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality = "MG"
    if rescale:
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_breast(root: Path, sizes: dict[str, tuple[int, int]]) -> None:
    """A VinDr-Mammo tree: one exam, one breast, CC and MLO of sizes[view] = (height, width)."""
    study = "0" * 31 + "1"
    rows = []
    for view in ("CC", "MLO"):
        image = f"{view.lower()}{'0' * 29}"
        height, width = sizes[view]
        write_mg(root / "images" / study / f"{image}.dicom", height, width, rescale=False)
        rows.append([study, "s", image, "L", view, height, width, "BI-RADS 2", "DENSITY B",
                     "training"])
    header = "study_id,series_id,image_id,laterality,view_position,height,width," \
             "breast_birads,breast_density,split\n"
    (root / "breast-level_annotations.csv").write_text(
        header + "".join(",".join(map(str, r)) + "\n" for r in rows))


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=5000)
    parser.add_argument("--width", type=int, default=4000)
    args = parser.parse_args()
    pixel_bytes = args.height * args.width * 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        print(f"one view: {args.width} x {args.height} x 16 bit = {pixel_bytes / 1e6:.1f} MB")
        for rescale in (False, True):
            path = tmp_path / f"mg-{rescale}.dcm"
            write_mg(path, args.height, args.width, rescale)
            r = run(STANDARDIZE, str(path))
            print(f"standardize (rescale 1/0: {rescale}): tracemalloc peak "
                  f"{r['traced'] / pixel_bytes:.2f}x, peak RSS growth {r['rss'] / pixel_bytes:.2f}x "
                  f"(PNG {r['png'] / 1e6:.1f} MB)")
        small, large = (256, 200), (args.height, args.width)
        figures = {}
        for name, sizes in (("small", {"CC": small, "MLO": small}),
                            ("one", {"CC": large, "MLO": small}),
                            ("two", {"CC": large, "MLO": large})):
            raw = tmp_path / name
            write_breast(raw / "vindr-mammo", sizes)
            figures[name] = run(BUILD, str(raw), str(tmp_path / f"out-{name}"))
        for name, what in (("one", "a breast whose CC is the large view (MLO 256 x 200)"),
                           ("two", "a breast whose CC and MLO are both large")):
            growth = figures[name]["rss"] - figures["small"]["rss"]
            print(f"build of {what}: tracemalloc peak "
                  f"{figures[name]['traced'] / pixel_bytes:.2f}x one view's pixel bytes, peak "
                  f"RSS growth over the 256 x 200 build {growth / pixel_bytes:.2f}x")

if __name__ == "__main__":
    main()
