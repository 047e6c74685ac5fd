"""Brain-network sources (abide, abcd, ppmi): connectivity against numpy / scipy read
independently of the adapters, the graph through tar, Parquet and the loader, and the
leave-one-site-out key lists."""

from __future__ import annotations

import json
import tarfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from scipy.io import loadmat

from medshard.errors import UserError
from medshard.loaders import ShardDataset
from medshard.pipeline.build import BuildConfig, run_build
from medshard.schemas import RecordError
from medshard.sources import get_source
from medshard.sources.base import MissingRawData
from medshard.sources.brain_networks import abcd_fixture, abide_fixture, ppmi_fixture
from medshard.sources.brain_networks.abcd import ID2SEX, IDS, PEARSON, SERIES
from medshard.sources.brain_networks.abide import PHENOTYPIC
from medshard.sources.brain_networks.ppmi import MAT


@pytest.fixture(scope="module")
def abide_root(tmp_path_factory) -> Path:
    return abide_fixture.write_fixture(tmp_path_factory.mktemp("abide") / "abide")


def _records(slug: str, root: Path, **options):
    src = get_source(slug, **options)
    return src, {r.record_id: r for r in src.list_records(root) if hasattr(r, "record_id")}


def _one(src, record, root):
    (sample,) = list(src.load(record, root))
    return sample


def _dense(graph: dict, n: int) -> np.ndarray:
    m = np.zeros((n, n))
    m[graph["edge_index"][0], graph["edge_index"][1]] = graph["edge_weight"]
    return m


def test_abide_connectivity_is_numpy_corrcoef_of_the_roi_series(abide_root: Path) -> None:
    src, records = _records("abide", abide_root)
    checked = 0
    for rid, rec in records.items():
        if rid not in {abide_fixture.file_id(*e[:2]) for e in abide_fixture.GOOD}:
            continue
        series = np.loadtxt(abide_root / rec.files[0], comments="#")  # T x ROIs
        want = np.corrcoef(series, rowvar=False)
        sample = _one(src, rec, abide_root)
        graph = sample.payloads["connectome"].data
        n = want.shape[0]
        np.testing.assert_allclose(_dense(graph, n), want, atol=2e-7)  # float32 weights
        np.testing.assert_allclose(graph["node_features"], want, atol=2e-7)
        assert graph["edge_index"].shape == (2, n * n)  # every non-zero entry, diagonal too
        assert graph["node_ids"] == [str(i + 1) for i in range(n)]
        assert sample.meta["n_timepoints"] == series.shape[0]
        assert sample.meta["site"] == rec.meta["site"]
        checked += 1
    assert checked == len(abide_fixture.GOOD)


def test_abide_labels_and_phenotypes_follow_the_legend(abide_root: Path) -> None:
    src, records = _records("abide", abide_root)
    for sub, site, dx, _dsm, age, sex, fd, _ in abide_fixture.GOOD:
        rec = records[abide_fixture.file_id(sub, site)]
        assert _one(src, rec, abide_root).classes == [{1: "ASD", 2: "Typical controls"}[dx]]
        assert rec.source_labels["DX_GROUP"] == dx and rec.subject_id == str(sub)
        assert rec.meta["sex"] == {1: "M", 2: "F"}[sex] and rec.meta["age"] == age
        assert rec.meta["func_mean_fd"] == (None if fd == -9999 else fd)


def test_a_constant_roi_is_zeroed_and_listed_or_quarantined(abide_root: Path) -> None:
    rid = abide_fixture.file_id(*abide_fixture.CONSTANT[:2])
    src, records = _records("abide", abide_root)
    series = np.loadtxt(abide_root / records[rid].files[0], comments="#")
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.corrcoef(series, rowvar=False)
    assert np.isnan(want[0]).all()  # numpy agrees: no correlation for a constant series
    graph = _one(src, records[rid], abide_root).payloads["connectome"].data
    n = want.shape[0]
    got = _dense(graph, n)
    assert not got[0].any() and not got[:, 0].any()
    np.testing.assert_allclose(got[1:, 1:], want[1:, 1:], atol=2e-7)
    assert _one(src, records[rid], abide_root).meta["constant_rois"] == ["1"]
    strict, records = _records("abide", abide_root, constant_roi="quarantine")
    with pytest.raises(RecordError, match="constant series"):
        _one(strict, records[rid], abide_root)


