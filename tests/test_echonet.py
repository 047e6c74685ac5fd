"""EchoNet-Dynamic: AVIs of real ultrasound frames, checked frame for frame with OpenCV.

OpenCV (FFmpeg underneath) is the independent reference: it decodes the raw file and
the shard's `video.avi`, and its frame rate and frame count must match what the
source read from the AVI header without decoding.
"""

from __future__ import annotations

import csv
import json
import shutil
import struct
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from medshard.formats.avi import parse_avi
from medshard.schemas import Filtered, RecordError
from medshard.sources.registry import get_source
from medshard.sources.ultrasound import echonet_fixture as demo
from medshard.sources.ultrasound.echonet import EchoNetDynamic, read_tracings
from tests.helpers import opencv_frames

NAMES = [v[0] for v in demo.VIDEOS]


@pytest.fixture(scope="module")
def echo_root(tmp_path_factory) -> Path:
    """The folder holding EchoNet-Dynamic/, as the zip unpacks."""
    root = tmp_path_factory.mktemp("echonet")
    demo.write_raw(root)
    return root


def _records(root: Path) -> dict:
    return {r.record_id: r for r in EchoNetDynamic().list_records(root)}


def _rewrite_filelist(release: Path, edit) -> None:
    path = release / "FileList.csv"
    rows = list(csv.DictReader(path.open(newline="")))
    for row in rows:
        edit(row)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


# ---------------------------------------------------------------- AVI header


@pytest.mark.parametrize("name", NAMES)
def test_avi_header_matches_the_decoder(echo_root, name):
    path = echo_root / "EchoNet-Dynamic" / "Videos" / f"{name}.avi"
    info = parse_avi(path.read_bytes())
    frames, fps, count = opencv_frames(path)
    assert info.fps == fps == 50.0
    assert info.n_frames == count == len(frames)
    assert info.indexed_frames == len(frames)
    assert (info.height, info.width) == frames[0].shape[:2] == (112, 112)
    assert info.codec == "MJPG" and info.channels == 3 == frames[0].shape[2]


def test_fps_comes_from_rate_over_scale(tmp_path):
    frames = (np.full((112, 112), 40 * i, np.uint8) for i in range(5))
    demo.write_avi(tmp_path / "ntsc.avi", frames, fps=30000 / 1001)
    data = (tmp_path / "ntsc.avi").read_bytes()
    info = parse_avi(data)
    _, fps, count = opencv_frames(tmp_path / "ntsc.avi")
    assert info.fps == fps and info.n_frames == count == 5
    # avih's whole microseconds per frame would give a rounded rate; strh's rate/scale does not
    (us_per_frame,) = struct.unpack_from("<I", data, data.index(b"avih") + 8)
    assert 1e6 / us_per_frame != fps


def _bad_avis(good: bytes) -> dict[str, bytes]:
    movi = good.index(b"movi")
    no_video = good.replace(b"vids", b"auds", 1)
    liar = bytearray(good)  # header claims one frame more than the index holds
    strh = liar.index(b"strh") + 8
    (length,) = struct.unpack_from("<I", liar, strh + 32)
    struct.pack_into("<I", liar, strh + 32, length + 1)
    return {
        "empty": b"",
        "not-riff": b"\x00\x00\x00\x18ftypmp42" + good[12:],
        "wave": b"RIFF" + good[4:8] + b"WAVE" + good[12:],
        "cut-in-header": good[:200],
        "cut-in-frames": good[: movi + 3000],
        "cut-last-byte": good[:-1],
        "no-video-stream": no_video,
        "index-disagrees": bytes(liar),
    }


@pytest.mark.parametrize(
    "case", ["empty", "not-riff", "wave", "cut-in-header", "cut-in-frames", "cut-last-byte",
             "no-video-stream", "index-disagrees"]
)
def test_malformed_avi_raises_record_error(echo_root, case):
    good = (echo_root / "EchoNet-Dynamic" / "Videos" / f"{NAMES[0]}.avi").read_bytes()
    with pytest.raises(RecordError):
        parse_avi(_bad_avis(good)[case])


# ---------------------------------------------------------------- source


