"""BCSS: Breast Cancer Semantic Segmentation, 151 H&E regions of TCGA breast cancer slides.

Raw layout (the 0.25 MPP release the BCSS README links):
    rgbs_colorNormalized/TCGA-<TSS>-<participant>-DX1_xmin<x>_ymin<y>_MPP-0.2500.png
    masks/<the same name>.png        one uint8 code per pixel (0..21)
    meta/gtruth_codes.tsv            label -> GT_code (optional; checked against the built-in table)
Sources: the `PathologyDataScience/BCSS` README and `meta/gtruth_codes.tsv`; the Google Drive
folder it links holds the regions at 0.25 microns per pixel; kaiko-ai/eva's BCSS docs show
the same tree.
CLIMB's loader (`DDVD233/CLIMB:src/datasets/pathology/bcss.py`) reads `images/` and
`masks/` with the same names; `images/` is accepted too. Region images are about
1,000-3,000 px a side at 0.25 MPP (~40x); the name gives the slide (a TCGA barcode), the
region's origin on the slide and the resolution.

Mask codes (gtruth_codes.tsv): 0 outside_roi, 1 tumor, 2 stroma, 3 lymphocytic_infiltrate,
4 necrosis_or_debris, 5 glandular_secretions, 6 blood, 7 exclude, 8 metaplasia_NOS, 9 fat,
10 plasma_cells, 11 other_immune_infiltrate, 12 mucoid_material, 13 normal_acinus_or_duct,
14 lymphatics, 15 undetermined, 16 nerve, 17 skin_adnexa, 18 blood_vessel, 19 angioinvasion,
20 dcis, 21 other. The README: code 0 is "don't care" (outside the annotated region), not
an "other" class.

Samples: tiles. Each region is cut into a grid of `tile_size` x `tile_size` tiles at
`mpp` microns per pixel (0.25 native, ~40x; 0.5 ~20x; 1.0 ~10x: pixel blocks averaged
for the image, the most frequent code of each block for the mask), from the region's
top-left corner; edge remainders smaller than a tile are not cut. A tile whose share of
annotated pixels (code != 0) is below `min_annotated_fraction` is skipped; a region with
no tile left is filtered (counted). Each tile carries the RGB image (lossless PNG), its
mask (the raw codes, lossless PNG, `annotates` the image) and in meta its class
composition (every code present with its name and pixel share), its origin in the region
and on the slide, and the resolution.

Labels: CLIMB's four classes are codes 1-4 (`tumor`, `stroma`, `lymphocytic_infiltrate`,
`necrosis_or_debris`). A tile's class is the one of these four covering the largest share
of its annotated pixels, when that share is at least `min_class_fraction`; otherwise the
tile has no class (its composition and mask still say what it holds). CLIMB instead cuts
one patch per connected region of each class (bounding boxes 224-1024 px); its counts
(4,211 / 1,053) are of those patches, not comparable with a grid of tiles.

Split: BCSS's evaluation holds out whole institutions (tissue source sites). As CLIMB
(`TEST_SITES`), regions from sites OL, LL, E2, EW, GM and S3 are test; the rest is split
into train and val by a keyed hash of the TCGA participant (the barcode's first 12
characters, `TCGA-<TSS>-<participant>`), so one patient's regions never straddle splits.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from medshard.schemas import (
    BadRow,
    Filtered,
    License,
    Payload,
    RawRecord,
    RecordError,
    Sample,
    SourceInfo,
)
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import CarveValOptions, MissingRawData, Source
from medshard.sources.folders import files_in, first_existing_dir

GT_CODES = {
    0: "outside_roi", 1: "tumor", 2: "stroma", 3: "lymphocytic_infiltrate",
    4: "necrosis_or_debris", 5: "glandular_secretions", 6: "blood", 7: "exclude",
    8: "metaplasia_NOS", 9: "fat", 10: "plasma_cells", 11: "other_immune_infiltrate",
    12: "mucoid_material", 13: "normal_acinus_or_duct", 14: "lymphatics", 15: "undetermined",
    16: "nerve", 17: "skin_adnexa", 18: "blood_vessel", 19: "angioinvasion", 20: "dcis",
    21: "other",
}
CLIMB_CLASSES = {1: "tumor", 2: "stroma", 3: "lymphocytic_infiltrate", 4: "necrosis_or_debris"}
TEST_SITES = frozenset({"OL", "LL", "E2", "EW", "GM", "S3"})
IMAGE_DIRS = ("rgbs_colorNormalized", "images")
NATIVE_MPP = 0.25
CODES_FILE = "meta/gtruth_codes.tsv"
_NAME = re.compile(
    r"^(?P<slide>(?P<patient>TCGA-(?P<site>[A-Z0-9]{2})-[A-Z0-9]{4})-[A-Z0-9]+)"
    r"_xmin(?P<x>\d{1,9})_ymin(?P<y>\d{1,9})_MPP-(?P<mpp>\d+\.\d+)\.png$")


def parse_region_name(name: str) -> dict[str, Any]:
    """Slide, patient (first 12 characters), site, origin and MPP from a region's file name."""
    m = _NAME.match(name)
    if m is None:
        raise ValueError(f"file name {name!r} is not TCGA-XX-XXXX-DX1_xmin<x>_ymin<y>_MPP-<mpp>.png")
    return {"slide": m["slide"], "patient": m["patient"], "site": m["site"],
            "xmin": int(m["x"]), "ymin": int(m["y"]), "mpp": float(m["mpp"])}


