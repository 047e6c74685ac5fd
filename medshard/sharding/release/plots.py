"""The card's figures, as PNG files: deterministic bytes for the same release.

matplotlib with the Agg backend, a fixed size and dpi, and no Software/date metadata in
the PNG. Figures that show samples (thumbnails, traces) are drawn only for sources whose
terms allow redistributing derived data; the card says so for the others.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from medshard.schemas import Manifest, ShardInfo
from medshard.sharding.members import npy_array
from medshard.sharding.parquet import iter_parquet_samples
from medshard.sharding.wds import iter_tar_samples

IMAGE_MODALITIES = {"chest-xray", "mammography", "dermoscopy", "fundus", "pathology", "ct", "mri",
                    "oct"}
SIGNAL_MODALITIES = {"ecg", "eeg"}
VOLUME_MODALITIES = {"ct"}
THUMBNAILS = 4
PNG_METADATA = {"Software": None}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8})
    return plt


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, metadata=PNG_METADATA)
    import matplotlib.pyplot as plt

    plt.close(fig)


def plot_samples_per_split(manifest: Manifest, path: Path) -> None:
    plt = _pyplot()
    slugs = sorted(manifest.sources)
    splits = ("train", "val", "test")
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(slugs)), 3))
    x = np.arange(len(slugs))
    for i, split in enumerate(splits):
        vals = [manifest.sources[s].counts[split].samples if split in manifest.sources[s].counts
                else 0 for s in slugs]
        ax.bar(x + (i - 1) * 0.27, vals, width=0.27, label=split)
    ax.set_xticks(x, slugs, rotation=30, ha="right")
    ax.set_ylabel("samples")
    ax.set_title("Samples per source and split")
    ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_label_prevalence(slug: str, histogram: dict[str, dict[str, int]],
                          totals: dict[str, int], path: Path) -> None:
    """Fraction of samples carrying each unified label, per split."""
    plt = _pyplot()
    labels = sorted({lab for h in histogram.values() for lab in h})
    splits = [s for s in ("train", "val", "test") if s in histogram]
    fig, ax = plt.subplots(figsize=(6, max(1.5, 0.3 * len(labels) + 0.8)))
    y = np.arange(len(labels))
    h = 0.8 / max(1, len(splits))
    for i, split in enumerate(splits):
        n = max(1, totals[split])
        ax.barh(y + i * h, [histogram[split].get(lab, 0) / n for lab in labels], height=h,
                label=split)
    ax.set_yticks(y + h * (len(splits) - 1) / 2, labels)
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of samples")
    ax.set_title(f"{slug}: label prevalence")
    if splits:
        ax.legend(fontsize=6)
    fig.tight_layout()
    _save(fig, path)


def _shard_samples(root: Path, shard: ShardInfo):
    if shard.format == "webdataset":
        with open(root / shard.path, "rb") as f:
            yield from iter_tar_samples(f)
    else:
        yield from iter_parquet_samples(str(root / shard.path))


def first_samples(root: Path, manifest: Manifest, slug: str, n: int) -> list[dict[str, bytes]]:
    """The first `n` samples of a source, in shard order (train first)."""
    order = {"train": 0, "val": 1, "test": 2}
    fmt = "webdataset" if any(s.format == "webdataset" for s in manifest.shards) else "parquet"
    shards = sorted((s for s in manifest.shards if s.source == slug and s.format == fmt),
                    key=lambda s: (order[s.split], s.path))
    out: list[dict[str, bytes]] = []
    for shard in shards:
        for sample in _shard_samples(root, shard):
            out.append(sample)
            if len(out) == n:
                return out
    return out


def _image_of(sample: dict[str, bytes]) -> np.ndarray | None:
    """A 2-D or RGB array for display, or None when the sample has no image."""
    import json

    meta = json.loads(sample["json"])
    image = _first_of_kind(meta, "image")
    if image:
        data = sample[image["member"]]
        if image["member"].endswith(".npy"):
            arr = npy_array(data).astype(np.float32)
        else:
            from PIL import Image

            arr = np.asarray(Image.open(io.BytesIO(data))).astype(np.float32)
        if image.get("photometric") == "MONOCHROME1":
            arr = arr.max() - arr
        return arr
    volume = _first_of_kind(meta, "volume")
    if volume:
        vol = npy_array(sample[volume["member"]]).astype(np.float32)
        return vol[:, :, vol.shape[2] // 2].T[::-1]  # axial slice of an RAS volume
    return None


def _first_of_kind(meta: dict, kind: str) -> dict | None:
    """The descriptor of the sample's first payload role of `kind` (roles in sorted order)."""
    return next((d for _, d in sorted(meta.get("payloads", {}).items())
                 if d.get("kind") == kind), None)


def plot_thumbnails(slug: str, modality: str, samples: list[dict[str, bytes]], path: Path) -> bool:
    plt = _pyplot()
    images = [(s["__key__"].decode(), im) for s in samples if (im := _image_of(s)) is not None]
    if not images:
        return False
    fig, axes = plt.subplots(1, len(images), figsize=(2 * len(images), 2.3), squeeze=False)
    volume = modality in VOLUME_MODALITIES
    for ax, (key, im) in zip(axes[0], images, strict=True):
        # CT in a soft-tissue window (HU); other images between their 1st/99th percentiles
        lo, hi = (-160.0, 240.0) if volume else (float(np.percentile(im, 1)),
                                                  float(np.percentile(im, 99)))
        ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=lo, vmax=max(hi, lo + 1))
        ax.set_title(key, fontsize=6)
        ax.axis("off")
    fig.suptitle(f"{slug}: first samples")
    fig.tight_layout()
    _save(fig, path)
    return True


def plot_trace(slug: str, sample: dict[str, bytes], path: Path, seconds: float = 10.0) -> None:
    import json

    plt = _pyplot()
    meta = json.loads(sample["json"])
    sig = _first_of_kind(meta, "signal")
    if sig is None:
        raise ValueError(f"sample {meta['key']} has no signal to plot")
    arr = npy_array(sample[sig["member"]])
    scale = np.asarray(sig["scale"], dtype=np.float64)[:, None]
    phys = arr.astype(np.float64) * scale
    n = min(arr.shape[1], int(seconds * sig["sampling_rate_hz"]))
    t = np.arange(n) / sig["sampling_rate_hz"]
    channels = sig["channels"]
    fig, axes = plt.subplots(len(channels), 1, figsize=(7, 0.45 * len(channels) + 0.8),
                             sharex=True, squeeze=False)
    for ax, ch, row in zip(axes[:, 0], channels, phys, strict=True):
        ax.plot(t, row[:n], linewidth=0.6)
        ax.set_ylabel(ch, rotation=0, ha="right", fontsize=6)
        ax.tick_params(labelsize=5)
    axes[-1, 0].set_xlabel(f"time (s); amplitude in {sig['units']}")
    fig.suptitle(f"{slug}: {meta['key']}")
    fig.tight_layout()
    _save(fig, path)
