"""`ShardDataset`'s options, grouped: how samples are drawn, read, and decoded.

Each group is a frozen dataclass; `ShardDataset(..., sampling=SamplingOptions(seed=3))`
and the flat keyword `ShardDataset(..., seed=3)` mean the same (the flat keywords are
the original API and stay). A keyword given both ways is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from medshard.errors import UserError


@dataclass(frozen=True)
class SamplingOptions:
    """Which sample when (see `medshard.loaders.plan`).

    `shuffle`/`seed`: shard order and shuffle buffer per (seed, epoch); `buffer_size` raw
    samples per buffer; `replacement`: draw sources by weight (an epoch is
    `samples_per_epoch`, default the selected total); `equalize`: "drop" or "repeat"
    the fewer than world_size samples that do not divide evenly over ranks.
    """

    shuffle: bool = True
    seed: int = 0
    buffer_size: int = 256
    replacement: bool = False
    samples_per_epoch: int | None = None
    equalize: str = "drop"


@dataclass(frozen=True)
class ReadOptions:
    """How shard bytes are found and checked (see `medshard.loaders.remote`).

    `format`: "auto", "webdataset" or "parquet"; `cache_dir`/`cache_bytes`: the local
    cache of remote shards; `verify`: sha256 of shards fetched over the network
    ("remote"), of every shard read (True), of each shard the first time a process reads
    it ("once"), or none (False); `on_error`: "raise", or "skip" an unreadable shard
    (its rank then repeats recent samples so that ranks stay equal).
    """

    format: str = "auto"
    cache_dir: str | None = None
    cache_bytes: int = 20 << 30
    verify: bool | str = "remote"
    on_error: str = "raise"


@dataclass(frozen=True)
class DecodeOptions:
    """From raw samples to what the dataset yields (see `medshard.loaders.decode`).

    `decode`: False yields raw samples (bytes); `transform`: applied to each sample;
    `decode_threads`: samples decoded at once on threads, None = automatic (threads for
    PNG/JPEG when the process has spare cores, none for arrays); `image_decoder`: "auto",
    "pillow", "simplejpeg", "torchvision", or "cuda" (nvJPEG, when a GPU is there);
    `decode_size`: (height, width) a JPEG may be decoded down to with libjpeg's DCT
    scaling (a power-of-two reduction, never below this size), None = native size;
    `ecg_view`, `label_view`, `apply_rescale`: see `medshard.loaders.views`.
    """

    decode: bool = True
    transform: Callable[[Any], Any] | None = None
    decode_threads: int | None = None
    image_decoder: str = "auto"
    decode_size: tuple[int, int] | None = None
    ecg_view: str = "full"
    label_view: str = "source"
    apply_rescale: bool = False


GROUPS: dict[str, type] = {"sampling": SamplingOptions, "reading": ReadOptions,
                           "decoding": DecodeOptions}
KEYWORDS: dict[str, str] = {f.name: group for group, cls in GROUPS.items() for f in fields(cls)}


def resolve(given: Mapping[str, Any], flat: Mapping[str, Any]) -> dict[str, Any]:
    """The three option objects from the groups passed and the flat keywords."""
    unknown = sorted(set(flat) - set(KEYWORDS))
    if unknown:
        raise TypeError(f"ShardDataset() got unexpected keyword arguments {unknown}")
    out: dict[str, Any] = {}
    for group, cls in GROUPS.items():
        base = given.get(group)
        changes = {k: v for k, v in flat.items() if KEYWORDS[k] == group}
        if base is not None and not isinstance(base, cls):
            raise UserError(f"{group}= takes a {cls.__name__}, not {type(base).__name__}")
        if base is not None and changes:
            raise UserError(f"{sorted(changes)} given both as keywords and in {group}=; "
                            "pass each option once")
        out[group] = replace(base or cls(), **changes)
    return out