def test_fisher_z_threshold_and_self_loop_options(abide_root: Path) -> None:
    rid = abide_fixture.file_id(*abide_fixture.GOOD[0][:2])
    src, records = _records("abide", abide_root, fisher_z=True, abs_threshold=0.5,
                            self_loops=False, node_features="none")
    r = np.corrcoef(np.loadtxt(abide_root / records[rid].files[0], comments="#"), rowvar=False)
    with np.errstate(divide="ignore"):
        z = np.arctanh(r)
    np.fill_diagonal(z, 0.0)
    want = np.where(np.abs(z) >= 0.5, z, 0.0)
    sample = _one(src, records[rid], abide_root)
    graph = sample.payloads["connectome"].data
    np.testing.assert_allclose(_dense(graph, r.shape[0]), want, atol=1e-6)
    assert "node_features" not in graph
    assert (graph["edge_index"][0] != graph["edge_index"][1]).all()
    assert 0 < graph["edge_index"].shape[1] < r.size - r.shape[0]
    assert sample.payloads["connectome"].descriptor["edge_weight_meaning"].startswith("Fisher z")
    assert sample.meta["connectivity"]["fisher_z"] is True


def test_abide_refuses_a_missing_phenotypic_file(tmp_path: Path) -> None:
    (tmp_path / "Outputs").mkdir()
    with pytest.raises(MissingRawData, match=PHENOTYPIC):
        list(get_source("abide").list_records(tmp_path))


