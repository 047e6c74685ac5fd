"""A real medshard build directory for the loader tests, written with the sharding writers.

Three sources with uneven shard counts (no world size divides them):
  - `ptb-xl` (ecg): 12 x 2500 float32 windows of a real EDF recording shipped with
    pyedflib (its test_generator file), 4 train shards of 7/7/7/5 samples, 1 val shard;
  - `chexpert` (chest-xray): PNG images of varying size cut from matplotlib's sample
    photograph (8-bit) and MRI slice (16-bit PNG); 3 train shards of
    5/5/3 samples, 1 val shard;
  - `toy-eeg` (eeg, not in the vocabulary): 4 x 500 signals, 1 train shard of 9.
Every shard is written as WebDataset tar and as Parquet with the same samples in the
same order; the manifest carries real byte counts and sha256; index.parquet has one
row per sample (key, source, split, labels, shard_webdataset, shard_parquet, meta_json),
as the pipeline writes it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from medshard.schemas.models import Manifest, ShardInfo, SourceSummary, SplitCounts
from medshard.sharding.layout import shard_path
from medshard.sharding.members import column_name, json_bytes, npy_bytes
from medshard.sharding.parquet import ParquetShardWriter
from medshard.sharding.wds import TarShardWriter

SHARD_PLAN: dict[str, dict[str, list[int]]] = {
    "ptb-xl": {"train": [7, 7, 7, 5], "val": [4]},
    "chexpert": {"train": [5, 5, 3], "val": [3]},
    "toy-eeg": {"train": [9]},
}
MODALITY = {"ptb-xl": "ecg", "chexpert": "chest-xray", "toy-eeg": "eeg"}
ECG_LABELS = ["ecg.normal", "ecg.myocardial-infarction", "ecg.st-t-change"]
CXR_LABELS = ["cxr.no-finding", "cxr.cardiomegaly", "cxr.edema"]


@dataclass
class Build:
    root: Path
    keys: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # source -> split -> keys
    labels: dict[str, list[str]] = field(default_factory=dict)  # key -> concept ids

    def split_keys(self, split: str, sources: list[str] | None = None) -> list[str]:
        return [
            k
            for src, splits in self.keys.items()
            if sources is None or src in sources
            for k in splits.get(split, [])
        ]


def _edf_signals() -> np.ndarray:
    import pyedflib.data

    f = pyedflib.data.test_generator()
    try:
        chans = [f.readSignal(i)[:20000] for i in range(f.signals_in_file)]
    finally:
        f.close()
    arr = np.stack(chans + chans[:1]).astype(np.float32)  # 12 leads
    return arr


def _images() -> tuple[np.ndarray, np.ndarray]:
    import matplotlib.cbook as cbook

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        photo = np.asarray(Image.open(fh).convert("L"))
    with cbook.get_sample_data("s1045.ima.gz") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    mri = np.frombuffer(raw, dtype="<u2").reshape(256, 256).astype(np.uint16)
    return photo, mri


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _provenance() -> dict:
    return {
        "files": {"raw/file": "0" * 64},
        "source_version": "test",
        "transform_config_hash": "0" * 16,
        "medshard_version": "0.1.0",
    }


def _sample(src: str, split: str, i: int, ecg: np.ndarray, photo: np.ndarray, mri: np.ndarray):
    """(meta dict, payload members in order) for sample i of a source."""
    key = f"{src.replace('-', '')}_{split}_{i:04d}"
    base = {
        "key": key,
        "source": src,
        "modality": MODALITY[src],
        "split": split,
        "subject": hashlib.sha256(f"{src}{i // 2}".encode()).hexdigest()[:16],
        "task": "classification",
        "source_labels": {"index": i},
        "meta": {"age": 40 + i % 30},
        "provenance": _provenance(),
    }
    if src == "ptb-xl":
        start = (i * 173) % (ecg.shape[1] - 2500)
        sig = ecg[:, start : start + 2500]
        scale = np.maximum(np.abs(sig).max(axis=1), 1e-6).astype(np.float32)
        sig = (sig / scale[:, None]).astype(np.float32)
        base["labels"] = [ECG_LABELS[i % 3]] if i % 5 else []
        base["payloads"] = {"signal": {
            "kind": "signal", "member": "signal.npy", "sampling_rate_hz": 250.0, "channels": [f"L{c}" for c in range(12)], "units": "uV",
            "n_samples": 2500, "original_sampling_rate_hz": 200.0, "scale": scale.tolist(),
            "normalization": "max-abs",
        }}
        members = [("signal.npy", npy_bytes(sig))]
    elif src == "toy-eeg":
        sig = ecg[:4, i * 50 : i * 50 + 500].copy()
        base["labels"] = []
        base["payloads"] = {"signal": {
            "kind": "signal", "member": "signal.npy", "sampling_rate_hz": 100.0, "channels": ["a", "b", "c", "d"], "units": "uV",
            "n_samples": 500, "original_sampling_rate_hz": 200.0, "scale": [1.0] * 4,
            "normalization": "none",
        }}
        members = [("signal.npy", npy_bytes(sig.astype(np.float32)))]
    else:
        h, w = 40 + 7 * i, 60 + 5 * (i % 4)
        base["labels"] = [CXR_LABELS[i % 3]]
        if i % 4 == 3:
            img = mri[i : i + h, i : i + w]
            enc, depth, data = "png", 16, _png(img)
        else:
            img = photo[i : i + h, i : i + w]
            enc, depth, data = "png", 8, _png(img)
        member = "image.jpg" if enc == "jpeg" else "image.png"
        base["payloads"] = {"image": {
            "kind": "image", "height": int(img.shape[0]), "width": int(img.shape[1]), "bit_depth": depth,
            "photometric": "MONOCHROME2", "encoding": enc, "member": member,
        }}
        members = [(member, data)]
    base["members"] = [m for m, _ in members]
    return base, members


def make_build(root: Path, formats: tuple[str, ...] = ("webdataset", "parquet")) -> Build:
    """Write the build described in the module docstring under `root`."""
    ecg = _edf_signals()
    photo, mri = _images()
    build = Build(root)
    shards: list[ShardInfo] = []
    index_rows: list[dict] = []
    summaries: dict[str, SourceSummary] = {}
    for src, splits in SHARD_PLAN.items():
        counts: dict[str, SplitCounts] = {}
        for split, sizes in splits.items():
            n_total = sum(sizes)
            counts[split] = SplitCounts(listed=n_total, written=n_total, samples=n_total)
            i = 0
            for s, size in enumerate(sizes):
                stem = f"{src}/{split}/{src}-{split}-{s:06d}"
                samples = [_sample(src, split, i + j, ecg, photo, mri) for j in range(size)]
                i += size
                for meta, _ in samples:
                    build.keys.setdefault(src, {}).setdefault(split, []).append(meta["key"])
                    build.labels[meta["key"]] = meta["labels"]
                    index_rows.append({
                        "key": meta["key"], "source": src, "split": split,
                        "labels": meta["labels"], "shard_webdataset": f"webdataset/{stem}.tar",
                        "shard_parquet": f"parquet/{stem}.parquet", "meta_json": json.dumps(meta["meta"]),
                    })
                for fmt in formats:
                    path = shard_path(fmt, stem)
                    target = root / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "wb") as fh:
                        if fmt == "webdataset":
                            writer = TarShardWriter(fh)
                            for meta, members in samples:
                                writer.write(meta["key"], [("json", json_bytes(meta)), *members])
                        else:
                            cols = sorted({column_name(m) for _, ms in samples for m, _ in ms})
                            writer = ParquetShardWriter(fh, row_group_bytes=4096,
                                                        payload_columns=cols)
                            for meta, members in samples:
                                writer.write(meta, json_bytes(meta), dict(members))
                        writer.close()
                    data = target.read_bytes()
                    shards.append(ShardInfo(
                        path=path, format=fmt, source=src, split=split, samples=size,
                        bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                    ))
        summaries[src] = SourceSummary(
            version="test", license="CC-BY-4.0", access="open", modality=MODALITY[src],
            counts=counts,
        )
    manifest = Manifest(
        medshard_version="0.1.0", config={}, config_hash="0" * 16, vocabulary_version="0.1.0",
        pseudonym_key_id="test", sources=summaries, shards=shards,
    )
    (root / "manifest.json").write_text(manifest.model_dump_json(indent=1))
    pq.write_table(pa.Table.from_pylist(index_rows), root / "index.parquet")
    return build
