"""The CLI and API as a newcomer meets them (issue #20, items 6, 8, 9, 11, 12)."""

from __future__ import annotations

import argparse
import inspect
import shutil

import pytest

import medshard
from medshard.cli import main, make_parser
from medshard.loaders import ShardDataset


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = make_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


def test_top_level_help_says_what_medshard_does_and_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "turns public clinical datasets" in text and "medshard demo demo-out" in text
    parser = make_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helped = {c.dest: c.help for c in sub._choices_actions}
    assert set(helped) == set(sub.choices)
    for name, line in helped.items():
        assert line and name in text, name


def test_every_build_option_has_help_and_shows_its_default(capsys):
    build = _subparser("build")
    for action in build._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, action.dest
        if action.option_strings and not action.required:
            assert "default" in action.help, action.option_strings
    fmt = next(a for a in build._actions if a.dest == "format")
    assert "tar shards only" in fmt.help
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    assert "(default: 512MB)" in " ".join(capsys.readouterr().out.split())


def _build(demo_raw, out, *sources: str, extra: tuple[str, ...] = ()) -> int:
    return main(["build", *sources, "--data-root", str(demo_raw), "--out", str(out),
                 "--no-progress", *extra])


def test_building_into_another_build_is_refused_unless_overwrite(demo_raw, tmp_path, capsys):
    out = tmp_path / "out"
    assert _build(demo_raw, out, "ptb-xl") == 0
    ptbxl = sorted(p.relative_to(out) for p in out.rglob("ptb-xl-*"))
    assert ptbxl
    assert _build(demo_raw, out, "ptb-xl") == 0  # same config and sources: resumes
    assert "already built" in capsys.readouterr().out
    assert _build(demo_raw, out, "chexpert") == 2  # would orphan ptb-xl's shards
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds another build" in err[0] and "--overwrite" in err[0]
    assert all((out / p).exists() for p in ptbxl)  # nothing touched
    assert _build(demo_raw, out, "chexpert", extra=("--overwrite",)) == 0
    assert not list(out.rglob("ptb-xl*"))  # what the new manifest does not list is gone
    capsys.readouterr()
    assert main(["validate", str(out)]) == 0


def test_validate_reports_files_no_manifest_lists(demo_raw, tmp_path, capsys):
    out = tmp_path / "out"
    assert _build(demo_raw, out, "ptb-xl") == 0
    shard = next((out / "webdataset").rglob("*.tar"))
    stray = out / "webdataset" / "chexpert" / "train" / "chexpert-train-000000.tar"
    stray.parent.mkdir(parents=True)
    shutil.copyfile(shard, stray)
    capsys.readouterr()
    assert main(["validate", str(out)]) == 1
    text = capsys.readouterr().out
    assert "webdataset/chexpert/train/chexpert-train-000000.tar: not listed" in text


@pytest.mark.parametrize("what", ["file", "foreign"])
def test_out_that_is_a_file_or_not_a_build_is_one_line_exit_2(demo_raw, tmp_path, capsys, what):
    out = tmp_path / "out"
    if what == "file":
        out.write_text("not a folder")
    else:
        out.mkdir()
        (out / "thesis.tex").write_text("precious")
    assert _build(demo_raw, out, "ptb-xl") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("medshard: error: --out")
    assert ("is a file" if what == "file" else "not a medshard build") in err[0]
    assert what == "file" or (out / "thesis.tex").read_text() == "precious"


def test_load_has_the_real_signature_label_names_and_flat_meta(demo_raw, tmp_path):
    assert inspect.signature(medshard.load).parameters == inspect.signature(
        ShardDataset).parameters
    assert "split" in (medshard.load.__doc__ or "")
    out = tmp_path / "out"
    assert _build(demo_raw, out, "ptb-xl", "chexpert") == 0
    ds = medshard.load(str(out), split=None, shuffle=False)
    assert ds.label_names and ds.label_names[0] == ds.label_names[0].strip()
    seen = set()
    for s in ds:
        assert len(s["labels"]) == len(ds.label_names) == len(s["label_mask"])
        named = {ds.label_names[i] for i in s["labels"].nonzero().flatten().tolist()}
        assert named == set(_labels_of(out, s["key"]))
        assert "meta" not in s["meta"] and "sex" in s["meta"]  # the source's fields, flat
        seen.add(s["source"])
    assert seen == {"ptb-xl", "chexpert"}


def _labels_of(out, key: str) -> list[str]:
    import pyarrow.parquet as pq

    rows = pq.read_table(out / "index.parquet", columns=["key", "labels"]).to_pylist()
    return next(r["labels"] for r in rows if r["key"] == key)


def test_demo_says_what_it_does_and_what_to_try_next(tmp_path, capsys, monkeypatch):
    from medshard.testing import demo

    monkeypatch.setattr(demo, "demo_sources", lambda: ["ptb-xl"])
    assert main(["demo", str(tmp_path / "demo-out")]) == 0
    captured = capsys.readouterr()
    assert "writing the miniature raw copy of ptb-xl" in captured.err
    assert "building 1 sources into" in captured.err
    build = tmp_path / "demo-out" / "build"
    for line in (f"medshard inspect {build}", f"medshard validate {build}",
                 "import medshard; ds = medshard.load("):
        assert line in captured.out


def test_published_counts_are_declared_once_and_inspect_flags_a_difference(demo_raw, tmp_path,
                                                                            capsys):
    from medshard.sources import available_sources, source_class

    pub = source_class("ptb-xl").info.published_counts
    assert (pub.train, pub.test, pub.unit) == (17476, 4361, "records")
    assert all(source_class(s).info.published_counts for s in available_sources())
    assert main(["info", "ptb-xl"]) == 0
    assert "published:  train 17,476, test 4,361 records" in capsys.readouterr().out
    out = tmp_path / "out"
    assert _build(demo_raw, out, "ptb-xl") == 0
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "published counts, in records (CLIMB A.2)" in text
    assert "17,476; this build" in text and "DIFFERS by" in text  # the miniature is smaller


def test_a_mixed_modality_batch_groups_by_modality(demo_raw, tmp_path):
    import torch

    from medshard.loaders import ShardLoader, collate_by_modality

    out = tmp_path / "out"
    assert _build(demo_raw, out, "ptb-xl", "chexpert") == 0
    ds = medshard.load(str(out), split=None, shuffle=False)
    loader = ShardLoader(ds, batch_size=64, num_workers=0, collate_fn=collate_by_modality)
    (batch,) = list(loader)  # one batch of both sources
    assert set(batch) == {"ecg", "chest-xray"}
    ecg, cxr = batch["ecg"], batch["chest-xray"]
    assert isinstance(ecg["signal"], torch.Tensor) and ecg["signal"].shape[1:] == (12, 5000)
    assert "image" not in ecg and "signal" not in cxr  # no None padding across modalities
    assert all(isinstance(im, torch.Tensor) for im in cxr["image"])
    assert ecg["labels"].shape[1] == len(ds.label_names)
