"""The reference training job on a real (demo) build: CPU smoke runs, exact resume, fusion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from medshard.cli import main
from medshard.jobs.models import Fusion, MultitaskModel, ResNet, masked_bce
from medshard.loaders import ShardDataset, ShardLoader

ROOT = Path(__file__).resolve().parents[1]

ECG_CONFIG = """
seed = 0
[data]
build = "{build}"
sources = ["ptb-xl"]
batch_size = 2
[model]
dim = 16
[model.options.resnet1d]
width = 8
depth = [1, 1, 1]
[train]
epochs = 2
deterministic = true
eval_bootstrap = 20
checkpoint_every = 1000
"""


@pytest.fixture
def ecg_config(demo_build, tmp_path):
    path = tmp_path / "ecg.toml"
    path.write_text(ECG_CONFIG.format(build=demo_build))
    return path


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", weights_only=False)["model"]


def test_one_ecg_epoch_writes_per_source_metrics_and_a_plot(ecg_config, demo_build, tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(ecg_config), "--out", str(out), "--set", "train.epochs=1"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    train_batches = len(ShardLoader(ShardDataset(str(demo_build), split="train", sources="ptb-xl",
                                                 decode=False), batch_size=2))
    assert report["steps"] == train_batches and report["epochs"] == 1
    assert set(report["splits"]) == {"val", "test"}
    for split, r in report["splits"].items():
        src = r["by_source"]["ptb-xl"]
        n = sum(1 for s in ShardDataset(str(demo_build), split=split, sources="ptb-xl", decode=False))
        assert src["n_samples"] == n
        assert src["labels_evaluated"] + len(src["labels_excluded"]) >= 1
        assert r["by_modality"]["ecg"]["sources"] == ["ptb-xl"]
        if src["labels_evaluated"]:
            assert 0.0 <= src["auc"] <= 1.0 and "ci" in src
    preds = dict(**__import__("numpy").load(out / "predictions-test.npz"))
    assert preds["score"].shape == preds["labels"].shape == preds["mask"].shape
    assert (out / "run.svg").read_text().startswith("<svg")


def test_mid_epoch_resume_in_a_new_process_gives_the_same_weights(ecg_config, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["train", str(ecg_config), "--out", str(whole)]) == 0
    assert main(["train", str(ecg_config), "--out", str(parts), "--max-steps", "1"]) == 0
    ckpt = torch.load(parts / "checkpoint.pt", weights_only=False)
    assert (ckpt["epoch"], ckpt["batches_done"], ckpt["done"]) == (0, 1, False)  # mid-epoch
    assert ckpt["loader"]["consumed"] == [2]
    first = _weights(parts)
    assert any(not torch.equal(first[k], v) for k, v in _weights(whole).items())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "medshard.jobs.train", str(ecg_config), "--out",
                    str(parts)], check=True, env=env, cwd=ROOT, capture_output=True, timeout=120)
    a, b = _weights(whole), _weights(parts)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    la = torch.load(whole / "checkpoint.pt", weights_only=False)["losses"]
    assert la == torch.load(parts / "checkpoint.pt", weights_only=False)["losses"]


def test_resume_refuses_another_config(ecg_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(ecg_config), "--out", str(out), "--max-steps", "1"]) == 0
    assert main(["train", str(ecg_config), "--out", str(out), "--set", "train.lr=0.5"]) == 2
    assert "another config" in capsys.readouterr().err


def test_config_errors_are_one_line(ecg_config, tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.toml")]) == 2
    assert main(["train", str(ecg_config), "--set", "train.epoch=2"]) == 2
    assert main(["train", str(ecg_config), "--set", "data.sources=[\"chexpert\"]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("medshard: error:") for line in err)
    assert "train.epoch" in err[1] and "no encoder" in err[2]


def test_multitask_ecg_and_cxr_with_mixing_weights(demo_build, tmp_path):
    cfg = tmp_path / "mt.toml"
    cfg.write_text(ECG_CONFIG.format(build=demo_build).replace(
        'sources = ["ptb-xl"]', 'weights = { ptb-xl = 1.0, chexpert = 2.0 }\n'
                                'size = { chest-xray = { image = [64, 64] } }'
    ).replace("[model]\n", '[model]\nencoders = { ecg = { signal = "resnet1d" }, '
                           'chest-xray = { image = "resnet2d" } }\n') +
        "[model.options.resnet2d]\nwidth = 4\ndepth = [1, 1]\n")
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.epochs=1"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["sources"] == ["chexpert", "ptb-xl"]
    test = report["splits"]["test"]
    assert set(test["by_source"]) == {"chexpert", "ptb-xl"}
    assert set(test["by_modality"]) == {"chest-xray", "ecg"}


@pytest.mark.parametrize("kind", ["late", "mlp", "attention"])
def test_fusion_of_multi_role_samples_with_a_missing_role(kind):
    torch.manual_seed(0)
    encoders = {"ehr": {"signal": ResNet(1, 3, 8, width=4, depth=(1,)),
                        "image": ResNet(2, 1, 8, width=4, depth=(1,))},
                "ecg": {"signal": ResNet(1, 3, 8, width=4, depth=(1,))}}
    model = MultitaskModel(encoders, kind, 8, vocabulary_size=5)
    batch = {"modality": ["ehr", "ehr", "ecg"],
             "signal": torch.randn(3, 3, 64),
             "image": [torch.rand(1, 32, 32), None, None]}  # sample 1 lacks its image
    logits = model(batch)
    assert logits.shape == (3, 5)
    loss = masked_bce(logits, torch.ones(3, 5), torch.tensor([[1.0] * 5] * 2 + [[1, 1, 0, 0, 0]]))
    loss.backward()
    assert model.encoders["ehr"]["image"].net[0].weight.grad.abs().sum() > 0
    if kind == "late":  # with a linear head, late fusion = the mean of per-role logits
        model.eval()
        ehr = {"modality": ["ehr"], "signal": batch["signal"][:1], "image": batch["image"][:1]}
        per_role = [model.head(model.encoders["ehr"][r](x if torch.is_tensor(x) else x[0][None]))
                    for r, x in (("signal", ehr["signal"]), ("image", ehr["image"]))]
        assert torch.allclose(model(ehr), (per_role[0] + per_role[1]) / 2, atol=1e-6)


def test_fusion_ignores_absent_roles():
    f = Fusion("attention", 2, 8)
    feats = torch.randn(2, 2, 8)
    present = torch.tensor([[True, False], [True, False]])
    changed = feats.clone()
    changed[:, 1] = 100.0
    assert torch.allclose(f(feats, present), f(changed, present), atol=1e-6)


def test_masked_loss_ignores_what_the_source_cannot_express():
    logits = torch.tensor([[2.0, -1.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    a = masked_bce(logits, torch.tensor([[1.0, 0.0, 0.0]]), mask)
    b = masked_bce(logits, torch.tensor([[1.0, 0.0, 1.0]]), mask)
    assert a == b
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, :2], torch.tensor([[1.0, 0.0]]))
    assert torch.allclose(a, want)


def test_ddp_with_torchrun_on_cpu(ecg_config, demo_build, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--standalone", "-m", "medshard.jobs.train", str(ecg_config), "--out", str(out),
         "--set", "train.epochs=1"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("run finished") == 1  # rank 0 reports
    n = sum(1 for _ in ShardDataset(str(demo_build), split="train", sources="ptb-xl", decode=False))
    report = json.loads((out / "metrics.json").read_text())
    assert report["steps"] == -(-(n // 2) // 2)  # each rank: n // 2 samples, batches of 2
    assert (out / "rng-0.pt").exists() and (out / "rng-1.pt").exists()


def test_resume_with_other_workers_falls_back_to_the_loader_state(ecg_config, tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(ecg_config), "--out", str(out), "--max-steps", "1"]) == 0
    assert main(["train", str(ecg_config), "--out", str(out), "--set", "data.num_workers=2",
                 "--set", "train.epochs=1"]) == 2  # epochs decide the schedule: another config
    with pytest.warns(UserWarning, match="loader's state"):
        assert main(["train", str(ecg_config), "--out", str(out),
                     "--set", "data.num_workers=2"]) == 0
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["done"] and ckpt["epoch"] == 2


@pytest.mark.parametrize(("spec", "shape"), [("resnet1d", (12, 500)), ("cnn_transformer", (16, 400)),
                                             ("resnet2d", (1, 64, 48)), ("cnn3d", (1, 16, 24, 24))])
def test_builtin_encoders_map_a_batch_to_features(spec, shape):
    from medshard.jobs.models import build_encoder

    enc = build_encoder(spec, shape[0], 8, {"width": 4} if spec != "cnn_transformer" else {},
                        shape[1:])
    x = torch.randn(3, *shape, requires_grad=True)
    y = enc(x)
    assert y.shape == (3, 8)
    y.sum().backward()
    assert x.grad.abs().sum() > 0


def test_external_encoders_need_their_library():
    from medshard.errors import UserError
    from medshard.jobs.models import build_encoder

    try:
        import timm  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="needs the timm package"):
            build_encoder("timm:resnet18", 3, 8, {}, (64, 64))
    with pytest.raises(UserError, match="unknown encoder"):
        build_encoder("resnet9000", 3, 8, {}, (64, 64))