def downsample_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Average `factor` x `factor` blocks (H, W multiples of factor), rounded to uint8."""
    if factor == 1:
        return image
    h, w, c = image.shape
    blocks = image.reshape(h // factor, factor, w // factor, factor, c).astype(np.float64)
    return np.floor(blocks.mean(axis=(1, 3)) + 0.5).astype(np.uint8)


def downsample_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """The most frequent code of each `factor` x `factor` block (ties: the lowest code)."""
    if factor == 1:
        return mask
    h, w = mask.shape
    blocks = mask.reshape(h // factor, factor, w // factor, factor)
    codes = np.unique(mask)
    counts = np.stack([(blocks == c).sum(axis=(1, 3)) for c in codes])
    return codes[np.argmax(counts, axis=0)].astype(mask.dtype)


def composition(mask: np.ndarray) -> list[dict[str, Any]]:
    """Every code in `mask`, ascending, with its name and its share of the tile's pixels."""
    codes, counts = np.unique(mask, return_counts=True)
    total = float(mask.size)
    return [{"code": int(c), "name": GT_CODES.get(int(c), "unknown"),
             "fraction": round(float(n) / total, 6)} for c, n in zip(codes, counts, strict=True)]


def dominant_class(mask: np.ndarray, min_fraction: float) -> str | None:
    """The CLIMB class (codes 1-4) covering most annotated pixels, if its share of them
    is at least `min_fraction`; None otherwise."""
    annotated = int(np.count_nonzero(mask))
    if annotated == 0:
        return None
    counts = {code: int(np.count_nonzero(mask == code)) for code in CLIMB_CLASSES}
    code = max(counts, key=lambda c: (counts[c], -c))
    return CLIMB_CLASSES[code] if counts[code] / annotated >= min_fraction else None


def cut_tiles(image: np.ndarray, mask: np.ndarray, tile: int, factor: int,
              min_annotated: float) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """(x, y, image tile, mask tile) on a grid of `tile * factor` native pixels from the
    top-left corner, downsampled by `factor`; tiles with too few annotated pixels skipped."""
    span = tile * factor
    h, w = mask.shape
    for y in range(0, h - span + 1, span):
        for x in range(0, w - span + 1, span):
            m = downsample_mask(mask[y:y + span, x:x + span], factor)
            if np.count_nonzero(m) / m.size < min_annotated:
                continue
            yield x, y, downsample_image(image[y:y + span, x:x + span], factor), m


class BCSSOptions(CarveValOptions):
    tile_size: int = Field(512, ge=32, le=4096, description="tile side in pixels, at `mpp`")
    mpp: Literal[0.25, 0.5, 1.0] = Field(
        0.25, description="microns per pixel of the tiles: 0.25 native (~40x), 0.5 (~20x), "
        "1.0 (~10x), by block averaging (image) and block majority (mask)")
    min_annotated_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="skip tiles whose share of annotated pixels (mask code "
        "other than 0, outside_roi) is below this")
    min_class_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="a tile's class is the CLIMB class (tumor, stroma, "
        "lymphocytic infiltrate, necrosis/debris) covering most of its annotated pixels, if at "
        "least this share of them; else no class")


