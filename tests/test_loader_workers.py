"""Every payload kind crosses DataLoader worker processes: tar and Parquet, local and HTTP.

A sample a worker yields is pickled into the main process, so it may hold bytes and
tensors but never a memoryview of a mapped shard (issue 18, item 1); a worker that fails
on a sample must raise in the main process naming the shard and the sample.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from medshard.loaders import SampleError, ShardDataset
from medshard.pipeline.build import BuildConfig, run_build
from medshard.pipeline.encoders import ENCODERS
from medshard.schemas import RawRecord, Sample, SourceInfo
from medshard.schemas.models import License
from medshard.schemas.sample import Payload
from medshard.sources import registry
from medshard.sources.base import Source
from medshard.sources.ultrasound.echonet_fixture import SIZE, write_avi
from tests.test_payloads import kind_payloads

SLUG = "test-every-kind"


def _extra_payloads(record_id: str, root: Path) -> dict[str, Payload]:
    if record_id == "video":
        frames = [np.full((SIZE, SIZE), 40 * i, np.uint8) for i in range(4)]
        return {"clip": Payload("video", (root / "clip.avi").read_bytes(), {
            "fps": 25.0, "n_frames": len(frames), "height": SIZE, "width": SIZE,
            "encoding": "avi"})}
    grid = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    return {"volume": Payload("volume", grid, {"spacing_mm": [1.0, 1.0, 2.0],
                                               "affine": np.eye(4).tolist(),
                                               "orientation": "RAS"}),
            "segmentation": Payload("array", (grid % 3).astype(np.uint8),
                                    {"annotates": "volume"})}


class EveryKind(Source):
    info = SourceInfo(
        name=SLUG, title="every payload kind", version="1", modality="ehr", tasks=["none"],
        license=License(name="CC0", spdx="CC0-1.0", url="https://example.org/l",
                        terms_version="1"),
        access="open", homepage="https://example.org", citation="none", label_space=[],
        split_policy="all train")
    vocabulary_map: dict[str, list[str]] = {}
    payload_members = ("answer.txt", "connectivity.npz", "cxr.png", "ecg.npy", "events.jsonl",
                       "expression.npy", "image.png", "instances.png", "question.txt",
                       "report.txt", "tissue.png", "clip.avi", "volume.npy",
                       "segmentation.npy")
    RECORDS = ("graph", "vector", "events", "text", "mask", "ecg_xray", "video", "volume")

    def list_records(self, root: Path):
        for rid in self.RECORDS:
            yield RawRecord(record_id=rid, subject_id=f"s-{rid}", split="train",
                            files=["clip.avi"])

    def load(self, record: RawRecord, root: Path):
        rid = record.record_id
        payloads = (_extra_payloads(rid, root) if rid in ("video", "volume")
                    else kind_payloads(rid))
        yield Sample(classes=[], source_labels={}, payloads=payloads)


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw") / SLUG
    write_avi(raw / "clip.avi", iter([np.full((SIZE, SIZE), 40 * i, np.uint8) for i in range(4)]))
    out = tmp_path_factory.mktemp("out")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "BUILTIN_SOURCES",
                   {**registry.BUILTIN_SOURCES, SLUG: f"{__name__}:EveryKind"})
        registry._registry.cache_clear()
        run_build(BuildConfig(sources=[SLUG], data_root=raw.parent, out=out,
                              formats=("webdataset", "parquet"), progress=False))
    registry._registry.cache_clear()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(out))
    handler.log_message = lambda *a: None  # type: ignore[assignment]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _plain(value: Any) -> Any:
    """A decoded value as comparable plain data; memoryviews are a failure here."""
    assert not isinstance(value, memoryview), "a memoryview reached the main process"
    if isinstance(value, torch.Tensor):
        return (str(value.dtype), value.numpy().tobytes(), tuple(value.shape))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _by_key(samples) -> dict[str, Any]:
    return {s["key"]: _plain({k: v for k, v in s.items() if k != "meta"}) for s in samples}


@pytest.mark.parametrize("where", ["local", "http"])
@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_every_payload_kind_crosses_two_workers(every_kind, fmt, where):
    out, url = every_kind
    source = str(out) if where == "local" else url
    want = _by_key(ShardDataset(source, split=None, format=fmt, shuffle=False))
    kinds = {d["kind"] for s in ShardDataset(source, split=None, format=fmt, shuffle=False)
             for d in s["meta"]["payloads"].values()}
    assert kinds == set(ENCODERS), "the test build must hold every payload kind"
    ds = ShardDataset(source, split=None, format=fmt, shuffle=False)
    loader = DataLoader(ds, batch_size=None, num_workers=2, timeout=60)
    got = _by_key(loader)
    assert len(got) == len(EveryKind.RECORDS) == len(want)
    assert got == want
    video = next(s for s in loader if "clip" in s)["clip"]
    assert isinstance(video, bytes) and video[:4] == b"RIFF"


def test_raw_samples_cross_workers_too(every_kind):
    out, _ = every_kind
    ds = ShardDataset(str(out), split=None, format="webdataset", shuffle=False, decode=False)
    raws = list(DataLoader(ds, batch_size=None, num_workers=2, timeout=60))
    assert len(raws) == len(EveryKind.RECORDS)
    assert all("__shard__" not in r for r in raws)
    assert all(isinstance(v, (bytes, bytearray, str)) for r in raws for v in r.values())


def test_a_worker_error_names_the_shard_and_the_sample(every_kind):
    out, _ = every_kind

    def explode(sample):
        if "clip" in sample:
            raise ValueError("cannot use this clip")
        return sample

    ds = ShardDataset(str(out), split=None, format="webdataset", shuffle=False,
                      transform=explode)
    with pytest.raises(SampleError, match=rf"shard \S*{SLUG}/train/\S+\.tar, sample "
                                          rf"{SLUG}_video: ValueError: cannot use this clip"):
        list(DataLoader(ds, batch_size=None, num_workers=2, timeout=60))
