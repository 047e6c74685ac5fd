"""Brain MRI 2-D sources (brain-tumor, brain-mri, brain-tumor-mri-7023) and the build's
exact-duplicate report with --dedupe.

Independent checks: the fixture's pixels against nibabel's own volume (OpenCV decodes the
stored JPEG), and the duplicate groups against a sha256 of every raw file computed here
with hashlib, not by medshard.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from medshard.pipeline.build import BuildConfig, run_build
from medshard.pipeline.duplicates import DEDUPE_REASON, duplicate_report, payload_hashes
from medshard.schemas import RawRecord
from medshard.sources import get_source
from medshard.sources.mri import (
    brain_mri_fixture,
    brain_tumor_fixture,
    brain_tumor_mri_7023_fixture,
)
from medshard.sources.mri.class_folders import image_record_id
from medshard.sources.mri.slices_fixture import EPI_SLICES

FIXTURES = {
    "brain-tumor": brain_tumor_fixture,
    "brain-mri": brain_mri_fixture,
    "brain-tumor-mri-7023": brain_tumor_mri_7023_fixture,
}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("brain-raw")
    for slug, module in FIXTURES.items():
        module.write_fixture(root / slug)
    return root


def _records(slug: str, root: Path) -> dict[str, RawRecord]:
    return {r.record_id: r for r in get_source(slug).list_records(root / slug)}


def _build(raw: Path, out: Path, sources: list[str], **kw):
    return run_build(BuildConfig(sources=sources, data_root=raw, out=out, progress=False, **kw))


def _tar_members(out: Path, manifest) -> dict[str, dict[str, bytes]]:
    """key -> {member extension: bytes}, read with tarfile from every WebDataset shard."""
    samples: dict[str, dict[str, bytes]] = {}
    for shard in manifest.shards:
        with tarfile.open(out / shard.path) as tf:
            for m in tf.getmembers():
                key, _, ext = m.name.partition(".")
                samples.setdefault(key, {})[ext] = tf.extractfile(m).read()
    return samples


# --- the sources ------------------------------------------------------------------------


def test_brain_tumor_classes_and_official_split(raw: Path) -> None:
    recs = _records("brain-tumor", raw)
    # 12 images + a truncated JPEG + a non-image file, every file of the class folders
    assert len(recs) == 14
    for rec in recs.values():
        folder, cls = rec.files[0].split("/")[:2]
        assert rec.source_labels == {"class_folder": cls}
        assert rec.split == "test" if folder == "Testing" else rec.split in ("train", "val")
        assert rec.subject_id == rec.record_id  # no patient ids: the image is the unit
    # free-text names become safe ids, kept distinct by a hash of the name
    rid = image_record_id("Training_glioma_tumor", "gg (1).jpg")
    assert rid.startswith("Training_glioma_tumor_gg__1_-") and rid in recs
    assert get_source("brain-tumor").info.split_unit == "image"


def test_brain_mri_reads_one_copy_of_the_archive(raw: Path, tmp_path: Path) -> None:
    recs = _records("brain-mri", raw)
    assert len(recs) == 11  # 10 images + 1 truncated, not twice (brain_tumor_dataset/)
    assert not any(r.files[0].startswith("brain_tumor_dataset/") for r in recs.values())
    assert {r.source_labels["class_folder"] for r in recs.values()} == {"yes", "no"}
    assert all(r.split is None for r in recs.values())  # no split: keyed hash by the build
    assert "yes_Y2_JPG-" in " ".join(recs)  # `Y2.JPG` keeps its extension in the id
    # the nested copy alone is read when the top folders are absent
    nested = tmp_path / "brain-mri"
    shutil.copytree(raw / "brain-mri" / "brain_tumor_dataset", nested / "brain_tumor_dataset")
    only_nested = _records("brain-mri", tmp_path)
    assert sorted(only_nested) == sorted(recs)
    assert all(r.files[0].startswith("brain_tumor_dataset/") for r in only_nested.values())


def test_brain_tumor_mri_7023_layout(raw: Path) -> None:
    recs = _records("brain-tumor-mri-7023", raw)
    assert "Training_glioma_Tr-gl_0001" in recs and "Testing_notumor_Te-no_0001" in recs
    assert recs["Testing_notumor_Te-no_0001"].split == "test"
    assert recs["Testing_notumor_Te-no_0001"].source_labels == {"class_folder": "notumor"}


@pytest.fixture(scope="module")
def plain(raw: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("brain-plain")
    return out, _build(raw, out, ["brain-tumor", "brain-tumor-mri-7023"])


def test_stored_image_is_the_raw_jpeg_and_a_real_slice(raw: Path, plain) -> None:
    import cv2
    import nibabel
    from nibabel.testing import data_path

    out, result = plain
    samples = _tar_members(out, result.manifest)
    key = "brain-tumor_" + image_record_id("Training_glioma_tumor", "gg (1).jpg")
    meta = json.loads(samples[key]["json"])
    raw_bytes = (raw / "brain-tumor/Training/glioma_tumor/gg (1).jpg").read_bytes()
    assert samples[key]["image.jpg"] == raw_bytes  # the source's JPEG kept, not re-encoded
    assert meta["labels"] == ["mri.brain-tumor", "mri.glioma"]
    assert meta["source_labels"] == {"class_folder": "glioma_tumor"}
    img = cv2.imdecode(np.frombuffer(samples[key]["image.jpg"], np.uint8), cv2.IMREAD_GRAYSCALE)
    desc = meta["payloads"]["image"]
    assert (desc["height"], desc["width"], desc["bit_depth"]) == (*img.shape, 8)
    # slice 0 of the fixture is nibabel's example4d volume 0, axial slice EPI_SLICES[0]
    vol = np.asarray(nibabel.load(Path(data_path) / "example4d.nii.gz").dataobj[..., 0])
    ref = np.rot90(vol[:, :, EPI_SLICES[0]]).astype(float)
    assert np.corrcoef(ref.ravel(), img.astype(float).ravel())[0, 1] > 0.98


# --- the duplicate report and --dedupe ---------------------------------------------------


def _raw_duplicate_groups(raw: Path, slugs: list[str], result) -> set[frozenset[str]]:
    """Groups of sample keys whose raw image files are byte-identical (hashlib here)."""
    by_file = {}
    for slug in slugs:
        for rec in get_source(slug).list_records(raw / slug):
            by_file[(slug, rec.files[0])] = f"{slug}_{rec.record_id}"
    written = set(_tar_members(result.out, result.manifest))
    groups: dict[str, set[str]] = {}
    for (slug, rel), key in by_file.items():
        if key in written:
            digest = hashlib.sha256((raw / slug / rel).read_bytes()).hexdigest()
            groups.setdefault(digest, set()).add(key)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def test_report_finds_the_planted_duplicates(raw: Path, plain) -> None:
    out, result = plain
    report = result.manifest.duplicates
    slugs = ["brain-tumor", "brain-tumor-mri-7023"]
    expected = _raw_duplicate_groups(raw, slugs, result)
    assert {frozenset(c.key for c in g.copies) for g in report.duplicate_groups} == expected
    planted = "brain-tumor_" + image_record_id("Training_meningioma_tumor", "m (2).jpg")
    cross = next(g for g in report.duplicate_groups if g.copies[0].key == planted)
    assert [(c.source, c.split) for c in cross.copies] == [
        ("brain-tumor", "train"), ("brain-tumor-mri-7023", "test")]
    assert cross.copies[1].key == "brain-tumor-mri-7023_Testing_meningioma_Te-me_0001"
    assert (report.groups, report.across_sources, report.across_splits) == (2, 1, 2)
    assert not report.dedupe and report.dropped == 0 and not cross.dropped
    assert report.payloads_hashed == sum(s.samples for s in result.manifest.shards)
    links = {(ln.a, ln.b): ln.groups for ln in report.links}
    assert links[("brain-tumor-mri-7023/test", "brain-tumor/train")] == 1


def test_dedupe_removes_exactly_the_later_copies(raw: Path, plain, tmp_path: Path) -> None:
    plain_out, plain_result = plain
    out = tmp_path / "dedupe"
    result = _build(raw, out, ["brain-tumor", "brain-tumor-mri-7023"], dedupe=True)
    later = {g.copies[-1].key for g in plain_result.manifest.duplicates.duplicate_groups}
    before = _tar_members(plain_out, plain_result.manifest)
    after = _tar_members(out, result.manifest)
    assert set(before) - set(after) == later
    assert later == {"brain-tumor-mri-7023_Testing_meningioma_Te-me_0001",
                     "brain-tumor-mri-7023_Testing_meningioma_Te-me_0002"}
    for key in after:  # every kept sample holds the same payload bytes as before
        assert {k: v for k, v in after[key].items() if k != "json"} == \
            {k: v for k, v in before[key].items() if k != "json"}
    test_counts = result.manifest.sources["brain-tumor-mri-7023"].counts["test"]
    assert test_counts.filtered_reasons == {DEDUPE_REASON: 2}
    assert test_counts.listed == test_counts.written + test_counts.quarantined + 2
    report = result.manifest.duplicates
    assert report.dedupe and report.dropped == 2
    assert sorted(k for g in report.duplicate_groups for k in g.dropped) == sorted(later)
    assert result.manifest.config["dedupe"] is True
    # deterministic: a fresh build gives the same bytes; a re-run resumes without work
    _build(raw, tmp_path / "again", ["brain-tumor", "brain-tumor-mri-7023"], dedupe=True)
    for rel in ["manifest.json", "index.parquet", "quarantine.jsonl",
                *(s.path for s in result.manifest.shards)]:
        assert (out / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes(), rel
    resumed = _build(raw, out, ["brain-tumor", "brain-tumor-mri-7023"], dedupe=True)
    assert resumed.shards_written == 0
    assert (out / "manifest.json").read_bytes() == (tmp_path / "again/manifest.json").read_bytes()


def test_inspect_shows_the_duplicates(plain, capsys) -> None:
    from medshard.cli import main

    out, _ = plain
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "exact duplicates: 2 payload contents" in text
    assert "brain-tumor-mri-7023/test <-> brain-tumor/train: 1 groups" in text
    assert "--dedupe" in text


def test_masks_and_repeats_inside_one_sample_are_not_duplicates() -> None:
    image, mask = b"\xff\xd8 an image", b"\x89PNG an empty mask"
    descs = {"image": {"member": "image.jpg"},
             "mask": {"member": "mask.png", "annotates": "image"}}
    rows_a = payload_hashes("a", {"image.jpg": image, "mask.png": mask}, descs)
    rows_b = payload_hashes("b", {"image.jpg": b"other image", "mask.png": mask}, descs)
    assert [r[1] for r in rows_a] == ["image.jpg"]  # the mask is not hashed
    twice = [["c", "x.png", hashlib.sha256(b"x").hexdigest()],
             ["c", "y.png", hashlib.sha256(b"x").hexdigest()]]
    report = duplicate_report(lambda: [("s", "train", rows_a + rows_b + twice)])
    assert report.groups == 0 and report.payloads_hashed == 4
    report = duplicate_report(lambda: [("s", "train", rows_a), ("t", "test", rows_a)])
    assert report.groups == 1 and report.across_sources == 1 and report.across_splits == 1