class BCSS(Source):
    Options = BCSSOptions
    fixture = "medshard.sources.pathology.bcss_fixture:FIXTURE"
    payload_members = ("image.png", "mask.png")
    info: ClassVar[SourceInfo] = SourceInfo(
        name="bcss",
        title="BCSS: Breast Cancer Semantic Segmentation (TCGA-BRCA regions of interest)",
        version="2019 (0.25 MPP release)",
        modality="pathology",
        tasks=["classification", "segmentation"],
        license=License(name="CC0 1.0", spdx="CC0-1.0",
                        url="https://github.com/PathologyDataScience/BCSS",
                        terms_version="1.0"),
        access="open",
        homepage="https://github.com/PathologyDataScience/BCSS",
        citation=(
            "Amgad M, Elfandy H, Hussein H, et al. Structured crowdsourcing enables "
            "convolutional segmentation of histology images. Bioinformatics. "
            "2019;35(18):3461-3467."
        ),
        label_space=list(CLIMB_CLASSES.values()),
        split_policy="test: regions from the held-out sites OL, LL, E2, EW, GM, S3 (as CLIMB); "
        "the rest train/val by keyed hash of the TCGA participant",
        release_notes={"0.1.0": "first medshard adapter: grid tiles with masks and class "
                       "composition"},
        published_counts=PublishedCounts(
            train=4211, test=1053, unit="patches",
            reference="CLIMB Table 7: patches cut per connected class region (224-1024 px); "
            "this adapter cuts a grid of tiles, so counts differ by design",
        ),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="manual",
        manual=ManualSteps(
            url="https://github.com/PathologyDataScience/BCSS",
            steps=[
                "Open the Google Drive folder linked from the BCSS README ('Download (single "
                "link)') and download the 0.25 MPP release.",
                "Put rgbs_colorNormalized/ and masks/ (and meta/ if present) in the folder "
                "named below.",
            ],
            layouts={"release": [FileSpec(path="rgbs_colorNormalized"), FileSpec(path="masks")],
                     "climb": [FileSpec(path="images"), FileSpec(path="masks")]},
        ),
    )

    def image_dir(self, root: Path) -> str:
        rel = first_existing_dir(root, IMAGE_DIRS)
        if rel is None or first_existing_dir(root, ["masks"]) is None:
            raise MissingRawData(f"bcss: {root} needs rgbs_colorNormalized/ (or images/) and "
                                 "masks/; put the BCSS download there")
        return rel

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        self.image_dir(root)

    def label_files(self, root: Path) -> list[str]:
        return [CODES_FILE] if (root / CODES_FILE).is_file() else []

    def check_codes(self, root: Path) -> None:
        """When the release's `meta/gtruth_codes.tsv` is there, it must be the table built in."""
        if not (root / CODES_FILE).is_file():
            return
        with open(self.path(root, CODES_FILE), encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
        try:
            table = {int(code): label for label, code in rows[1:]}
        except ValueError as exc:
            raise MissingRawData(f"bcss: {CODES_FILE} is not 'label<TAB>GT_code' rows ({exc})") from None
        if table != GT_CODES:
            diff = sorted(set(table.items()) ^ set(GT_CODES.items()))[:3]
            raise MissingRawData(
                f"bcss: {CODES_FILE} differs from the 2019 code table this adapter knows "
                f"({diff}); the release changed its codes: update medshard's BCSS adapter")

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        image_dir = self.image_dir(root)
        self.check_codes(root)
        images = {f.name: f for f in files_in(root, image_dir, (".png",))}
        masks = {f.name: f for f in files_in(root, "masks", (".png",))}
        for name in sorted(set(masks) - set(images)):
            yield BadRow(masks[name].rel, 0, f"mask {name!r} has no region image in {image_dir}/")
        for name, img in images.items():
            if name not in masks:
                yield BadRow(img.rel, 0, f"region image {name!r} has no mask in masks/")
                continue
            try:
                parsed = parse_region_name(name)
            except ValueError as exc:
                yield BadRow(img.rel, 0, str(exc))
                continue
            official = "test" if parsed["site"] in TEST_SITES else "train"
            yield RawRecord(
                record_id=f"{parsed['slide']}_x{parsed['xmin']}_y{parsed['ymin']}",
                subject_id=parsed["patient"],
                files=[img.rel, masks[name].rel],
                source_labels={},
                split=self.carve_val(official, parsed["patient"]),  # type: ignore[arg-type]
                size_bytes=img.size + masks[name].size,
                meta={"site": parsed["site"], "slide": parsed["slide"],
                      "region_origin_xy": [parsed["xmin"], parsed["ymin"]],
                      "region_mpp": parsed["mpp"]},
            )

    def estimate_output_bytes(self, record: RawRecord) -> int:
        return max(record.size_bytes, 1)

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        image = _read_png(self.path(root, record.files[0]), record.files[0], "RGB")
        mask = _read_png(self.path(root, record.files[1]), record.files[1], "L")
        if image.shape[:2] != mask.shape:
            raise RecordError(f"mask {record.files[1]} is {mask.shape[1]} x {mask.shape[0]}, "
                              f"its region image {image.shape[1]} x {image.shape[0]}")
        if int(mask.max(initial=0)) not in GT_CODES:
            raise RecordError(f"mask {record.files[1]} holds code {int(mask.max())}; BCSS codes "
                              "are 0-21")
        region_mpp = float(record.meta["region_mpp"])
        target = float(self._options["mpp"])
        factor = int(round(target / region_mpp))
        if factor < 1 or abs(factor * region_mpp - target) > 1e-6:
            raise RecordError(f"region is at {region_mpp} MPP; {target} MPP is not a whole "
                              "multiple of it")
        tile = int(self._options["tile_size"])
        names = {str(k): v for k, v in GT_CODES.items()}
        n = 0
        for x, y, img_t, mask_t in cut_tiles(image, mask, tile, factor,
                                             float(self._options["min_annotated_fraction"])):
            cls = dominant_class(mask_t, float(self._options["min_class_fraction"]))
            ox, oy = record.meta["region_origin_xy"]
            meta: dict[str, Any] = {
                **record.meta,
                "tile_origin_xy": [x, y],
                "tile_slide_origin_xy": [ox + x, oy + y],
                "tile_size": tile,
                "mpp": target,
                "magnification": f"{10.0 / target:g}x",
                "annotated_fraction": round(float(np.count_nonzero(mask_t)) / mask_t.size, 6),
                "composition": composition(mask_t),
                "dominant_class": cls,
            }
            spacing = [target / 1000.0, target / 1000.0]
            yield Sample(
                classes=[cls] if cls else [],
                source_labels={"dominant_class": cls},
                payloads={
                    "image": Payload("image", img_t, {"photometric": "RGB", "bit_depth": 8,
                                                      "pixel_spacing_mm": spacing}),
                    "mask": Payload("mask", mask_t, {"annotates": "image",
                                                     "label_names": names}),
                },
                meta=meta,
                task="classification",
                key_suffix=f"x{x}_y{y}",
            )
            n += 1
        if n == 0:
            raise Filtered("no tile with enough annotated pixels")


def _read_png(path: Path, rel: str, mode: str) -> np.ndarray:
    from PIL import Image

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(f"missing file {rel}") from None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if mode == "L" and im.mode not in ("L", "P", "I", "I;16"):
                raise RecordError(f"mask {rel} is {im.mode}, not one code per pixel")
            arr = np.asarray(im.convert(mode) if im.mode != mode and mode == "RGB" else im)
    except RecordError:
        raise
    except Exception as exc:  # Pillow raises many types for broken files
        raise RecordError(f"unreadable image {rel}: {exc}") from exc
    if mode == "L":
        if arr.ndim != 2:
            raise RecordError(f"mask {rel} is not one code per pixel")
        if arr.max(initial=0) > 255:
            raise RecordError(f"mask {rel} holds codes above 255")
        arr = arr.astype(np.uint8)
    return arr
