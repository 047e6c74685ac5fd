"""`pip install "medshard[torch]"` alone is enough to train (issue #20, item 10).

A fresh virtual environment (`python -m venv --without-pip`) sees only the distributions
of the torch extra's dependency closure, resolved from this checkout's pyproject.toml and
the installed packages' own metadata (markers and extras evaluated), each linked into its
site-packages, plus this checkout for medshard itself. No index is reached (tests run
offline) and nothing is installed twice: the closure's packages are the very ones CI
installs. In it, a 2-worker DataLoader epoch decodes every payload kind of two builds made
here with the ETL stack, and the ETL packages are shown to be absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from medshard.schemas.models import PAYLOAD_KINDS
from tests.test_payloads import built  # noqa: F401 - the payload-kinds build, reused here

ROOT = Path(__file__).resolve().parents[1]
ETL_ONLY = ["apache_beam", "pydicom", "mne", "wfdb", "nibabel", "cv2", "pyedflib", "SimpleITK"]


def extra_closure(extra: str) -> list[str]:
    """Distribution names medshard's base dependencies plus `extra` pull in, recursively."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    todo = [Requirement(r) for r in [*project["dependencies"], *optional[extra]]]
    seen: dict[str, set[str]] = {}
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # e.g. tomli on Python < 3.11 only
        name = canonicalize_name(req.name)
        if name == "medshard":  # a self-reference, medshard[other]: its extras' lists
            todo += [Requirement(r) for e in req.extras for r in optional[e]]
            continue
        if name in seen and req.extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(req.extras)
        for text in distribution(req.name).requires or []:
            sub = Requirement(text)
            envs = [{"extra": e} for e in ("", *sorted(seen[name]))]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                todo.append(sub)
    return sorted(seen)


def link_site(names: list[str], site: Path) -> None:
    """Link every top-level file and folder each distribution installed into `site`."""
    site.mkdir(parents=True)
    for name in names:
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            pytest.fail(f"{name} (torch extra closure) is not installed")
        base = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            target = site / top
            if (base / top).exists() and not target.exists():
                target.symlink_to(base / top)


SCRIPT = r"""
import importlib.util, json, sys
import medshard
from medshard.loaders import ShardLoader
absent = [m for m in json.loads(sys.argv[1]) if importlib.util.find_spec(m) is not None]
assert not absent, f"ETL packages visible: {absent}"
assert importlib.util.find_spec("PIL") is not None
seen, n = set(), 0
for build in sys.argv[2:]:
    ds = medshard.load(build, split=None, shuffle=False)
    loader = ShardLoader(ds, batch_size=4, num_workers=2, collate_fn=lambda b: b)
    for batch in loader:
        for s in batch:
            n += 1
            for role, desc in s["meta"]["payloads"].items():
                assert s[role] is not None, (s["key"], role)
                seen.add(desc["kind"])
print(json.dumps({"kinds": sorted(seen), "samples": n}))
"""


def test_the_torch_extra_alone_decodes_every_payload_kind(kit, built, tmp_path):  # noqa: F811
    site = tmp_path / "extra-site"
    link_site(extra_closure("torch"), site)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (own,) = (venv / "lib").glob("python*/site-packages")
    (own / "medshard-torch-extra.pth").write_text(f"{site}\n{ROOT}\n")
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run(
        [str(python), "-c", SCRIPT, json.dumps(ETL_ONLY), str(kit.out), str(built)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(got["kinds"]) == set(PAYLOAD_KINDS)
