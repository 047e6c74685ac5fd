"""medshard's loader against the loaders users would otherwise pick, on the same samples.

    /work/venv/bin/python benchmarks/loader.py [--ecg 1500] [--images 240] [--workdir DIR]

Two datasets, written once into every format:
  - ecg: 12 x 2500 float32 windows (PTB-XL-like, 120 kB each), from pyedflib's shipped
    EDF recording; raw copies as WFDB records (what CLIMB reads with wfdb.rdsamp);
  - images: grayscale JPEGs at native size (~1000 x 1200, MIMIC-CXR-JPG-like), cut from
    matplotlib's sample photograph with noise; raw copies as .jpg files.
Readers, each iterating once over every sample in one process (no shuffling):
  medshard tar, medshard parquet, medshard tar shuffled (buffer 256), medshard tar with
  its sha256 check on every read (`verify=True`; the default checks only shards fetched
  over the network, and peers check nothing, so the other rows read unchecked),
  medshard tar with `verify="once"` (each local shard hashed the first time a process
  opens it: the row is a process's first epoch; later epochs cost what the default does),
  medshard tar decoding on 2 threads (`decode_threads=2`; every other row decodes on one),
  medshard tar through `ShardLoader` with 2 DataLoader worker processes (batches of 32,
  collated in the workers, so this row includes process start-up and IPC),
  the `webdataset`
  library on the same tars, Hugging Face `datasets` streaming the same Parquet,
  MosaicML `streaming` (MDS, converted from the same samples), `litdata` (after its
  `optimize`), raw files one by one (CLIMB's way; the first 300 samples), and the
  ceiling: reading the tar shard bytes with no decoding. Every reader makes `--rounds`
  passes, interleaved with the others; the best pass counts.
Every reader ends in the same tensors: payload decoded by the same functions
(`npy_tensor` / `image_tensor`) and a multi-hot label vector from the sample JSON,
so the numbers compare the loaders, not decoders; one value per 4 kB page of every
payload is read, so lazily mapped memory counts as loaded. MB/s is the tar shard bytes of the
dataset over the time (the same numerator for every reader). A peer that cannot be
installed or run prints why; the rest carry on.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from medshard.loaders.decode import image_tensor, npy_tensor
from medshard.schemas.models import Manifest, ShardInfo, SourceSummary, SplitCounts
from medshard.schemas.vocabulary import load_vocabulary
from medshard.sharding.members import column_name, json_bytes, npy_bytes
from medshard.sharding.parquet import ParquetShardWriter
from medshard.sharding.wds import TarShardWriter

VOCAB = load_vocabulary()
SHARD_BYTES = 64 << 20


# -- data ------------------------------------------------------------------------------

def ecg_windows(n: int) -> Iterable[np.ndarray]:
    import pyedflib.data

    f = pyedflib.data.test_generator()
    try:
        rec = np.stack([f.readSignal(i) for i in range(f.signals_in_file)]).astype(np.float32)
    finally:
        f.close()
    rec = np.concatenate([rec, rec[:1]])  # 12 leads
    rng = np.random.default_rng(0)
    for i in range(n):
        start = (i * 977) % (rec.shape[1] - 2500)
        w = rec[:, start : start + 2500] + rng.normal(0, 1, (12, 2500)).astype(np.float32)
        yield (w / np.abs(w).max(axis=1, keepdims=True)).astype(np.float32)


def jpeg_images(n: int) -> Iterable[bytes]:
    import matplotlib.cbook as cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        photo = Image.open(fh).convert("L")
    rng = np.random.default_rng(1)
    for i in range(n):
        h, w = 960 + (i % 7) * 32, 1100 + (i % 5) * 40
        img = np.asarray(photo.resize((w, h)), dtype=np.float32)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        yield buf.getvalue()


def sample_meta(src: str, i: int, member: str, descriptor: dict) -> dict:
    labels = {
        "ptb-xl": ["ecg.normal", "ecg.st-t-change", "ecg.myocardial-infarction"],
        "chexpert": ["cxr.no-finding", "cxr.edema", "cxr.cardiomegaly"],
    }[src]
    meta = {
        "key": f"{src.replace('-', '')}_{i:06d}", "source": src,
        "modality": "ecg" if src == "ptb-xl" else "chest-xray", "split": "train",
        "subject": hashlib.sha256(str(i).encode()).hexdigest()[:16], "task": "classification",
        "labels": [labels[i % 3]], "source_labels": {}, "meta": {"age": 50},
        "provenance": {"files": {}, "source_version": "bench", "transform_config_hash": "0",
                       "medshard_version": "0.1.0"},
        "members": [member],
    }
    role = member.split(".")[0]
    meta["payloads"] = {role: {"kind": role, "member": member, **descriptor}}
    return meta


RAW_FILES = 300  # raw-file reading is slow to write and to read: a subset gives its rate


def write_dataset(work: Path, name: str, n: int) -> dict:
    """Shards (tar + parquet), manifest, raw files (the first RAW_FILES samples)."""
    root = work / name
    raw = root / "raw"
    raw.mkdir(parents=True)
    src = "ptb-xl" if name == "ecg" else "chexpert"
    samples: list[tuple[dict, bytes]] = []
    raw_files: list[Path] = []
    if name == "ecg":
        import wfdb

        for i, w in enumerate(ecg_windows(n)):
            desc = {"sampling_rate_hz": 250.0, "channels": [f"L{c}" for c in range(12)],
                    "units": "mV", "n_samples": 2500, "original_sampling_rate_hz": 200.0,
                    "scale": [1.0] * 12, "normalization": "max-abs"}
            samples.append((sample_meta(src, i, "signal.npy", desc), npy_bytes(w)))
            if i >= RAW_FILES:
                continue
            rec = f"r{i:06d}"
            wfdb.wrsamp(rec, fs=250, units=["mV"] * 12, sig_name=[f"L{c}" for c in range(12)],
                        p_signal=w.T.astype(np.float64), fmt=["16"] * 12, write_dir=str(raw))
            raw_files.append(raw / rec)
    else:
        for i, data in enumerate(jpeg_images(n)):
            desc = {"height": 0, "width": 0, "bit_depth": 8, "photometric": "MONOCHROME2",
                    "encoding": "jpeg", "member": "image.jpg"}
            samples.append((sample_meta(src, i, "image.jpg", desc), data))
            if i >= RAW_FILES:
                continue
            p = raw / f"{i:06d}.jpg"
            p.write_bytes(data)
            raw_files.append(p)
    shards: list[ShardInfo] = []
    member = samples[0][0]["members"][0]
    groups: list[list[tuple[dict, bytes]]] = [[]]
    size = 0
    for s in samples:
        if size > SHARD_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(s)
        size += len(s[1])
    for g, group in enumerate(groups):
        for fmt, ext in (("webdataset", "tar"), ("parquet", "parquet")):
            path = f"{src}/train/{src}-train-{g:06d}.{ext}"
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                if fmt == "webdataset":
                    tw = TarShardWriter(fh)
                    for meta, data in group:
                        tw.write(meta["key"], [("json", json_bytes(meta)), (member, data)])
                    tw.close()
                else:
                    pw = ParquetShardWriter(fh, row_group_bytes=16 << 20,
                                           payload_columns=[column_name(member)])
                    for meta, data in group:
                        pw.write(meta, json_bytes(meta), {member: data})
                    pw.close()
            blob = target.read_bytes()
            shards.append(ShardInfo(path=path, format=fmt, source=src, split="train",
                                    samples=len(group), bytes=len(blob),
                                    sha256=hashlib.sha256(blob).hexdigest()))
    manifest = Manifest(
        medshard_version="0.1.0", config={}, config_hash="0", vocabulary_version=VOCAB.version,
        pseudonym_key_id="bench",
        sources={src: SourceSummary(version="bench", license="test", access="open",
                                    modality="ecg" if name == "ecg" else "chest-xray",
                                    counts={"train": SplitCounts(written=n, samples=n)})},
        shards=shards,
    )
    (root / "manifest.json").write_text(manifest.model_dump_json())
    tars = [root / s.path for s in shards if s.format == "webdataset"]
    return {
        "root": root, "n": n, "member": member, "samples": samples, "raw": raw_files,
        "tars": tars, "parquets": [root / s.path for s in shards if s.format == "parquet"],
        "tar_bytes": sum(p.stat().st_size for p in tars),
        "in_memory": [(json_bytes(meta), data) for meta, data in samples],
    }


# -- the common end of every reader ------------------------------------------------------

def finish(meta_json: bytes | str, payload: bytes, member: str) -> tuple:
    """Payload tensor + multi-hot labels: what every reader must produce per sample."""
    meta = json.loads(meta_json)
    labels = VOCAB.multi_hot(meta["labels"])
    tensor = npy_tensor(payload) if member.endswith("npy") else image_tensor(payload)
    return tensor, labels


def touch(sample: object) -> None:
    """Read one value per 4 kB page of the payload: a lazily mapped tensor must really be
    paged in, as a training step would, before a reader's time counts."""
    if isinstance(sample, dict):
        payload = sample.get("signal", sample.get("image"))
    elif isinstance(sample, tuple):
        payload = sample[0]
    else:
        return  # the ceiling's raw chunks are already in memory
    for tensor in payload if isinstance(payload, list) else [payload]:
        flat = tensor.reshape(-1)
        step = max(1, 4096 // flat.element_size())
        flat[::step].sum()


def size_of(item: object) -> int:
    """Samples in one item a reader yields (a batch dict counts its keys)."""
    if isinstance(item, dict) and isinstance(item.get("key"), list):
        return len(item["key"])
    return 1


# -- readers ---------------------------------------------------------------------------

def read_medshard_workers(ds: dict, workers: int) -> Iterable:
    """Batches of 32 from a ShardLoader with DataLoader worker processes."""
    from medshard.loaders import ShardDataset, ShardLoader

    dataset = ShardDataset(str(ds["root"]), split="train", shuffle=False)
    # fork, as on Linux by default: litdata switches this process to spawn when imported
    return ShardLoader(dataset, batch_size=32, num_workers=workers, multiprocessing_context="fork")


def read_medshard(ds: dict, fmt: str, shuffle: bool = False, verify: bool | str = "remote",
                  threads: int | None = 0, decoder: str = "pillow") -> Iterable:
    """`threads=None, decoder="auto"` are the loader's defaults; the other rows decode on
    one thread with Pillow, as the peers do."""
    from medshard.loaders import ShardDataset
    from medshard.loaders.remote import VERIFIED_ONCE

    VERIFIED_ONCE.clear()  # verify="once": every pass measures a process's first epoch
    return ShardDataset(str(ds["root"]), split="train", format=fmt, shuffle=shuffle, verify=verify,
                        decode_threads=threads, image_decoder=decoder)


def read_webdataset(ds: dict) -> Iterable:
    import webdataset as wds

    member = ds["member"]
    urls = [str(p) for p in ds["tars"]]
    pipeline = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    return (finish(s["json"], s[member], member) for s in pipeline)


def read_hf_datasets(ds: dict) -> Iterable:
    import datasets

    datasets.disable_progress_bars()
    member = ds["member"]
    col = member.replace(".", "_")
    hf = datasets.load_dataset("parquet", data_files=[str(p) for p in ds["parquets"]],
                               split="train", streaming=True)
    hf = hf.select_columns(["json", col])
    return (finish(r["json"], r[col], member) for r in hf)


def _stub_torchvision() -> None:
    """mosaicml-streaming imports torchvision (and, from 0.8, transformers) at import time;
    no CPU torchvision for this torch is on PyPI, and the benchmark uses none of either."""
    try:
        import torchvision  # noqa: F401
        return
    except Exception:
        pass
    import importlib.machinery

    tv = types.ModuleType("torchvision")
    tv_datasets = types.ModuleType("torchvision.datasets")
    tv_datasets.VisionDataset = object
    tv_datasets.CIFAR10 = object
    tv_t = types.ModuleType("torchvision.transforms")
    tv_tf = types.ModuleType("torchvision.transforms.functional")
    tv_tf.to_tensor = None
    tv.datasets, tv.transforms, tv_t.functional = tv_datasets, tv_t, tv_tf
    for mod in (tv, tv_datasets, tv_t, tv_tf):
        mod.__spec__ = importlib.machinery.ModuleSpec(mod.__name__, None)
    tv.__version__ = "0.0"
    sys.modules.update({"torchvision": tv, "torchvision.datasets": tv_datasets,
                        "torchvision.transforms": tv_t, "torchvision.transforms.functional": tv_tf})
    try:  # streaming >= 0.8 imports transformers' batch and tokenizer types at import time
        import transformers  # noqa: F401
    except Exception:
        sys.meta_path.insert(0, _StubFinder("transformers"))


class _StubFinder:
    """Imports `prefix` and its submodules as empty packages whose attributes are dummy
    classes (for a peer's import-time references to a library the benchmark never uses)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def find_spec(self, name: str, path: object = None, target: object = None):
        import importlib.machinery

        if name != self.prefix and not name.startswith(self.prefix + "."):
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        mod = types.ModuleType(spec.name)
        mod.__path__ = []
        mod.__getattr__ = lambda attr: type(attr, (dict,), {})  # type: ignore[method-assign]
        return mod

    def exec_module(self, module) -> None:
        pass


def prepare_mds(ds: dict, work: Path) -> Path:
    _stub_torchvision()
    from streaming import MDSWriter

    out = work / f"mds-{ds['root'].name}"
    with MDSWriter(out=str(out), columns={"json": "str", "payload": "bytes"},
                   size_limit=SHARD_BYTES) as w:
        for meta, data in ds["samples"]:
            w.write({"json": json_bytes(meta).decode(), "payload": data})
    return out


def read_mds(ds: dict, path: Path, tuned: bool = False) -> Iterable:
    """Local MDS, no remote. Default: `batch_size=1` (one sample per step; streaming then
    prefetches 8 samples ahead, `predownload = 8 * batch_size`, and its iterator sleeps
    whenever it catches up). Tuned, as its docs recommend: `batch_size` set to the
    training batch (32) and `predownload` covering the whole local dataset."""
    _stub_torchvision()
    from streaming import StreamingDataset
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()
    if tuned:
        sd = StreamingDataset(local=str(path), shuffle=False, batch_size=32,
                              predownload=max(4096, ds["n"]))
    else:
        sd = StreamingDataset(local=str(path), shuffle=False, batch_size=1)
    member = ds["member"]
    return (finish(s["json"], s["payload"], member) for s in sd)


def _litdata_item(item: tuple[str, bytes]) -> dict:
    return {"json": item[0], "payload": item[1]}


def prepare_litdata(ds: dict, work: Path) -> Path:
    import litdata

    out = work / f"litdata-{ds['root'].name}"
    items = [(json_bytes(meta).decode(), data) for meta, data in ds["samples"]]
    litdata.optimize(fn=_litdata_item, inputs=items, output_dir=str(out), chunk_bytes="64MB",
                     num_workers=1, mode="overwrite")
    return out


def read_litdata(ds: dict, path: Path) -> Iterable:
    import litdata

    sd = litdata.StreamingDataset(input_dir=str(path), shuffle=False)
    member = ds["member"]
    return (finish(s["json"], s["payload"], member) for s in sd)


def read_raw_files(ds: dict) -> Iterable:
    """CLIMB's way: one raw file per sample (wfdb.rdsamp for ECG, Pillow for JPEG)."""
    import torch

    if ds["member"] == "signal.npy":
        import wfdb

        for rec in ds["raw"]:
            sig, _ = wfdb.rdsamp(str(rec))
            yield torch.from_numpy(np.ascontiguousarray(sig.T, dtype=np.float32)), None
    else:
        from PIL import Image

        for p in ds["raw"]:
            with Image.open(p) as im:
                yield torch.from_numpy(np.asarray(im)).unsqueeze(0), None


def read_decode_ceiling(ds: dict, decoder: str = "pillow", threads: int = 0) -> Iterable:
    """Decoding only: every payload already in memory, decoded (and its labels parsed) by
    the same functions as every row, with nothing read, parsed or buffered. With one
    thread and Pillow no single-thread loader can beat it; with the loader's default
    decoder and threads, it is the ceiling for the default settings."""
    member = ds["member"]
    items = ds["in_memory"]

    def one(item: tuple[bytes, bytes]) -> tuple:
        meta_json, data = item
        labels = VOCAB.multi_hot(json.loads(meta_json)["labels"])
        if member.endswith("npy"):
            return npy_tensor(data), labels
        return image_tensor(data, decoder), labels

    if threads <= 1:
        return map(one, items)
    return _threaded(one, items, threads)


def _threaded(fn: Callable, items: list, threads: int) -> Iterable:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        yield from pool.map(fn, items)


def default_threads(ds: dict) -> int:
    """The decode threads the loader picks by default for this dataset in one process."""
    from medshard.loaders.decode import auto_decode_threads

    return auto_decode_threads({"__key__": "k", ds["member"]: b""}, 1)


def read_ceiling(ds: dict) -> Iterable:
    """Shard bytes read from disk, nothing decoded: no loader can beat this."""
    for p in ds["tars"]:
        with open(p, "rb") as f:
            while chunk := f.read(8 << 20):
                yield chunk


# -- running ---------------------------------------------------------------------------

def run(work: Path, n_ecg: int, n_img: int, rounds: int, only: str | None = None) -> None:
    print(f"# medshard loader benchmark: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"best of {rounds} interleaved rounds")
    for name, n in (("ecg", n_ecg), ("images", n_img)):
        if n <= 0:
            continue
        t0 = time.perf_counter()
        ds = write_dataset(work, name, n)
        print(f"\n## {name}: {n} samples, tar shards {ds['tar_bytes'] / 1e6:.1f} MB "
              f"(written in {time.perf_counter() - t0:.1f} s; raw files: first {len(ds['raw'])})")
        # (label, prepare -> make-iterable, samples one pass yields; None: not per sample)
        threads = default_threads(ds)
        from medshard.loaders.decode import image_decoder

        best_decoder = image_decoder("auto")
        readers: list[tuple[str, Callable[[], Callable[[], Iterable]], int | None]] = [
            ("medshard (tar, defaults)",
             lambda ds=ds: lambda: read_medshard(ds, "webdataset", threads=None, decoder="auto"), n),
            ("medshard (tar)", lambda ds=ds: lambda: read_medshard(ds, "webdataset"), n),
            ("medshard (parquet)", lambda ds=ds: lambda: read_medshard(ds, "parquet"), n),
            ("medshard (tar, shuffled)",
             lambda ds=ds: lambda: read_medshard(ds, "webdataset", shuffle=True), n),
            ("medshard (tar, sha256 verified)",
             lambda ds=ds: lambda: read_medshard(ds, "webdataset", verify=True), n),
            ("medshard (tar, verify once, first epoch)",
             lambda ds=ds: lambda: read_medshard(ds, "webdataset", verify="once"), n),
            ("medshard (tar, 2 decode threads)",
             lambda ds=ds: lambda: read_medshard(ds, "webdataset", threads=2), n),
            ("medshard (tar, ShardLoader 2 workers)",
             lambda ds=ds: lambda: read_medshard_workers(ds, 2), n),
            ("webdataset (same tar)", lambda ds=ds: lambda: read_webdataset(ds), n),
            ("HF datasets (same parquet, streaming)", lambda ds=ds: lambda: read_hf_datasets(ds), n),
            ("MosaicML streaming (MDS)",
             lambda ds=ds: (lambda p: lambda: read_mds(ds, p))(prepare_mds(ds, work)), n),
            ("MosaicML streaming (MDS, tuned)",
             lambda ds=ds: (lambda p: lambda: read_mds(ds, p, tuned=True))(
                 work / f"mds-{ds['root'].name}"), n),
            ("litdata (optimized)",
             lambda ds=ds: (lambda p: lambda: read_litdata(ds, p))(prepare_litdata(ds, work)), n),
            ("raw files one by one (CLIMB)", lambda ds=ds: lambda: read_raw_files(ds), len(ds["raw"])),
            ("ceiling: decode only (1 thread, Pillow)",
             lambda ds=ds: lambda: read_decode_ceiling(ds), n),
            ("ceiling: decode only (loader's defaults)",
             lambda ds=ds, d=best_decoder, t=threads: lambda: read_decode_ceiling(ds, d, t), n),
            ("ceiling: shard bytes, no decoding", lambda ds=ds: lambda: read_ceiling(ds), None),
        ]
        if only:
            import re

            readers = [r for r in readers if re.search(only, r[0])]
        makers: dict[str, Callable[[], Iterable]] = {}
        errors: dict[str, str] = {}
        for label, prepare, _ in readers:
            try:
                makers[label] = prepare()
            except Exception as e:  # a peer that cannot be installed or run is reported
                errors[label] = f"{type(e).__name__}: {e}".splitlines()[0][:150]
                if os.environ.get("BENCH_DEBUG"):
                    traceback.print_exc()
        best: dict[str, float] = {}
        for _ in range(rounds):  # interleaved, so load from other processes hits all alike
            for label, _, expect in readers:
                if label not in makers:
                    continue
                try:
                    t = time.perf_counter()
                    count = 0
                    for sample in makers[label]():
                        touch(sample)
                        count += size_of(sample)
                    seconds = time.perf_counter() - t
                    if expect is not None and count != expect:
                        raise RuntimeError(f"yielded {count} samples, expected {expect}")
                    best[label] = min(best.get(label, float("inf")), seconds)
                except Exception as e:
                    errors[label] = f"{type(e).__name__}: {e}".splitlines()[0][:150]
                    del makers[label]
                    best.pop(label, None)
        ref_rate = n / best["medshard (tar)"] if "medshard (tar)" in best else float("nan")
        print(f"{'reader':40s} {'samples/s':>10s} {'MB/s':>8s} {'vs medshard tar':>16s}")
        for label, _, expect in readers:
            if label not in best:
                print(f"{label:40s} {'-':>10s} {'-':>8s} {'-':>16s}  not run: {errors.get(label)}")
                continue
            per_pass = expect if expect is not None else n
            rate = per_pass / best[label]
            mbs = ds["tar_bytes"] * per_pass / n / 1e6 / best[label]
            print(f"{label:40s} {rate:10.0f} {mbs:8.0f} {rate / ref_rate:15.2f}x")
        ceiling = "ceiling: decode only (loader's defaults)"
        if "medshard (tar, defaults)" in best and ceiling in best and ds["member"] == "image.jpg":
            print(f"medshard defaults ({threads} decode threads, {best_decoder}) / decode-only "
                  f"ceiling with the same decoder and threads: "
                  f"{best[ceiling] / best['medshard (tar, defaults)']:.2f}")


def paired(work: Path, n_img: int, trials: int) -> None:
    """Loader pass / decode-only-ceiling pass, alternated `trials` times on the JPEGs: each
    trial's ratio is two passes moments apart, so load from other processes mostly cancels;
    prints the median ratio and its spread (min - max)."""
    ds = write_dataset(work, "images", n_img)
    threads = default_threads(ds)
    from medshard.loaders.decode import image_decoder

    dec = image_decoder("auto")
    pairs = [
        (f"defaults ({threads} threads, {dec}) / ceiling with the same",
         lambda: read_medshard(ds, "webdataset", threads=None, decoder="auto"),
         lambda: read_decode_ceiling(ds, dec, threads)),
        ("1 thread, Pillow / ceiling with the same",
         lambda: read_medshard(ds, "webdataset"), lambda: read_decode_ceiling(ds)),
        (f"defaults ({threads} threads, {dec}) / ceiling 1 thread, Pillow",
         lambda: read_medshard(ds, "webdataset", threads=None, decoder="auto"),
         lambda: read_decode_ceiling(ds)),
        ("webdataset / ceiling 1 thread, Pillow",
         lambda: read_webdataset(ds), lambda: read_decode_ceiling(ds)),
    ]

    def timed(make: Callable[[], Iterable]) -> float:
        t = time.perf_counter()
        for sample in make():
            touch(sample)
        return time.perf_counter() - t

    print(f"# paired JPEG passes: {n_img} images, {trials} trials, {os.cpu_count()} cores")
    for label, loader, ceiling in pairs:
        ratios = []
        for i in range(trials):
            if i % 2:  # alternate which goes first
                c, lo = timed(ceiling), timed(loader)
            else:
                lo, c = timed(loader), timed(ceiling)
            ratios.append(c / lo)  # throughput ratio: loader / ceiling
        ratios.sort()
        print(f"{label:60s} median {ratios[len(ratios) // 2]:.2f}  "
              f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ecg", type=int, default=1500, help="ECG samples")
    parser.add_argument("--images", type=int, default=200, help="JPEG images")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per reader")
    parser.add_argument("--workdir", help="where to write (default: a temporary directory)")
    parser.add_argument("--only", help="run only the readers whose label matches this regex")
    parser.add_argument("--paired", type=int, metavar="TRIALS",
                        help="instead: JPEG loader/ceiling ratios from alternated pass pairs")
    args = parser.parse_args()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="medshard-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.paired:
            paired(work, args.images, args.paired)
        else:
            run(work, args.ecg, args.images, args.rounds, args.only)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
