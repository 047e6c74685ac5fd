"""Issue 18, one test (or a few) per item: each fails on the code before the fix.

Items 1 (loader workers) and the per-source adversarial cases of 2-4 have their own
modules: tests/test_loader_workers.py and tests/adversarial/.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from medshard.cli import main
from medshard.errors import UserError
from medshard.formats.confine import OutsideRoot, resolve_in_root
from medshard.loaders import ShardDataset, ShardError
from medshard.pipeline.build import BuildConfig, run_build
from medshard.pipeline.shard_task import (
    MAX_KEY_CHARS,
    check_member_names,
    sample_key,
    temp_name,
)
from medshard.schemas import RecordError
from medshard.testing.kit import fixture_of
from tests.http_fixtures import FakeServer, Reply
from tests.loader_fixtures import make_build

PTB = "ptb-xl"
VICTIM = "records500/00000/00002_hr.dat"  # record 00002: a plain, written record


@pytest.fixture(scope="module")
def ptb_raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("ptb") / PTB
    fixture_of(PTB).write(root)
    return root


def _copy(ptb_raw: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "raw" / PTB
    shutil.copytree(ptb_raw, dst)
    return dst


def _build(root: Path, out: Path, **kw):
    return run_build(BuildConfig(sources=[PTB], data_root=root.parent, out=out, progress=False,
                                 **kw))


def _quarantine(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines() if x]


def _shard_hashes(out: Path) -> dict[str, str]:
    return {s["path"]: s["sha256"] for s in json.loads((out / "manifest.json").read_text())["shards"]}


# --- 2: nothing read outside the root -----------------------------------------------------


def test_resolve_in_root_refuses_every_way_out(tmp_path):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "a.txt").write_text("inside")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    os.symlink(secret, root / "d" / "out.txt")
    os.symlink(root / "d" / "a.txt", root / "d" / "in.txt")
    for bad in ("../secret.txt", "d/../../secret.txt", str(secret), "d/out.txt"):
        with pytest.raises(OutsideRoot, match="outside|leads"):
            resolve_in_root(root, bad)
    with pytest.raises(OutsideRoot, match="--follow-symlinks"):
        resolve_in_root(root, "d/in.txt")
    assert resolve_in_root(root, "d/in.txt", follow_symlinks_within_root=True) == \
        (root / "d" / "a.txt").resolve()
    with pytest.raises(OutsideRoot, match="outside"):
        resolve_in_root(root, "d/out.txt", follow_symlinks_within_root=True)
    linked_root = tmp_path / "linked-root"
    os.symlink(root, linked_root)  # the root itself may be a link
    assert resolve_in_root(linked_root, "d/a.txt") == (root / "d" / "a.txt").resolve()


def test_a_symlink_within_the_root_is_quarantined_unless_allowed(ptb_raw, tmp_path):
    root = _copy(ptb_raw, tmp_path)
    moved = root / "moved" / "00002_hr.dat"
    moved.parent.mkdir()
    shutil.move(root / VICTIM, moved)
    os.symlink(moved, root / VICTIM)
    _build(root, tmp_path / "strict")
    (line,) = [q for q in _quarantine(tmp_path / "strict") if q["record_id"] == "00002"]
    assert "symlink" in line["message"] and str(tmp_path) not in line["message"]
    result = _build(root, tmp_path / "follow", follow_symlinks=True)
    assert "00002" not in {q["record_id"] for q in _quarantine(tmp_path / "follow")}
    assert result.manifest.config["follow_symlinks_within_root"] is True


# --- 3: a malformed row is a bad record ---------------------------------------------------


def test_malformed_rows_are_quarantined_at_list_and_counted(ptb_raw, tmp_path):
    from medshard.sources.ecg.ptbxl_fixture import malformed_rows

    root = _copy(ptb_raw, tmp_path)
    expect = malformed_rows(root, tmp_path / "outside")
    result = _build(root, tmp_path / "out")
    counts = result.manifest.sources[PTB].counts
    assert counts["unlisted"].listed == counts["unlisted"].quarantined == 4
    assert {sp: c.samples for sp, c in counts.items() if c.samples} == {"train": 7, "val": 2,
                                                                        "test": 2}
    lines = [q for q in _quarantine(tmp_path / "out") if q["stage"] == "list"]
    assert {f"{q['files'][0]}:{q['line']}" for q in lines} == set(expect.quarantined)
    assert all(q["message"].startswith(f"ptbxl_database.csv line {q['line']}: ") for q in lines)
    assert {q["error_type"] for q in lines} >= {"SyntaxError", "ValueError"}


# --- 4: long names ------------------------------------------------------------------------


def test_sample_keys_are_bounded_and_member_names_checked_at_encode():
    stem = "aaaaaaab_s009_t000_" + "x" * 180
    key = sample_key("tuab", stem, "w0001")
    assert len(key) == MAX_KEY_CHARS and key.startswith("tuab_aaaaaaab_s009")
    assert key == sample_key("tuab", stem, "w0001") != sample_key("tuab", stem, "w0002")
    assert sample_key("tuab", "short") == "tuab_short"
    check_member_names(key, {"json": b"", "signal.npy": b""})
    with pytest.raises(RecordError, match="tar member name holds 100"):
        check_member_names(key, {"a_payload_role_name_far_too_long_for_tar.npy": b""})


# --- 5: stale raw data --------------------------------------------------------------------


def _flip_in_place(path: Path, keep_mtime: bool = False) -> None:
    st = path.stat()
    with open(path, "r+b") as f:  # same inode, same size
        f.seek(st.st_size // 2)
        b = f.read(64)
        f.seek(st.st_size // 2)
        f.write(bytes(x ^ 0x55 for x in b))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    else:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_a_raw_file_changed_in_place_rebuilds_its_shard(ptb_raw, tmp_path):
    root = _copy(ptb_raw, tmp_path)
    out = tmp_path / "out"
    _build(root, out)
    before = _shard_hashes(out)
    _flip_in_place(root / VICTIM)
    again = _build(root, out)
    assert again.shards_written == 1 and list(again.raw_changed.values()) == [[VICTIM]]
    after = _shard_hashes(out)
    assert [p for p in before if before[p] != after[p]] == [f"webdataset/{PTB}/train/{PTB}-train-000000.tar"]
    # content changed with size, mtime and inode kept: only --verify-raw sees it
    _flip_in_place(root / VICTIM, keep_mtime=True)
    assert _build(root, out).shards_written == 0
    verified = _build(root, out, verify_raw=True)
    assert verified.shards_written == 1 and list(verified.raw_changed.values()) == [[VICTIM]]
    assert _shard_hashes(out) == before  # the flip twice restored the original bytes


# --- 6: one build per --out ---------------------------------------------------------------


def test_a_second_build_into_a_locked_out_exits_2_naming_the_holder(ptb_raw, tmp_path, capsys):
    root = _copy(ptb_raw, tmp_path)
    out = tmp_path / "out"
    (out / ".medshard").mkdir(parents=True)
    holder = {"host": socket.gethostname(), "pid": os.getppid()}  # a live process
    (out / ".medshard" / "build.lock").write_text(json.dumps(holder))
    rc = main(["build", PTB, "--data-root", str(root.parent), "--out", str(out),
               "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert f"being built by process {os.getppid()} on {holder['host']}" in err
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".medshard" / "build.lock").write_text(json.dumps({**holder, "pid": dead.pid}))
    _build(root, out)  # a dead holder's lock is taken over, and released at the end
    assert not (out / ".medshard" / "build.lock").exists()
    assert temp_name(out / "x.tar") != temp_name(out / "x.tar")


# --- 7: errors a person can act on --------------------------------------------------------


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a read-only /sys")
def test_an_unwritable_out_is_one_line(ptb_raw, tmp_path, capsys):
    rc = main(["build", PTB, "--data-root", str(ptb_raw.parent), "--out",
               "/sys/medshard-test-out", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "cannot write to /sys/medshard-test-out" in err and "writable --out" in err


def test_a_full_disk_is_one_line_and_the_build_resumes(ptb_raw, tmp_path, monkeypatch):
    from medshard.pipeline import shard_task

    root = _copy(ptb_raw, tmp_path)
    out = tmp_path / "out"
    real_write = shard_task.TarShardWriter.write
    calls = {"n": 0}

    def full_disk(self, key, members):
        calls["n"] += 1
        if calls["n"] == 9:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, key, members)

    monkeypatch.setattr(shard_task.TarShardWriter, "write", full_disk)
    with pytest.raises(UserError, match=r"^no space left on the device of .*run the same "
                                        r"command again; finished shards are kept$"):
        _build(root, out)
    monkeypatch.setattr(shard_task.TarShardWriter, "write", real_write)
    _build(root, out)
    _build(root, tmp_path / "clean")
    assert _shard_hashes(out) == _shard_hashes(tmp_path / "clean")
    assert not [p for p in out.rglob("*.tmp")]


def test_a_non_invertible_nifti_affine_is_quarantined_with_what_to_do(tmp_path):
    import nibabel as nib

    from medshard.sources.registry import get_source

    root = tmp_path / "kits23"
    fixture_of("kits23").write(root)
    src = get_source("kits23")
    rec = next(r for r in src.list_records(root) if r.source_labels.get("malignant") is not None
               and (root / r.files[0]).is_file())
    for rel in rec.files:  # imaging and segmentation share the broken header
        img = nib.load(root / rel)
        singular = np.array(img.affine)
        singular[:3, 2] = 0.0  # one axis has no extent: no inverse
        broken = nib.Nifti1Image(np.asarray(img.dataobj), np.eye(4))
        broken.set_qform(None, code=0)
        broken.set_sform(singular, code=2)
        nib.save(broken, root / rel)
    with pytest.raises(RecordError,
                       match=r"imaging.nii.gz: the NIfTI affine is not invertible.*re-download it"):
        list(src.load(rec, root))


def test_a_garbage_manifest_is_one_line(tmp_path):
    for text in ("{not json", '{"shards": 3}'):
        (tmp_path / "manifest.json").write_text(text)
        with pytest.raises(UserError) as info:
            ShardDataset(str(tmp_path))
        assert "\n" not in str(info.value)
        assert str(info.value).startswith(f"{tmp_path}/manifest.json is not a medshard manifest")


class _StallingHandler(BaseHTTPRequestHandler):
    served: Path

    def log_message(self, *a):
        pass

    def _head(self) -> Path:
        path = self.served / self.path.lstrip("/")
        self.send_response(200)
        self.send_header("Content-Length", str(path.stat().st_size))
        self.end_headers()
        return path

    def do_HEAD(self):  # noqa: N802
        self._head()

    def do_GET(self):  # noqa: N802
        path = self._head()
        if path.suffix == ".tar":
            self.wfile.write(path.read_bytes()[:100])
            self.wfile.flush()
            time.sleep(8)  # stalls, well past the 1 s the test allows
            return
        self.wfile.write(path.read_bytes())


def test_a_stalled_http_shard_fails_in_bounded_time_naming_it(tmp_path, monkeypatch):
    build = make_build(tmp_path / "b", formats=("webdataset",))
    handler = type("H", (_StallingHandler,), {"served": build.root})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MEDSHARD_HTTP_STALL_S", "1")
    try:
        started = time.monotonic()
        ds = ShardDataset(f"http://127.0.0.1:{server.server_address[1]}", split="train",
                          format="webdataset")
        with pytest.raises(ShardError, match=r"^shard \S+\.tar: no data from .* for 1 s "
                                             r"\(stalled\)"):
            list(ds)
        assert time.monotonic() - started < 7
    finally:
        server.shutdown()
        server.server_close()


# --- 10: zip bombs ------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_before_writing_anything(tmp_path):
    from medshard.acquire.download.archive import ArchiveTooLarge, extract_archive

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("notes.txt", "a small honest file\n")
        with zf.open("zeros.bin", "w", force_zip64=True) as f:
            for _ in range(64):
                f.write(bytes(1 << 20))
    target = tmp_path / "target"
    with pytest.raises(ArchiveTooLarge, match=r"'zeros.bin' expands \d+x .*MEDSHARD_MAX_MEMBER"):
        extract_archive(bomb, target)
    assert list(target.rglob("*")) == []
    with pytest.raises(ArchiveTooLarge, match=r"bomb.zip expands \d+x .*MEDSHARD_MAX_EXTRACT"):
        extract_archive(bomb, target, max_member_ratio=1e9)
    done = extract_archive(bomb, target, max_member_ratio=1e9, max_ratio=1e9)
    assert sorted(f.path for f in done) == ["notes.txt", "zeros.bin"]


def test_an_archive_larger_than_the_free_space_is_refused(tmp_path, monkeypatch):
    from medshard.acquire.download import archive

    zpath = tmp_path / "a.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("data.bin", os.urandom(3 << 20))
    monkeypatch.setattr(archive.shutil, "disk_usage",
                        lambda p: shutil._ntuple_diskusage(10 << 30, 10 << 30, 1 << 20))
    with pytest.raises(archive.ArchiveTooLarge, match=r"needs \d+ bytes unpacked, 1048576 are "
                                                      "free"):
        archive.extract_archive(zpath, tmp_path / "t")
    assert list((tmp_path / "t").rglob("*")) == []


# --- 11: credentials only to their origin -------------------------------------------------


def test_netrc_credentials_never_reach_another_port(tmp_path, monkeypatch):
    from medshard.acquire.download.credentials import from_netrc
    from medshard.acquire.download.engine import new_session

    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret-pw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with FakeServer() as a, FakeServer() as b:
        b.files["/data.csv"] = b"x,y\n1,2\n"
        a.routes["/data.csv"] = lambda seen, q: Reply(302, b"", {
            "Location": f"{b.url}/data.csv"})
        creds = from_netrc("127.0.0.1")
        session = new_session()
        for auth in (creds.basic_auth(), None):  # given by a provider, or by nobody
            r = session.get(f"{a.url}/data.csv", auth=auth, timeout=10)
            assert r.content == b"x,y\n1,2\n"
        assert "Authorization" in a.seen("/data.csv")[0].headers
        assert "Authorization" not in a.seen("/data.csv")[1].headers  # never netrc by host
        assert all("Authorization" not in s.headers for s in b.seen("/data.csv"))


# --- 12: local integrity ------------------------------------------------------------------


def test_verify_once_catches_bit_rot_and_counts_are_always_checked(tmp_path):
    from medshard.loaders import remote

    build = make_build(tmp_path / "b")
    manifest = json.loads((build.root / "manifest.json").read_text())
    shard = next(s for s in manifest["shards"] if s["format"] == "webdataset")
    path = build.root / shard["path"]
    data = bytearray(path.read_bytes())
    data[700] ^= 0xFF  # one flipped bit inside the first member, same size
    path.write_bytes(bytes(data))
    remote.VERIFIED_ONCE.clear()
    sel = {"split": shard["split"], "sources": shard["source"], "format": "webdataset",
           "shuffle": False, "decode": False}
    assert len(list(ShardDataset(str(build.root), **sel)))  # the default reads it silently
    with pytest.raises(ShardError, match=f"shard {shard['path']} fails its sha256 check"):
        list(ShardDataset(str(build.root), verify="once", **sel))
    for fmt in ("webdataset", "parquet"):
        lowered = json.loads((build.root / "manifest.json").read_text())
        victim = next(s for s in lowered["shards"] if s["format"] == fmt and s["samples"] > 1)
        victim["samples"] -= 1
        for s in lowered["sources"].values():
            s["counts"][victim["split"]]["samples"] -= 1
        low = tmp_path / f"low-{fmt}"
        shutil.copytree(build.root, low)
        (low / "manifest.json").write_text(json.dumps(lowered))
        (low / "index.parquet").unlink()
        with pytest.raises(ShardError, match="samples"):
            list(ShardDataset(str(low), split=victim["split"], sources=victim["source"],
                              format=fmt, shuffle=False, decode=False))


# --- 8: images and volumes ----------------------------------------------------------------


def _jpeg(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((height, width), 90, np.uint8)).save(buf, "JPEG", quality=50)
    return buf.getvalue()


def _patch_sof(data: bytes, width: int, height: int) -> bytes:
    at = data.index(b"\xff\xc0") + 5  # SOF0: length, precision, then height and width
    return data[:at] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[at + 4:]


def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(monkeypatch):
    from medshard.pipeline.transforms.image import check_encoded_image

    small = _jpeg(64, 64)
    bomb = _patch_sof(small, 12000, 12000)  # a few hundred bytes declaring 144 Mpx
    with pytest.raises(RecordError, match=r"12000 x 12000 = 144000000 pixels, more than the "
                                          r"cap of 64000000"):
        check_encoded_image(bomb)
    monkeypatch.setenv("MEDSHARD_MAX_IMAGE_PIXELS", str(200_000_000))
    with pytest.raises(RecordError, match=r"in \d+ bytes, more than JPEG can encode"):
        check_encoded_image(bomb)
    assert check_encoded_image(small)["height"] == 64


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("declared", [(64, 128), (32, 32), (128, 64)])
def test_a_terminated_jpeg_whose_sof_disagrees_with_its_data_is_refused(mode, declared):
    # Pillow, OpenCV and pylibjpeg all decode these without an error (grey fill or a crop)
    import io

    from PIL import Image

    from medshard.pipeline.transforms.image import check_encoded_image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64), np.uint8)).convert(mode).save(buf, "JPEG")
    good = buf.getvalue()
    assert check_encoded_image(good)["width"] == 64
    patched = _patch_sof(good, *declared)
    with Image.open(io.BytesIO(patched)) as im:
        im.load()  # the defect: Pillow alone accepts it
    with pytest.raises(RecordError, match="corrupt JPEG: Corrupt JPEG data"):
        check_encoded_image(patched)
    with pytest.raises(RecordError, match="corrupt JPEG"):
        check_encoded_image(good[: len(good) * 2 // 3] + b"\xff\xd9")  # cut, then terminated


def test_non_finite_voxels_are_quarantined():
    from medshard.pipeline.encoders import EncodeContext, encode_volume
    from medshard.schemas.sample import Payload

    vol = np.zeros((4, 4, 4), np.float32)
    vol[1, 2, 3] = np.nan
    vol[0, 0, 0] = np.inf
    desc = {"spacing_mm": [1.0] * 3, "affine": np.eye(4).tolist(), "orientation": "RAS"}
    ctx = EncodeContext(key="k", role="volume", modality="ct", signal_specs={})
    with pytest.raises(RecordError, match="2 NaN or infinite voxels of 64"):
        encode_volume(Payload("volume", vol, desc), ctx)


# --- 9: DICOM code strings and burned-in annotations --------------------------------------


def test_dicom_code_strings_must_be_codes_and_burned_in_images_are_quarantined(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    from medshard.formats.dicom import read_image

    ds = pydicom.dcmread(get_testdata_file("RG1_UNCR.dcm"))
    ds.BodyPartExamined = "LEFT ARM JONES"  # valid CS characters, not a body part
    ds.ViewPosition = "PA"
    ds.BurnedInAnnotation = "YES"
    path = tmp_path / "x.dcm"
    ds.save_as(path)
    with pytest.raises(RecordError, match="BurnedInAnnotation is YES"):
        read_image(path)
    image = read_image(path, burned_in="keep")
    assert image.meta["burned_in_annotation"] is True
    assert image.meta["dicom"]["ViewPosition"] == "PA"
    assert image.meta["dicom"]["BodyPartExamined"] is None
    assert "JONES" not in json.dumps([image.meta, image.descriptor])
    kept = read_image(path, burned_in="keep",
                      codes={"BodyPartExamined": frozenset({"LEFT ARM JONES"})})
    assert kept.meta["dicom"]["BodyPartExamined"] == "LEFT ARM JONES"  # a source's own term


# --- metadata segments in kept JPEG/PNG bytes ----------------------------------------------


def _encode(data: bytes):
    from medshard.pipeline.encoders import EncodeContext, encode_image
    from medshard.schemas.sample import Payload

    members, desc = encode_image(Payload("image", data, {}), EncodeContext(key="k", role="image"))
    [stored] = members.values()
    return stored, desc


def test_text_metadata_in_kept_jpeg_bytes_is_dropped_and_the_pixels_are_unchanged():
    import io

    from PIL import Image

    rng = np.random.default_rng(1)
    im = Image.fromarray(rng.integers(0, 255, (48, 64, 3), np.uint8))
    exif = Image.Exif()
    exif[0x010E] = "PATIENT DOE^JANE 1957-03-02"  # ImageDescription
    exif[0x0131] = "ScannerSerial SN-88412"  # Software
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif, comment=b"MRN 0042-77 DOE", icc_profile=b"\0" * 128)
    raw = buf.getvalue()
    assert b"DOE^JANE" in raw and b"MRN 0042-77" in raw  # Pillow wrote them
    stored, desc = _encode(raw)
    for marker in (b"DOE", b"SN-88412", b"MRN", b"1957"):
        assert marker not in stored
    assert desc["metadata_removed"] == ["APP1 (Exif)", "COM"]
    assert b"ICC_PROFILE\0" in stored and b"JFIF\0" in stored  # colour, not text: kept
    before = np.asarray(Image.open(io.BytesIO(raw)))
    after = np.asarray(Image.open(io.BytesIO(stored)))
    np.testing.assert_array_equal(before, after)
    assert raw.endswith(stored[stored.index(b"\xff\xda"):])  # the scan, byte for byte


def test_text_chunks_in_kept_png_bytes_are_dropped_and_clean_bytes_stay_as_shipped():
    import io

    from PIL import Image, PngImagePlugin

    im = Image.fromarray(np.arange(32 * 40, dtype=np.uint16).reshape(32, 40))
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "DOE^JANE")
    info.add_itxt("Comment", "MRN 0042-77", zip=True)
    buf = io.BytesIO()
    im.save(buf, "PNG", pnginfo=info)
    raw = buf.getvalue()
    stored, desc = _encode(raw)
    assert b"DOE^JANE" not in stored and desc["metadata_removed"] == ["tEXt", "iTXt"]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(raw))),
                                  np.asarray(Image.open(io.BytesIO(stored))))
    clean = io.BytesIO()
    im.save(clean, "PNG")
    kept, kept_desc = _encode(clean.getvalue())
    assert kept == clean.getvalue() and kept_desc["metadata_removed"] == []
