"""The reference training job: multitask training on a build, then CLIMB's evaluation.

`medshard train CONFIG` (one process, CPU or one GPU) or
`torchrun --nproc-per-node N -m medshard.jobs.train CONFIG` (DDP, one GPU per rank).

What a run does:
  - reads the build through `ShardDataset`/`ShardLoader` (mixing weights, few-shot keys);
  - encodes each sample with its modality's encoders (`models.py`), one linear head over
    the unified vocabulary, CLIMB's masked multi-label loss;
  - AdamW, cosine or constant learning rate, gradient clipping; bf16/fp16 autocast on GPU;
  - checkpoints `OUT/checkpoint.pt` every `checkpoint_every` steps and at each epoch's end
    (model, optimizer, scheduler, scaler, RNG states per rank, the loader's state);
    running the same command again resumes from the loader's state (`load_state_dict`):
    with the same world size and workers the loader yields the same batches as an
    uninterrupted run, in order (deterministic resume), so the run ends with the same
    weights without reading anything twice; with another world size or worker count each
    remaining sample comes once (the weights then differ, with a warning). `train.resume`
    ("replay" or "state") is kept for old configs; both now mean this;
  - evaluates on `eval_splits` on rank 0 and writes `OUT/metrics.json` (per source, per
    source:task, per modality; bootstrap CIs), `OUT/predictions-<split>.npz` and the plot
    `OUT/run.svg` (loss curve, AUC per source).
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import warnings
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from medshard import metrics
from medshard.errors import UserError
from medshard.jobs.config import JobConfig, load_config
from medshard.jobs.models import MultitaskModel, build_encoder, masked_bce
from medshard.jobs.plot import write_run_svg
from medshard.loaders import ShardDataset, ShardLoader
from medshard.loaders.collate import fit_trailing
from medshard.loaders.manifest import read_manifest
from medshard.schemas.vocabulary import load_vocabulary

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "medshard.train/1"


class PreparePayload:
    """Dataset transform: the configured roles as float tensors, sized; other roles dropped.

    Signals stay as stored (already normalized by the build); images are scaled to [0, 1]
    by their bit depth and given `image_channels` channels; volumes in HU are clipped to
    [-1000, 1000] / 1000, others standardized; volumes get a channel axis. `size` fits the
    trailing dimensions (center crop / zero pad).
    """

    def __init__(self, roles: Mapping[str, Sequence[str]], size: Mapping[str, Mapping[str, Sequence[int]]],
                 image_channels: int) -> None:
        self.roles = {m: list(r) for m, r in roles.items()}
        self.size = {m: {r: list(d) for r, d in v.items()} for m, v in size.items()}
        self.image_channels = image_channels

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        modality = sample["modality"]
        meta = sample["meta"]
        out = {k: sample[k] for k in ("key", "source", "modality", "split", "labels", "label_mask")}
        out["meta"] = {"task": meta.get("task"), "subject": meta.get("subject")}
        for role in self.roles.get(modality, []):
            if role not in sample:
                continue
            x = self._prepare(role, sample[role], meta.get(role) or {})
            size = self.size.get(modality, {}).get(role)
            out[role] = fit_trailing(x, size) if size else x
        return out

    def _prepare(self, role: str, x: torch.Tensor, desc: Mapping[str, Any]) -> torch.Tensor:
        if role == "image":
            depth = int(desc.get("bit_depth") or (8 if x.dtype == torch.uint8 else 16))
            x = x.float() / float(2**depth - 1)
            if x.shape[0] != self.image_channels:
                x = x.mean(0, keepdim=True).expand(self.image_channels, *x.shape[1:]).contiguous()
            return x
        if role in ("volume", "segmentation"):
            x = x.float()
            if str(desc.get("units", "")).upper() == "HU":
                x = x.clamp(-1000, 1000) / 1000
            else:
                x = (x - x.mean()) / x.std().clamp_min(1e-6)
            return x.unsqueeze(0)
        return x.float()


# -- setup --------------------------------------------------------------------------------


def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); initializes the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, world, device


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def selected_sources(cfg: JobConfig) -> tuple[list[str], dict[str, str]]:
    """(sources to train on, source -> modality), checked against the build and encoders."""
    manifest, _ = read_manifest(cfg.data.build)
    modality = {s: info.modality for s, info in manifest.sources.items()}
    if cfg.data.sources:
        names = list(cfg.data.sources)
    elif cfg.data.weights:
        names = sorted(cfg.data.weights)
    else:
        names = sorted(s for s in modality if modality[s] in cfg.model.encoders)
    for s in names:
        if s not in modality:
            raise UserError(f"source {s!r} is not in {cfg.data.build}; it has {sorted(modality)}")
        if modality[s] not in cfg.model.encoders:
            raise UserError(f"source {s!r} is {modality[s]}, which has no encoder; add "
                            f"[model.encoders.{modality[s]}] or leave the source out")
    if not names:
        raise UserError(f"no source of {cfg.data.build} has a modality in model.encoders "
                        f"({sorted(cfg.model.encoders)})")
    return names, modality


def make_dataset(cfg: JobConfig, split: str, sources: list[str], prepare: PreparePayload,
                 train: bool) -> ShardDataset:
    d = cfg.data
    kwargs: dict[str, Any] = dict(
        split=split, sources=sources, seed=cfg.seed, transform=prepare, format=d.format,
        cache_dir=d.cache_dir, decode_threads=d.decode_threads,
    )
    if train:
        weights = {s: (d.weights or {}).get(s, 1.0) for s in sources} if d.weights else None
        kwargs.update(weights=weights, replacement=d.replacement, buffer_size=d.buffer_size,
                      samples_per_epoch=d.samples_per_epoch, keys=d.fewshot)
    else:
        kwargs.update(shuffle=False, rank=0, world_size=1)
    return ShardDataset(cfg.data.build, **kwargs)


def make_loader(cfg: JobConfig, dataset: ShardDataset) -> ShardLoader:
    d = cfg.data
    extra: dict[str, Any] = {}
    if d.num_workers > 0 and d.prefetch_factor:
        extra["prefetch_factor"] = d.prefetch_factor
    # a private generator: creating the iterator must not draw from the global RNG,
    # or a resumed run's dropout/initialization would diverge
    gen = torch.Generator().manual_seed(cfg.seed)
    return ShardLoader(dataset, batch_size=d.batch_size, num_workers=d.num_workers,
                       pin_memory=d.pin_memory, generator=gen, **extra)


def build_model(cfg: JobConfig, sources: list[str], modality: Mapping[str, str],
                prepare: PreparePayload) -> MultitaskModel:
    """Encoders sized from one real sample per modality (channels and probe shape)."""
    encoders: dict[str, dict[str, nn.Module]] = {}
    for src in sources:
        m = modality[src]
        if m in encoders:
            continue
        probe = next(iter(ShardDataset(cfg.data.build, split=cfg.data.train_split, sources=src,
                                       shuffle=False, transform=prepare, rank=0, world_size=1)))
        encoders[m] = {}
        for role, spec in cfg.model.encoders[m].items():
            if role not in probe:
                raise UserError(f"{src} samples have no {role!r} payload; roles there: "
                                f"{sorted(k for k in probe if isinstance(probe[k], torch.Tensor))}")
            shape = probe[role].shape
            encoders[m][role] = build_encoder(spec, shape[0], cfg.model.dim,
                                              cfg.model.options.get(spec, {}), shape[1:])
    model = MultitaskModel(encoders, cfg.model.fusion, cfg.model.dim, len(load_vocabulary()))
    if cfg.model.init:
        try:
            state = torch.load(cfg.model.init, map_location="cpu", weights_only=True)["model"]
        except (OSError, KeyError, RuntimeError) as e:
            raise UserError(f"model.init: {cfg.model.init} is not a medshard checkpoint ({e})"
                            ) from None
        model.load_encoders(state, cfg.model.init_from, cfg.model.init)
    if cfg.model.freeze_encoders:
        for p in model.encoders.parameters():
            p.requires_grad_(False)
    return model


def autocast_settings(cfg: JobConfig, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use a GradScaler): mixed precision on GPU only."""
    if device.type != "cuda" or cfg.train.amp == "off":
        return None, False
    if cfg.train.amp == "fp16" or (cfg.train.amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16, True
    return torch.bfloat16, False


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


# -- checkpoints --------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Run:
    """The state of one training run, saved and restored as a whole."""

    def __init__(self, cfg: JobConfig, out: Path, rank: int) -> None:
        self.cfg, self.out, self.rank = cfg, out, rank
        self.epoch = 0
        self.batches_done = 0  # in the current epoch
        self.step = 0
        self.losses: list[float] = []
        self.done = False
        self.loader_state: dict[str, Any] | None = None

    def save(self, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any,
             loader: ShardLoader | None) -> None:
        _atomic_save(rng_state(), self.out / f"rng-{self.rank}.pt")
        if self.rank == 0:
            _atomic_save({
                "format": CHECKPOINT_FORMAT, "fingerprint": self.cfg.fingerprint(),
                "model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "epoch": self.epoch, "batches_done": self.batches_done, "step": self.step,
                "losses": self.losses, "done": self.done,
                "loader": loader.state_dict() if loader is not None else None,
            }, self.out / CHECKPOINT)
        _barrier()

    def restore(self, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any) -> bool:
        """Load OUT's checkpoint if there is one; True when it did."""
        path = self.out / CHECKPOINT
        if not path.exists():
            return False
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt["fingerprint"] != self.cfg.fingerprint():
            raise UserError(f"{self.out} holds a run of another config; give another out "
                            "directory or delete that one")
        _unwrap(model).load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.batches_done, self.step = ckpt["epoch"], ckpt["batches_done"], ckpt["step"]
        self.losses, self.done, self.loader_state = ckpt["losses"], ckpt["done"], ckpt["loader"]
        rng = self.out / f"rng-{self.rank}.pt"
        if rng.exists():
            set_rng_state(torch.load(rng, weights_only=False))
        return True


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


# -- training -----------------------------------------------------------------------------


def run_training(config: Path, overrides: Sequence[str] = (), out: str | None = None,
                 max_steps: int | None = None) -> dict[str, Any]:
    """Train (or resume) the run `config` describes, evaluate it; see the module docstring.

    `max_steps` stops after that many optimizer steps in all (with a checkpoint), e.g.
    to time-box a job. Returns {"steps", "metrics_path" (None until training is done and
    on ranks other than 0), "rank", "out"}.
    """
    cfg = load_config(config, overrides, out)
    rank, world, device = setup_distributed()
    try:
        job = Job(cfg, rank, world, device)
        finished = job.train(max_steps)
        metrics_path = None
        if finished and rank == 0:
            metrics_path = evaluate_run(cfg, _unwrap(job.model), job.sources, job.modality,
                                        job.prepare, device, job.autocast, job.run)
        _barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return {"steps": job.run.step, "metrics_path": str(metrics_path) if metrics_path else None,
            "rank": rank, "out": cfg.out}


class Job:
    """Everything one training process holds: data, model, optimizer, the run's state."""

    def __init__(self, cfg: JobConfig, rank: int, world: int, device: torch.device) -> None:
        self.cfg, self.rank, self.world, self.device = cfg, rank, world, device
        out_dir = Path(cfg.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        if cfg.train.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        self.sources, self.modality = selected_sources(cfg)
        roles = {m: list(r) for m, r in cfg.model.encoders.items()}
        self.prepare = PreparePayload(roles, cfg.data.size, cfg.model.image_channels)
        model: nn.Module = build_model(cfg, self.sources, self.modality, self.prepare).to(device)
        torch.manual_seed(cfg.seed + rank)  # dropout differs per rank; weights come from rank 0
        self.loader = make_loader(cfg, make_dataset(cfg, cfg.data.train_split, self.sources,
                                                    self.prepare, train=True))
        steps_per_epoch = len(self.loader)
        if steps_per_epoch == 0:
            raise UserError(f"the {cfg.data.train_split!r} split gives this rank no batch; "
                            "lower data.batch_size or use fewer ranks")
        self.total_steps = cfg.train.epochs * steps_per_epoch
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.train.lr,
                                           weight_decay=cfg.train.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           _schedule(cfg, self.total_steps))
        amp_dtype, use_scaler = autocast_settings(cfg, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
        self.autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype \
            else nullcontext
        self.run = Run(cfg, out_dir, rank)
        self.run.restore(model, self.optimizer, self.scheduler, self.scaler)
        if world > 1:
            if device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            several = len(roles) > 1 or any(len(r) > 1 for r in roles.values())
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=several)  # a batch may lack a modality or role
        self.model = model

    def save(self, mid_epoch: bool) -> None:
        self.run.save(self.model, self.optimizer, self.scheduler, self.scaler,
                      self.loader if mid_epoch else None)

    def train(self, max_steps: int | None) -> bool:
        """Train the remaining epochs; False when stopped by `max_steps` (checkpointed)."""
        cfg, run = self.cfg, self.run
        bar = tqdm(total=self.total_steps, initial=run.step, desc="train", unit="step",
                   disable=self.rank != 0 or None)
        with bar:
            while not run.done and run.epoch < cfg.train.epochs:
                if not self.train_epoch(bar, max_steps):
                    return False
                run.epoch += 1
                run.batches_done = 0
                run.loader_state = None
                run.done = run.epoch >= cfg.train.epochs
                self.save(mid_epoch=False)
        return True

    def train_epoch(self, bar: Any, max_steps: int | None) -> bool:
        """The rest of the current epoch; False when stopped by `max_steps`."""
        cfg, run = self.cfg, self.run
        self.loader.set_epoch(run.epoch)
        resume_epoch(run, self.loader, cfg, self.world)
        self.model.train()
        if cfg.model.freeze_encoders:
            _unwrap(self.model).encoders.eval()  # frozen: batch-norm statistics stay too
        for batch in self.loader:
            loss = train_step(self.model, to_device(batch, self.device), self.optimizer,
                              self.scheduler, self.scaler, self.autocast, cfg.train.grad_clip,
                              self.params)
            run.losses.append(loss)
            run.step += 1
            run.batches_done += 1
            bar.update(1)
            if run.step % cfg.train.log_every == 0:
                bar.set_postfix(loss=f"{loss:.4f}")
            if max_steps is not None and run.step >= max_steps:
                self.save(mid_epoch=True)
                return False
            if run.step % cfg.train.checkpoint_every == 0:
                self.save(mid_epoch=True)
        return True


def resume_epoch(run: Run, loader: ShardLoader, cfg: JobConfig, world: int) -> None:
    """Mid-epoch: load the loader's state, so the epoch continues where it stopped.

    With the state's world size and worker count the loader yields the uninterrupted
    run's remaining batches in order (the same weights); otherwise each remaining sample
    once, in another order (a warning says the weights will differ).
    """
    if not run.batches_done:
        return
    state = run.loader_state
    if state is None:
        raise UserError(f"{run.out / CHECKPOINT} is mid-epoch but has no loader state; "
                        "delete it to start over")
    same_layout = (state["world_size"], state["num_workers"]) == (world, max(1, cfg.data.num_workers))
    if not same_layout and run.rank == 0:
        warnings.warn("resuming from the loader's state on another world size or worker count: "
                      "each remaining sample comes once, but the weights will not equal an "
                      "uninterrupted run's", stacklevel=2)
    loader.load_state_dict(state)


def _schedule(cfg: JobConfig, total_steps: int) -> Any:
    if cfg.train.schedule == "constant":
        return lambda step: 1.0
    return lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


def train_step(model: nn.Module, batch: Mapping[str, Any], optimizer: Any, scheduler: Any,
               scaler: Any, autocast: Any, grad_clip: float | None, params: list[Any]) -> float:
    """One optimizer step on a batch already on the model's device; returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    with autocast():
        logits = model(batch)
    loss = masked_bce(logits, batch["labels"], batch["label_mask"])
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return float(loss.detach())


# -- evaluation ---------------------------------------------------------------------------


@torch.no_grad()
def predict(model: nn.Module, loader: ShardLoader, device: torch.device, autocast: Any
            ) -> dict[str, Any]:
    """Scores (sigmoid), labels, masks, keys, sources and tasks over one split."""
    model.eval()
    parts: dict[str, list[Any]] = {k: [] for k in ("key", "source", "task", "score", "labels", "mask")}
    for batch in tqdm(loader, desc="evaluate", unit="batch", disable=None):
        with autocast():
            logits = model(to_device(batch, device))
        parts["score"].append(torch.sigmoid(logits.float()).cpu().numpy())
        parts["labels"].append(batch["labels"].numpy())
        parts["mask"].append(batch["label_mask"].numpy())
        parts["key"] += batch["key"]
        parts["source"] += batch["source"]
        parts["task"] += [m["task"] for m in batch["meta"]]
    return {k: (np.concatenate(v) if k in ("score", "labels", "mask") else v) for k, v in parts.items()}


def evaluate_run(cfg: JobConfig, model: nn.Module, sources: list[str], modality: Mapping[str, str],
                 prepare: PreparePayload, device: torch.device, autocast: Any, run: Run) -> Path:
    """Predict every eval split, write predictions, metrics.json and run.svg."""
    manifest, _ = read_manifest(cfg.data.build)
    present = {sh.split for sh in manifest.shards if sh.source in sources}
    vocab = load_vocabulary()
    preds: dict[str, dict[str, Any]] = {}
    for split in cfg.data.eval_splits:
        if split not in present:
            continue
        ds = make_dataset(cfg, split, sources, prepare, train=False)
        loader = ShardLoader(ds, batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers)
        preds[split] = predict(model, loader, device, autocast)
        p = preds[split]
        np.savez_compressed(run.out / f"predictions-{split}.npz", key=np.asarray(p["key"]),
                            source=np.asarray(p["source"]), score=p["score"], labels=p["labels"],
                            mask=p["mask"], concepts=np.asarray(vocab.concept_ids))
    thresholds = None
    ts = cfg.data.threshold_split
    if ts in preds:
        thresholds = metrics.label_thresholds(preds[ts]["labels"], preds[ts]["score"],
                                              preds[ts]["mask"], cfg.train.operating_point)
    report: dict[str, Any] = {
        "config_fingerprint": cfg.fingerprint(), "steps": run.step, "epochs": run.epoch,
        "sources": sources, "threshold": 0.5,
        "operating_point": {"rule": cfg.train.operating_point, "chosen_on": ts if thresholds is not None else None},
        "splits_missing": [s for s in cfg.data.eval_splits if s not in preds],
        "splits": {},
    }
    for split, p in preds.items():
        report["splits"][split] = metrics.evaluate(
            p["source"], p["labels"], p["score"], p["mask"], tasks=p["task"],
            modalities=modality, concept_ids=vocab.concept_ids, thresholds=thresholds,
            n_boot=cfg.train.eval_bootstrap, seed=cfg.seed)
    path = run.out / "metrics.json"
    path.write_text(json.dumps(_finite(report), indent=1, sort_keys=True) + "\n")
    last = next(reversed(report["splits"].values()), {"by_source": {}})
    write_run_svg(run.out / "run.svg", run.losses,
                  {s: r["auc"] for s, r in last["by_source"].items()},
                  title=f"{run.out.name}: {run.step} steps")
    return path


def _finite(obj: Any) -> Any:
    """NaN and infinity as null: metrics.json stays strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    """`python -m medshard.jobs.train CONFIG [...]`, the same as `medshard train` (for torchrun)."""
    from medshard.cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
