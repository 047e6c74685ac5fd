"""Does the loader keep a GPU busy? The fraction of each training step spent waiting for data.

    python benchmarks/gpu_feed.py                      # on a GPU machine
    python benchmarks/gpu_feed.py --build BUILD        # a real build instead of synthetic data
    python benchmarks/gpu_feed.py --dry-run            # CPU, tiny: checks the script runs

Two jobs, each the reference training job's own path (`medshard.jobs.train`: its
dataset transform, model, masked loss, AdamW step, bf16 autocast on GPU):
  - ecg: the 1-D ResNet on 12-lead ECG windows, batch 256;
  - image: the 2-D ResNet on native-size grayscale JPEGs center-cropped to 512 x 512
    (in the DataLoader workers), batch 32.
For every combination of DataLoader workers (0/2/4/8), `pin_memory` (off/on) and shard
location (local files / the same build over HTTP from a loopback server, no cache), it
trains `--warmup` steps, then times `--steps` steps. Per step, *wait* is the time blocked
in `next(loader)`; *step* is wait + host-to-device copy + forward/backward/optimizer,
synchronized on the GPU. The figure is sum(wait) / sum(step): 0 means the GPU never
waits for data. Sampling is with replacement (`samples_per_epoch` = what the run
needs), so a small build serves any number of steps without an epoch boundary.

Synthetic data (no `--build`): ECG windows of the build standard's shape (12 leads x
`ECG_SPEC.n_samples` of medshard.pipeline) and JPEGs of about 1000 x 1200 pixels,
written as one medshard build with the sharding writers.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import torch

from medshard.jobs.config import DataConfig, JobConfig, ModelConfig, TrainConfig
from medshard.jobs.train import (
    PreparePayload,
    autocast_settings,
    build_model,
    make_dataset,
    make_loader,
    selected_sources,
    to_device,
    train_step,
)
from medshard.schemas.models import Manifest, ShardInfo, SourceSummary, SplitCounts
from medshard.sharding.members import json_bytes, npy_bytes
from medshard.sharding.wds import TarShardWriter

JOBS = {
    # name: (source, modality, role, encoder, batch, crop)
    "ecg": ("ptb-xl", "ecg", "signal", "resnet1d", 256, None),
    "image": ("chexpert", "chest-xray", "image", "resnet2d", 32, [512, 512]),
}
LABELS = {"ptb-xl": ["ecg.normal", "ecg.st-t-change", "ecg.myocardial-infarction"],
          "chexpert": ["cxr.no-finding", "cxr.edema", "cxr.cardiomegaly"]}


# -- synthetic build ----------------------------------------------------------------------


def _ecg_payloads(n: int) -> Iterator[tuple[bytes, dict]]:
    from medshard.schemas.standards import ECG_SPEC

    rng = np.random.default_rng(0)
    leads, length = len(ECG_SPEC.channels), ECG_SPEC.n_samples
    t = np.arange(length) / ECG_SPEC.sampling_rate_hz
    for i in range(n):
        x = np.sin(2 * np.pi * (1 + i % 5) * t)[None] + rng.normal(0, 0.2, (leads, length))
        desc = {"sampling_rate_hz": ECG_SPEC.sampling_rate_hz, "channels": list(ECG_SPEC.channels),
                "units": "mV", "n_samples": length, "original_sampling_rate_hz": 500.0,
                "scale": [1.0] * leads, "normalization": "range"}
        yield npy_bytes(x.astype(np.float32)), desc


def _jpeg_payloads(n: int, size: tuple[int, int]) -> Iterator[tuple[bytes, dict]]:
    from PIL import Image

    rng = np.random.default_rng(1)
    for i in range(n):
        h, w = size[0] + (i % 7) * 16, size[1] + (i % 5) * 24
        base = np.add.outer(np.linspace(0, 160, h), np.linspace(0, 80, w))
        img = np.clip(base + rng.normal(0, 20, (h, w)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        yield buf.getvalue(), {"height": h, "width": w, "bit_depth": 8,
                               "photometric": "MONOCHROME2", "view": "PA"}


def write_synthetic_build(root: Path, n_ecg: int, n_img: int, img_size: tuple[int, int]) -> Path:
    """A medshard build of `n_ecg` ECG windows and `n_img` JPEGs (train split, 4 shards each)."""
    shards, sources = [], {}
    for src, modality, member, payloads in (
        ("ptb-xl", "ecg", "signal.npy", _ecg_payloads(n_ecg)),
        ("chexpert", "chest-xray", "image.jpg", _jpeg_payloads(n_img, img_size)),
    ):
        items = list(payloads)
        per = -(-len(items) // 4)
        for s in range(0, len(items), per):
            path = f"{src}/train/{src}-train-{s // per:06d}.tar"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            with open(root / path, "wb") as fh:
                writer = TarShardWriter(fh)
                for i, (data, desc) in enumerate(items[s:s + per], start=s):
                    meta = {"key": f"{src.replace('-', '')}_{i:06d}", "source": src,
                            "modality": modality, "split": "train", "subject": str(i),
                            "task": "multi-label classification", "labels": [LABELS[src][i % 3]],
                            "source_labels": {}, "meta": {}, "members": [member],
                            "payloads": {member.split(".")[0]: {
                                "kind": member.split(".")[0], "member": member, **desc}},
                            "provenance": {"files": {}, "source_version": "bench",
                                           "transform_config_hash": "0", "medshard_version": "0"}}
                    writer.write(meta["key"], [("json", json_bytes(meta)), (member, data)])
                writer.close()
            blob = (root / path).read_bytes()
            shards.append(ShardInfo(path=path, format="webdataset", source=src, split="train",
                                    samples=len(items[s:s + per]), bytes=len(blob),
                                    sha256=hashlib.sha256(blob).hexdigest()))
        sources[src] = SourceSummary(version="bench", license="test", access="open",
                                     modality=modality,
                                     counts={"train": SplitCounts(written=len(items),
                                                                  samples=len(items))})
    manifest = Manifest(medshard_version="0", config={}, config_hash="0", vocabulary_version="0",
                        pseudonym_key_id="bench", sources=sources, shards=shards)
    (root / "manifest.json").write_text(manifest.model_dump_json())
    return root


@contextmanager
def http_server(root: Path) -> Iterator[str]:
    """`root` served over HTTP on 127.0.0.1 (an ephemeral port) while the block runs."""
    handler = functools.partial(
        type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
        directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- measurement --------------------------------------------------------------------------


def job_config(job: str, build: str, workers: int, pin: bool, steps: int, batch: int,
               crop: list[int] | None, width: int) -> JobConfig:
    src, modality, role, encoder, _, _ = JOBS[job]
    size = {modality: {role: crop}} if crop else {}
    return JobConfig(
        out="unused", seed=0,
        data=DataConfig(build=build, sources=[src], batch_size=batch, num_workers=workers,
                        pin_memory=pin, replacement=True, samples_per_epoch=steps * batch,
                        size=size),
        model=ModelConfig(encoders={modality: {role: encoder}}, dim=256,
                          options={encoder: {"width": width}}),
        train=TrainConfig(amp="auto", schedule="constant"),
    )


def measure(cfg: JobConfig, device: torch.device, warmup: int, steps: int) -> dict[str, float]:
    """Train warmup + steps steps; wait fraction, step time and samples/s of the timed steps."""
    sources, modality = selected_sources(cfg)
    prepare = PreparePayload({m: list(r) for m, r in cfg.model.encoders.items()},
                             cfg.data.size, cfg.model.image_channels)
    torch.manual_seed(0)
    model = build_model(cfg, sources, modality, prepare).to(device)
    loader = make_loader(cfg, make_dataset(cfg, "train", sources, prepare, train=True))
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    amp_dtype, use_scaler = autocast_settings(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else nullcontext
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    waits, totals = [], []
    it = iter(loader)
    for n in range(warmup + steps):
        t0 = time.perf_counter()
        batch = next(it)
        t1 = time.perf_counter()
        train_step(model, to_device(batch, device), optimizer, scheduler, scaler, autocast, 1.0,
                   params)
        sync()
        t2 = time.perf_counter()
        if n >= warmup:
            waits.append(t1 - t0)
            totals.append(t2 - t0)
    del it
    step = sum(totals) / len(totals)
    return {"wait_fraction": sum(waits) / sum(totals), "step_ms": 1000 * step,
            "wait_ms": 1000 * sum(waits) / len(waits),
            "samples_per_s": cfg.data.batch_size / step}


def run(args: argparse.Namespace) -> list[dict]:
    device = torch.device("cuda" if torch.cuda.is_available() and not args.dry_run else "cpu")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="medshard-gpu-feed-"))
    if args.build:
        build = Path(args.build)
    else:
        build = write_synthetic_build(work / "build", args.ecg, args.images, tuple(args.image_size))
    rows = []
    with http_server(build) as url:
        for job in args.jobs:
            _, _, _, _, batch, crop = JOBS[job]
            batch = args.batch.get(job, batch)
            crop = args.crop if job == "image" and args.crop else crop
            for where, location in (("local", str(build)), ("http", url)):
                for workers in args.workers:
                    for pin in args.pin:
                        cfg = job_config(job, location, workers, pin, args.warmup + args.steps,
                                         batch, crop, args.width)
                        figures = measure(cfg, device, args.warmup, args.steps)
                        row = {"job": job, "shards": where, "workers": workers, "pin_memory": pin,
                               "batch": batch, "device": str(device), **figures}
                        rows.append(row)
                        print(f"{job:<6} {where:<5} workers {workers} pin {pin!s:<5} "
                              f"wait {figures['wait_fraction']:6.1%}  step {figures['step_ms']:8.1f} ms"
                              f"  {figures['samples_per_s']:8.1f} samples/s", flush=True)
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", help="a medshard build with ptb-xl and/or chexpert train shards")
    p.add_argument("--workdir", help="where the synthetic build goes (default: a temp dir)")
    p.add_argument("--jobs", nargs="+", choices=sorted(JOBS), default=sorted(JOBS))
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4, 8])
    p.add_argument("--pin", type=lambda s: s == "on", nargs="+", default=[False, True],
                   metavar="off|on")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--ecg", type=int, default=2048, help="synthetic ECG windows")
    p.add_argument("--images", type=int, default=256, help="synthetic JPEGs")
    p.add_argument("--image-size", type=int, nargs=2, default=[1000, 1200])
    p.add_argument("--crop", type=int, nargs=2, help="image crop (default 512 512)")
    p.add_argument("--width", type=int, default=64, help="ResNet width (64: ResNet-18-like)")
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--dry-run", action="store_true",
                   help="CPU, tiny data and models, 2 steps per row: checks that it runs")
    args = p.parse_args(argv)
    args.batch = {}
    if args.dry_run:
        args.workers = [w for w in args.workers if w <= 2] or [0]
        args.pin = [False]
        args.steps, args.warmup, args.ecg, args.images, args.width = 2, 1, 32, 8, 4
        args.image_size, args.crop = [96, 128], [64, 64]
        args.batch = {"ecg": 8, "image": 4}
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    rows = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