def test_records_splits_targets_and_tracings(echo_root):
    assert isinstance(get_source("echonet-dynamic"), EchoNetDynamic)
    recs = _records(echo_root)
    assert list(recs) == NAMES
    assert [r.split for r in recs.values()] == ["train", "val", "test"]
    first = recs[NAMES[0]]
    assert first.files == [f"EchoNet-Dynamic/Videos/{NAMES[0]}.avi"]
    assert first.source_labels == {"EF": 78.5, "ESV": 14.9, "EDV": 69.2}
    # the release folder itself is accepted as the root too
    inner = _records(echo_root / "EchoNet-Dynamic")
    assert inner[NAMES[0]].files == [f"Videos/{NAMES[0]}.avi"]

    [sample] = list(EchoNetDynamic().load(first, echo_root))
    assert sample.key_suffix is None and first.split == "train"
    assert sample.task == "regression" and sample.classes == []
    meta = sample.meta
    assert (meta["ef_percent"], meta["esv_ml"], meta["edv_ml"]) == (78.5, 14.9, 69.2)
    assert [t["frame"] for t in meta["tracings"]] == [15, 30]
    assert (meta["es_frame"], meta["ed_frame"]) == (15, 30)
    tracings = list(csv.DictReader((echo_root / "EchoNet-Dynamic/VolumeTracings.csv").open()))
    mine = [r for r in tracings if r["FileName"] == f"{NAMES[0]}.avi"]
    flat = [line for t in meta["tracings"] for line in t["lines"]]
    assert flat == [[float(r[k]) for k in ("X1", "Y1", "X2", "Y2")] for r in mine]
    assert meta["filelist"] is None  # FileList agrees with the header
    video = sample.payloads["video"]
    assert video.kind == "video"
    assert video.data == (echo_root / first.files[0]).read_bytes()  # the original bytes
    assert video.descriptor == {
        "fps": 50.0, "n_frames": 60, "height": 112, "width": 112, "channels": 3,
        "encoding": "avi",
    }


def test_valid_split_value_and_unknown_values(echo_root, tmp_path):
    root = tmp_path / "e"
    shutil.copytree(echo_root, root)
    splits = iter(["VALID", "validation", "HOLDOUT"])
    _rewrite_filelist(root / "EchoNet-Dynamic", lambda row: row.update(Split=next(splits)))
    recs = list(_records(root).values())
    assert [r.split for r in recs] == ["val", "val", None]
    assert recs[2].meta["filelist_split"] == "HOLDOUT"


def test_filelist_disagreeing_with_header_keeps_header_and_records_filelist(echo_root, tmp_path):
    root = tmp_path / "e"
    shutil.copytree(echo_root, root)
    _rewrite_filelist(root / "EchoNet-Dynamic", lambda row: row.update(FPS="30", NumberOfFrames="999"))
    [sample] = list(EchoNetDynamic().load(_records(root)[NAMES[0]], root))
    assert sample.payloads["video"].descriptor["fps"] == 50.0
    assert sample.payloads["video"].descriptor["n_frames"] == 60
    assert sample.meta["filelist"] == {"fps": 30.0, "n_frames": 999, "height": 112, "width": 112}


def test_tracing_past_the_last_frame_and_missing_ef(echo_root, tmp_path):
    root = tmp_path / "e"
    shutil.copytree(echo_root, root)
    rec = _records(root)[NAMES[1]]
    rec.meta["tracings"][1]["frame"] = 48  # the video has frames 0..47
    with pytest.raises(RecordError, match="frame 48"):
        list(EchoNetDynamic().load(rec, root))
    _rewrite_filelist(root / "EchoNet-Dynamic", lambda row: row.update(EF=""))
    with pytest.raises(Filtered, match="ejection fraction"):
        list(EchoNetDynamic().load(_records(root)[NAMES[0]], root))