@pytest.fixture(scope="module")
def abide_build(abide_root: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("abide-build")
    run_build(BuildConfig(sources=["abide"], data_root=abide_root.parent, out=out,
                          formats=("webdataset", "parquet"), shard_size=1 << 20, progress=False))
    return out


def test_the_graph_round_trips_through_tar_parquet_and_the_loader(abide_root, abide_build):
    src, records = _records("abide", abide_root)
    tars = sorted(abide_build.glob("webdataset/abide/*/*.tar"))
    members: dict[str, bytes] = {}
    for path in tars:
        with tarfile.open(path) as tf:
            for m in tf.getmembers():
                if m.name.endswith(".connectome.npz"):
                    members[m.name.split(".")[0]] = tf.extractfile(m).read()
    parquet: dict[str, bytes] = {}
    for path in sorted(abide_build.glob("parquet/abide/*/*.parquet")):
        for row in pq.read_table(path).to_pylist():
            parquet[row["key"]] = row["connectome_npz"]
    assert members.keys() == parquet.keys() and len(members) == 8
    assert members == parquet  # the same bytes in both formats
    for fmt in ("webdataset", "parquet"):
        seen = 0
        for sample in ShardDataset(str(abide_build), split=None, format=fmt):
            rid = sample["key"].removeprefix("abide_")
            series = np.loadtxt(abide_root / records[rid].files[0], comments="#")
            with np.errstate(invalid="ignore", divide="ignore"):
                want = np.nan_to_num(np.corrcoef(series, rowvar=False))
            g = sample["connectome"]
            ei, ew = g["edge_index"], g["edge_weight"]
            # PyTorch Geometric's Data(edge_index=..., edge_weight=...) contract
            assert ei.dtype == torch.int64 and ei.ndim == 2 and ei.shape[0] == 2
            assert ew.dtype == torch.float32 and ew.shape == (ei.shape[1],)
            assert g["node_features"].shape == want.shape
            dense = torch.zeros(want.shape, dtype=torch.float64)
            dense[ei[0], ei[1]] = ew.double()
            np.testing.assert_allclose(dense.numpy(), want, atol=2e-7)
            with np.load(BytesIO(members[sample["key"]])) as npz:
                np.testing.assert_array_equal(npz["edge_index"], ei.numpy())
            seen += 1
        assert seen == 8, fmt


def test_leave_one_site_out_key_lists_train_without_a_rebuild(abide_build, tmp_path):
    from medshard.jobs.sites import write_leave_site_out

    index = pq.read_table(abide_build / "index.parquet").to_pylist()
    listing = write_leave_site_out(str(abide_build), tmp_path / "lso", ["abide"])
    sites = sorted({r["site"] for r in index})
    assert [f["site"] for f in listing] == sites == ["Caltech", "NYU", "Pitt", "UM_1"]
    for fold in listing:
        held = json.loads((tmp_path / "lso" / fold["path"] / "held_out.json").read_text())
        rest = json.loads((tmp_path / "lso" / fold["path"] / "train.json").read_text())
        assert held["keys"] == sorted(r["key"] for r in index if r["site"] == fold["site"])
        assert rest["keys"] == sorted(r["key"] for r in index if r["site"] != fold["site"])
        got = {s["__key__"] for s in ShardDataset(
            str(abide_build), split=None, decode=False,
            keys=str(tmp_path / "lso" / fold["path"] / "train.json"))}
        assert got == set(rest["keys"])
    assert json.loads((tmp_path / "lso" / "sites.json").read_text())["folds"] == listing


def test_leave_site_out_refuses_a_source_without_sites(abide_build, tmp_path):
    from medshard.jobs.sites import site_folds

    rows = [{"key": "a", "source": "x", "subject": "1", "site": None}]
    assert site_folds(rows, "x") == ({}, 1)
    with pytest.raises(UserError, match="not in"):
        from medshard.jobs.sites import write_leave_site_out
        write_leave_site_out(str(abide_build), tmp_path, ["ppmi"])


# --- ABCD ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def abcd_root(tmp_path_factory) -> Path:
    return abcd_fixture.write_fixture(tmp_path_factory.mktemp("abcd") / "abcd")


def test_abcd_shipped_matrices_and_sexes_matched_by_id(abcd_root: Path) -> None:
    mats = np.load(abcd_root / PEARSON)
    ids = (abcd_root / IDS).read_text().split()
    sexes = dict(line.split(",") for line in (abcd_root / ID2SEX).read_text().split()[1:])
    src, records = _records("abcd", abcd_root)
    for i, sid in enumerate(ids):
        if sid not in sexes:
            continue
        sample = _one(src, records[sid], abcd_root)
        assert sample.classes == [sexes[sid]]
        want = np.nan_to_num(mats[i].astype(np.float64))
        np.testing.assert_array_equal(_dense(sample.payloads["connectome"].data, 24),
                                      want.astype(np.float32))
        nan_roi = [str(abcd_fixture.NAN_ROI + 1)] if sid == abcd_fixture.NAN_SUBJECT else []
        assert sample.meta["constant_rois"] == nan_roi
        assert "shipped" in sample.payloads["connectome"].descriptor["edge_weight_meaning"]


def test_abcd_timeseries_option_computes_pearson_here(abcd_root: Path) -> None:
    series = np.load(abcd_root / SERIES)  # N x R x T
    src, records = _records("abcd", abcd_root, connectivity="timeseries")
    sid = abcd_fixture.SUBJECTS[0][0]
    want = np.corrcoef(series[0].astype(np.float64))  # rows are ROIs
    got = _dense(_one(src, records[sid], abcd_root).payloads["connectome"].data, 24)
    np.testing.assert_allclose(got, want, atol=2e-7)


def test_abcd_without_a_sex_is_filtered_and_a_symlinked_matrix_quarantines(abcd_root, tmp_path):
    from medshard.schemas.sample import Filtered

    src, records = _records("abcd", abcd_root)
    with pytest.raises(Filtered, match="no sex"):
        _one(src, records["NDAR_INV6B7C8D9E"], abcd_root)
    root = abcd_fixture.write_fixture(tmp_path / "abcd")
    outside = tmp_path / "elsewhere.npy"
    (root / PEARSON).rename(outside)
    (root / PEARSON).symlink_to(outside)
    src, records = _records("abcd", root)
    assert len(records) == len(abcd_fixture.SUBJECTS)  # listing goes on
    with pytest.raises(RecordError, match="symlink"):
        _one(src, records[abcd_fixture.SUBJECTS[0][0]], root)


# --- PPMI ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ppmi_root(tmp_path_factory) -> Path:
    return ppmi_fixture.write_fixture(tmp_path_factory.mktemp("ppmi") / "ppmi")


@pytest.mark.parametrize("view", [0, 2])
def test_ppmi_graph_is_the_view_climb_reads(ppmi_root: Path, view: int) -> None:
    mat = loadmat(ppmi_root / MAT)  # as CLIMB's brain_datasets.py reads it
    labels = mat["label"].reshape(-1)
    src, records = _records("ppmi", ppmi_root, view=view)
    for i in range(len(labels)):
        if i in (ppmi_fixture.BAD_LABEL, ppmi_fixture.BAD_SHAPE):
            with pytest.raises(RecordError):
                _one(src, records[f"s{i:04d}"], ppmi_root)
            continue
        sample = _one(src, records[f"s{i:04d}"], ppmi_root)
        want = np.nan_to_num(mat["X"][i][0][:, :, view])
        np.testing.assert_allclose(_dense(sample.payloads["connectome"].data, 24), want,
                                   atol=1e-7)
        assert sample.classes == [{1: "PD patients", -1: "Control"}[int(labels[i])]]
        assert sample.source_labels["label"] == int(labels[i])
        assert sample.meta["view"] == view and sample.meta["n_views"] == 3


def test_ppmi_refuses_an_absent_view_and_a_symlinked_container(ppmi_root, tmp_path):
    src, records = _records("ppmi", ppmi_root, view=5)
    with pytest.raises(RecordError, match="view 5"):
        _one(src, records["s0000"], ppmi_root)
    root = ppmi_fixture.write_fixture(tmp_path / "ppmi")
    outside = tmp_path / "elsewhere.mat"
    (root / MAT).rename(outside)
    (root / MAT).symlink_to(outside)
    with pytest.raises(MissingRawData, match="symlink"):
        list(get_source("ppmi").list_records(root))


def test_abide_reads_nilearns_copy_too(abide_root: Path, tmp_path: Path) -> None:
    """nilearn's fetch_abide_pcp keeps ABIDE_pcp/<pipeline>/<strategy>/<FILE_ID>_rois_cc200.1D."""
    import shutil

    nil = tmp_path / "ABIDE_pcp"
    shutil.copytree(abide_root / abide_fixture.DERIVATIVE, nil / "cpac" / "filt_noglobal")
    shutil.copy(abide_root / PHENOTYPIC, nil / PHENOTYPIC)
    src, bucket = _records("abide", abide_root)
    src2, copy = _records("abide", tmp_path)
    assert copy.keys() == bucket.keys()
    rid = abide_fixture.file_id(*abide_fixture.GOOD[2][:2])
    assert copy[rid].files == [f"ABIDE_pcp/cpac/filt_noglobal/{rid}_rois_cc200.1D"]
    a, b = _one(src, bucket[rid], abide_root), _one(src2, copy[rid], tmp_path)
    assert (a.meta["layout"], b.meta["layout"]) == ("pcp-bucket", "nilearn")
    np.testing.assert_array_equal(a.payloads["connectome"].data["edge_weight"],
                                  b.payloads["connectome"].data["edge_weight"])


def test_the_sites_command_writes_the_folds(abide_build, tmp_path, capsys):
    from medshard.cli import main

    assert main(["sites", str(abide_build), "--out", str(tmp_path / "lso")]) == 0
    assert "4 leave-one-site-out folds" in capsys.readouterr().out
    assert (tmp_path / "lso" / "abide" / "UM_1" / "held_out.json").is_file()
