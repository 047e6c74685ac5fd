"""The training job's configuration: one TOML file, checked with pydantic.

```toml
out = "runs/ecg"                 # run directory: checkpoints, metrics.json, run.svg
seed = 0

[data]
build = "builds/v1"              # build directory, manifest or URL
sources = ["ptb-xl", "tuab"]     # default: every source with an encoder
weights = { ptb-xl = 1.0, tuab = 1.0 }   # the loader's mixing weights (multitask)
fewshot = "fewshot/ptb-xl/8shot-seed0.json"   # optional: train on these keys only
batch_size = 64
num_workers = 4
size = { chest-xray = { image = [512, 512] } }   # center-crop / pad (modality -> role -> dims)

[model.encoders.ecg]             # modality -> payload role -> encoder
signal = "resnet1d"
[model.encoders.eeg]
signal = "cnn_transformer"

[train]
epochs = 10
lr = 1e-3
```
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medshard.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    build: str
    train_split: str = "train"
    eval_splits: list[str] = ["val", "test"]
    threshold_split: str | None = Field(
        "val", description="split whose per-label Youden thresholds give the *_op figures")
    sources: list[str] | None = None
    weights: dict[str, float] | None = None
    replacement: bool = False
    samples_per_epoch: int | None = None
    fewshot: str | None = None
    batch_size: int = 32
    num_workers: int = 0
    pin_memory: bool = False
    prefetch_factor: int | None = None
    decode_threads: int | None = None  # None: the loader picks (threads for images only)
    buffer_size: int = 256
    format: str = "auto"
    cache_dir: str | None = None
    size: dict[str, dict[str, list[int]]] = {}


class ModelConfig(_Strict):
    encoders: dict[str, dict[str, str]] = {"ecg": {"signal": "resnet1d"}}
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="encoder name -> keyword options (width, depth, ...)")
    dim: int = 256
    fusion: Literal["late", "mlp", "attention"] = "late"
    image_channels: int = 1
    init: str | None = Field(None, description="checkpoint whose encoder weights start the model")
    init_from: dict[str, str] = Field(
        default_factory=dict,
        description='"modality.role" here -> "modality.role" in `init` (default: same names)')
    freeze_encoders: bool = False


class TrainConfig(_Strict):
    epochs: int = 1
    lr: float = 1e-3
    weight_decay: float = 1e-2
    schedule: Literal["constant", "cosine"] = "cosine"
    grad_clip: float | None = 1.0
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    deterministic: bool = False
    checkpoint_every: int = 500
    resume: Literal["replay", "state"] = "replay"  # old configs: both load the loader state
    eval_bootstrap: int = 200
    operating_point: str = "youden"
    log_every: int = 50


class JobConfig(_Strict):
    out: str = "runs/medshard"
    seed: int = 0
    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    def fingerprint(self) -> str:
        """A hash of what decides the trained weights (not out, workers or eval settings)."""
        d = self.model_dump(mode="json")
        d.pop("out")
        for k in ("num_workers", "pin_memory", "prefetch_factor", "decode_threads", "cache_dir",
                  "eval_splits", "threshold_split"):
            d["data"].pop(k)
        for k in ("checkpoint_every", "eval_bootstrap", "operating_point", "log_every", "resume"):
            d["train"].pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
        if not isinstance(tree, dict):
            raise UserError(f"--set {dotted}: {p} is not a table")
    tree[leaf] = value


def load_config(path: Path, overrides: Sequence[str] = (), out: str | None = None) -> JobConfig:
    """The config in `path`, with `KEY=VALUE` overrides (VALUE parsed as JSON when it can be)."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"no config file {path}; write one (see README, Training and evaluation)"
                        ) from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path} is not valid TOML: {e}") from None
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise UserError(f"--set takes KEY=VALUE, got {item!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        _set(raw, key.strip(), value)
    if out is not None:
        raw["out"] = out
    try:
        return JobConfig.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"{path}: {where}: {first['msg']} ({e.error_count()} problem(s))") from None