def test_read_tracings_groups_lines_by_frame_in_file_order(tmp_path):
    path = tmp_path / "VolumeTracings.csv"
    path.write_text(
        "FileName,X1,Y1,X2,Y2,Frame\n"
        "A.avi,1,2,3,4,46\nA.avi,5,6,7,8,46\nA.avi,1,1,1,1,61\nB.avi,0,0,9,9,3\nA.avi,2,2,2,2,46\n"
    )
    assert read_tracings(path) == {
        "A": [{"frame": 46, "lines": [[1, 2, 3, 4], [5, 6, 7, 8], [2, 2, 2, 2]]},
              {"frame": 61, "lines": [[1, 1, 1, 1]]}],
        "B": [{"frame": 3, "lines": [[0, 0, 9, 9]]}],
    }


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def echo_build(kit):
    """The conformance kit's build (both formats) of the fixture: the miniature plus a
    truncated video (TRAIN) and a listed video that was never shipped (TEST)."""
    if "echonet-dynamic" not in kit.fixtures:
        pytest.skip("--sources leaves out echonet-dynamic")
    return kit.manifest, kit.out, kit.data_root / "echonet-dynamic"


def test_build_quarantines_malformed_and_missing_videos(echo_build):
    manifest, out, _ = echo_build
    counts = manifest["sources"]["echonet-dynamic"]["counts"]
    assert {s: (c["listed"], c["written"], c["quarantined"]) for s, c in counts.items()} == {
        "train": (2, 1, 1), "val": (1, 1, 0), "test": (2, 1, 1)
    }
    lines = {
        q["record_id"]: q
        for q in map(json.loads, (out / "quarantine.jsonl").read_text().splitlines())
        if q["source"] == "echonet-dynamic"
    }
    truncated, missing = lines[demo.TRUNCATED_VIDEO], lines[demo.MISSING_VIDEO]
    assert truncated["stage"] == missing["stage"] == "load"
    assert "truncated" in truncated["message"]
    assert "missing" in missing["message"]
    assert missing["files"] == [f"EchoNet-Dynamic/Videos/{demo.MISSING_VIDEO}.avi"]


def test_shard_video_decodes_frame_for_frame_like_the_raw_file(echo_build, tmp_path):
    _, out, root = echo_build
    seen = []
    for split in ("train", "val", "test"):
        [tar_path] = list((out / "webdataset" / "echonet-dynamic" / split).glob("*.tar"))
        with tarfile.open(tar_path) as tar:
            [json_name] = [n for n in tar.getnames() if n.endswith(".json")]
            key = json_name[: -len(".json")]
            meta = json.load(tar.extractfile(json_name))
            data = tar.extractfile(f"{key}.video.avi").read()
        name = key.removeprefix("echonet-dynamic_")
        raw_path = root / "EchoNet-Dynamic" / "Videos" / f"{name}.avi"
        assert data == raw_path.read_bytes()
        (tmp_path / "shard.avi").write_bytes(data)
        shard_frames, fps, count = opencv_frames(tmp_path / "shard.avi")
        raw_frames, _, _ = opencv_frames(raw_path)
        assert len(shard_frames) == len(raw_frames) == count == meta["payloads"]["video"]["n_frames"]
        for a, b in zip(shard_frames, raw_frames, strict=True):
            np.testing.assert_array_equal(a, b)
        assert fps == meta["payloads"]["video"]["fps"]
        assert meta["payloads"]["video"]["member"] == "video.avi" and meta["members"] == ["video.avi"]
        assert meta["task"] == "regression" and meta["labels"] == []
        assert meta["split"] == split and meta["modality"] == "ultrasound"
        assert meta["meta"]["ef_percent"] == meta["source_labels"]["EF"]
        assert len(meta["meta"]["tracings"]) == 2
        seen.append(name)
    assert seen == NAMES

    # parquet rows carry the same bytes
    for pq_path in out.glob("parquet/echonet-dynamic/*/*.parquet"):
        for row in pq.read_table(pq_path, columns=["key", "video_avi"]).to_pylist():
            name = row["key"].removeprefix("echonet-dynamic_")
            raw = (root / "EchoNet-Dynamic" / "Videos" / f"{name}.avi").read_bytes()
            assert row["video_avi"] == raw


def test_index_has_regression_targets_as_columns(echo_build):
    _, out, _ = echo_build
    index = pq.read_table(out / "index.parquet").to_pylist()
    row = next(r for r in index if r["key"] == f"echonet-dynamic_{NAMES[0]}")
    assert row["meta_ef_percent"] == 78.5 and row["meta_edv_ml"] == 69.2
