"""The reference training job on a real (demo) build: CPU smoke runs, exact resume, fusion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
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
    preds = dict(np.load(out / "predictions-test.npz"))
    assert preds["score"].shape == preds["labels"].shape == preds["mask"].shape
    svg = ElementTree.fromstring((out / "run.svg").read_text())
    ns = "{http://www.w3.org/2000/svg}"
    assert len(svg.find(f"{ns}polyline").get("points").split()) == report["steps"]  # loss curve
    assert any(el.text == "ptb-xl" for el in svg.iter(f"{ns}text"))  # AUC bar label


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


def _multi_role_build(root: Path) -> Path:
    """A MIMIC-IV-shaped build: each sample carries a signal and (mostly) an image.

    Random payloads: this checks fusion's plumbing, not any clinical signal.
    """
    import hashlib
    import io

    from PIL import Image

    from medshard.schemas.models import Manifest, ShardInfo, SourceSummary, SplitCounts
    from medshard.sharding.members import json_bytes, npy_bytes
    from medshard.sharding.wds import TarShardWriter

    rng = np.random.default_rng(0)
    shards, counts = [], {}
    for split, n in (("train", 8), ("test", 4)):
        path = f"mimic-iv/{split}/mimic-iv-{split}-000000.tar"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        with open(root / path, "wb") as fh:
            writer = TarShardWriter(fh)
            for i in range(n):
                members = [("signal.npy", npy_bytes(rng.normal(size=(12, 256)).astype(np.float32)))]
                meta = {"key": f"mimiciv_{split}_{i}", "source": "mimic-iv", "modality": "ehr",
                        "split": split, "subject": f"{split}{i}", "task": "classification",
                        "labels": [["ehr.in-hospital-death-48h", "ehr.no-in-hospital-death-48h"][i % 2]],
                        "source_labels": {}, "meta": {}, "provenance": {},
                        "payloads": {"signal": {"kind": "signal", "member": "signal.npy",
                                                "sampling_rate_hz": 500.0, "n_samples": 256}}}
                if i % 4 != 1:  # some stays have no radiograph
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 255, (40, 48), dtype=np.uint8)).save(buf, "PNG")
                    members.append(("image.png", buf.getvalue()))
                    meta["payloads"]["image"] = {"kind": "image", "member": "image.png",
                                                 "height": 40, "width": 48, "bit_depth": 8}
                meta["members"] = [m for m, _ in members]
                writer.write(meta["key"], [("json", json_bytes(meta)), *members])
            writer.close()
        blob = (root / path).read_bytes()
        shards.append(ShardInfo(path=path, format="webdataset", source="mimic-iv", split=split,
                                samples=n, bytes=len(blob), sha256=hashlib.sha256(blob).hexdigest()))
        counts[split] = SplitCounts(written=n, samples=n)
    manifest = Manifest(medshard_version="0", config={}, config_hash="0", vocabulary_version="0",
                        pseudonym_key_id="t", shards=shards,
                        sources={"mimic-iv": SourceSummary(version="t", license="t", access="open",
                                                           modality="ehr", counts=counts)})
    (root / "manifest.json").write_text(manifest.model_dump_json())
    return root


def test_fusion_over_pretrained_frozen_encoders_end_to_end(demo_build, tmp_path):
    options = ('[model.options.resnet1d]\nwidth = 4\ndepth = [1, 1, 1]\n'
               '[model.options.resnet2d]\nwidth = 4\ndepth = [1, 1]\n')
    pre = tmp_path / "pre.toml"
    pre.write_text(
        f'seed = 0\n[data]\nbuild = "{demo_build}"\nbatch_size = 4\n'
        'weights = { ptb-xl = 1.0, chexpert = 1.0 }\nsize = { chest-xray = { image = [64, 64] } }\n'
        '[model]\ndim = 16\nencoders = { ecg = { signal = "resnet1d" }, '
        'chest-xray = { image = "resnet2d" } }\n' + options +
        '[train]\neval_bootstrap = 0\n')
    assert main(["train", str(pre), "--out", str(tmp_path / "pre"), "--set",
                 'data.eval_splits=["test"]']) == 0
    multitask = json.loads((tmp_path / "pre" / "metrics.json").read_text())  # ECG + CXR, weighted
    assert multitask["sources"] == ["chexpert", "ptb-xl"]
    assert set(multitask["splits"]["test"]["by_source"]) == {"chexpert", "ptb-xl"}
    assert set(multitask["splits"]["test"]["by_modality"]) == {"chest-xray", "ecg"}
    build = _multi_role_build(tmp_path / "mimic")
    fuse = tmp_path / "fuse.toml"
    fuse.write_text(
        f'seed = 0\n[data]\nbuild = "{build}"\nbatch_size = 4\neval_splits = ["test"]\n'
        'size = { ehr = { image = [64, 64] } }\n'
        '[model]\ndim = 16\nfusion = "attention"\nfreeze_encoders = true\n'
        f'init = "{tmp_path / "pre" / "checkpoint.pt"}"\n'
        'init_from = { "ehr.signal" = "ecg.signal", "ehr.image" = "chest-xray.image" }\n'
        'encoders = { ehr = { signal = "resnet1d", image = "resnet2d" } }\n' + options +
        '[train]\neval_bootstrap = 0\nlr = 0.01\n')
    assert main(["train", str(fuse), "--out", str(tmp_path / "fuse")]) == 0
    before, after = _weights(tmp_path / "pre"), _weights(tmp_path / "fuse")
    for (src, dst) in (("encoders.ecg.signal.", "encoders.ehr.signal."),
                       ("encoders.chest_xray.image.", "encoders.ehr.image.")):
        keys = [k for k in before if k.startswith(src)]
        assert keys and all(torch.equal(before[k], after[dst + k[len(src):]]) for k in keys)
    assert any(k.startswith("fusions.ehr.") for k in after)
    report = json.loads((tmp_path / "fuse" / "metrics.json").read_text())
    assert report["splits"]["test"]["by_source"]["mimic-iv"]["n_samples"] == 4
    assert report["splits"]["test"]["by_modality"]["ehr"]["sources"] == ["mimic-iv"]
