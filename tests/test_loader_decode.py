"""JPEG decoders behind `image_decoder=` (issue 19), checked against Pillow.

Pillow is the reference (an independent library; medshard's Pillow path is only
`np.asarray(Image.open(...))`). simplejpeg and Pillow both use libjpeg-turbo's accurate
integer IDCT and fancy upsampling, so their pixels must agree exactly; nvJPEG may round
differently (compared within 2 grey levels). GPU and torchvision cases run only where
those exist.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from medshard.errors import UserError
from medshard.loaders.decode import auto_decode_threads, image_decoder, image_tensor
from tests.loader_fixtures import jpeg_bytes


def _photo(h: int = 200, w: int = 264) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(3)
    base = (yy * 255 // h + xx * 255 // w) // 2 + rng.integers(0, 40, (h, w))
    return np.clip(base, 0, 255).astype(np.uint8)


def _pillow(data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        if size is not None:
            im.draft(im.mode, (size[1], size[0]))
        arr = np.asarray(im)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


GRAY = jpeg_bytes(_photo())
RGB = jpeg_bytes(np.stack([_photo(), _photo()[::-1], 255 - _photo()], axis=-1))


@pytest.mark.parametrize("data", [GRAY, RGB], ids=["gray", "rgb"])
def test_simplejpeg_decodes_what_pillow_decodes(data):
    assert image_decoder("simplejpeg") == "simplejpeg"
    got = image_tensor(data, "simplejpeg")
    assert got.dtype == torch.uint8
    assert np.array_equal(got.numpy(), _pillow(data))


@pytest.mark.parametrize("data", [GRAY, RGB], ids=["gray", "rgb"])
def test_scaled_decoding_matches_pillow_draft(data):
    """DCT scaling: the smallest power-of-two reduction that stays >= the asked size."""
    for size in ((90, 120), (40, 40), (200, 264)):
        want = _pillow(data, size)
        got = image_tensor(data, "simplejpeg", size)
        assert got.shape == want.shape and np.array_equal(got.numpy(), want), size
        assert got.shape[1] >= size[0] and got.shape[2] >= size[1]
        assert image_tensor(data, "pillow", size).shape == want.shape
    assert image_tensor(data, "simplejpeg", (90, 120)).shape[1:] == (100, 132)  # 1/2


def test_png_ignores_the_jpeg_decoder_and_the_size():
    buf = io.BytesIO()
    Image.fromarray(_photo()).save(buf, format="PNG")
    png = buf.getvalue()
    assert np.array_equal(image_tensor(png, "simplejpeg", (40, 40)).numpy(), _pillow(png))


def test_unknown_decoder_is_a_clear_error():
    with pytest.raises(UserError, match="not one of"):
        image_decoder("libjpeg")
    assert image_decoder("pillow") == "pillow"
    assert image_decoder("auto") == "simplejpeg"  # installed with the torch extra


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback is for machines without GPU")
def test_cuda_decoder_falls_back_to_the_cpu_without_a_gpu():
    image_decoder.cache_clear()
    with pytest.warns(UserWarning, match="CUDA device"):
        resolved = image_decoder("cuda")
    assert resolved in ("simplejpeg", "pillow")
    assert np.array_equal(image_tensor(GRAY, resolved).numpy(), _pillow(GRAY))


def test_torchvision_decoder_matches_pillow():
    pytest.importorskip("torchvision")
    assert np.array_equal(image_tensor(GRAY, "torchvision").numpy(), _pillow(GRAY))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="nvJPEG needs a CUDA device")
def test_nvjpeg_on_the_gpu_matches_pillow_within_rounding():
    pytest.importorskip("torchvision")
    got = image_tensor(RGB, "cuda")
    assert got.device.type == "cuda"
    diff = (got.cpu().to(torch.int16) - torch.from_numpy(_pillow(RGB)).to(torch.int16)).abs()
    assert diff.max() <= 2


def test_decode_threads_default_to_the_cores_for_images_only():
    cores = len(__import__("os").sched_getaffinity(0))
    jpeg = {"__key__": "k", "json": b"{}", "image.jpg": GRAY}
    npy = {"__key__": "k", "json": b"{}", "signal.npy": b""}
    assert auto_decode_threads(npy, 1) == 0
    assert auto_decode_threads(jpeg, 1) == (min(cores, 8) if cores >= 2 else 0)
    assert auto_decode_threads(jpeg, cores) == 0  # one core per DataLoader worker: no threads


def test_sample_decoder_scales_jpeg_payloads_and_says_so():
    import json

    from medshard.loaders.decode import SampleDecoder
    from medshard.schemas.vocabulary import load_vocabulary

    meta = {"key": "k", "source": "chexpert", "modality": "chest-xray", "split": "train",
            "labels": [], "members": ["image.jpg"],
            "payloads": {"image": {"kind": "image", "encoding": "jpeg", "member": "image.jpg",
                                   "height": 200, "width": 264, "bit_depth": 8}}}
    raw = {"__key__": "k", "json": json.dumps(meta).encode(), "image.jpg": GRAY}
    vocab = load_vocabulary()
    native = SampleDecoder(vocab, image_decoder="simplejpeg")(dict(raw))
    assert np.array_equal(native["image"].numpy(), _pillow(GRAY))
    assert "decode_scale" not in native["meta"]["payloads"]["image"]
    small = SampleDecoder(vocab, image_decoder="auto", decode_size=(50, 66))(dict(raw))
    assert np.array_equal(small["image"].numpy(), _pillow(GRAY, (50, 66)))
    assert small["image"].shape == (1, 50, 66)
    assert small["meta"]["payloads"]["image"]["decode_scale"] == 4.0
