"""Runner choices: the refused ones say why, and Flink (opt-in: it needs Beam's job-server jar)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medshard.cli import main
from medshard.errors import UserError
from medshard.pipeline.runner import beam_options


@pytest.mark.parametrize("args", [
    ["--runner=DaskRunner"],
    ["--runner", "apache_beam.runners.dask.dask_runner.DaskRunner"],
])
def test_dask_runner_is_refused_with_the_reason(args):
    with pytest.raises(UserError) as err:
        beam_options(1, args)
    message = str(err.value)
    assert "\n" not in message
    for why in ("Create, ParDo, GroupByKey and Flatten", "no-op", "last step",
                "--workers N"):
        assert why in message


def test_dask_runner_refusal_reaches_the_command_line_as_one_line(demo_raw, tmp_path, capsys):
    code = main(["build", "ptb-xl", "--data-root", str(demo_raw), "--out",
                 str(tmp_path / "out"), "--no-progress", "--", "--runner=DaskRunner"])
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing daskrunner" in err[0]
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_other_runners_pass_through():
    options = beam_options(1, ["--runner=PortableRunner", "--job_endpoint=localhost:1"])
    assert options.get_all_options()["runner"] == "PortableRunner"


FLINK_JAR = os.environ.get("MEDSHARD_FLINK_JOB_SERVER_JAR")


@pytest.mark.slow
@pytest.mark.skipif(not FLINK_JAR, reason="opt-in: set MEDSHARD_FLINK_JOB_SERVER_JAR to Beam's "
                    "Flink job-server jar (beam-runners-flink-<v>-job-server-<beam>.jar); it "
                    "cannot be fetched on this machine")
def test_flink_cluster_build_is_byte_identical(demo_raw, tmp_path):
    """Starts the Flink session cluster bundled in the `apache-flink` wheel and builds on it
    through Beam's FlinkRunner (job server from the jar), output compared with the default
    runner's."""
    pyflink = pytest.importorskip("pyflink", reason="pip install apache-flink (the Flink "
                                  "runtime is bundled in its wheel)")
    if shutil.which("java") is None:
        pytest.skip("Flink needs a Java runtime (java on PATH)")
    from medshard.pipeline.build import BuildConfig, run_build
    from tests.helpers import free_port, output_files, wait_for_port

    flink_home = Path(pyflink.__file__).parent
    env = {**os.environ, "FLINK_HOME": str(flink_home)}
    start, stop = flink_home / "bin" / "start-cluster.sh", flink_home / "bin" / "stop-cluster.sh"
    pool_port = free_port()
    # the SDK workers: an external pool of this interpreter, as the README's compose file runs
    pool = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                             f"--service_port={pool_port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["bash", str(start)], env=env, check=True, timeout=120)
    try:
        wait_for_port(pool_port)
        wait_for_port(8081, timeout_s=120)

        def build(out: Path, beam_args: list[str]) -> dict[str, bytes]:
            run_build(BuildConfig(sources=["ptb-xl", "chexpert"], data_root=demo_raw, out=out,
                                  progress=False, shard_size=400_000, beam_args=beam_args))
            return output_files(out)

        flink = build(tmp_path / "flink", [
            "--runner=FlinkRunner", "--flink_master=localhost:8081",
            f"--flink_job_server_jar={FLINK_JAR}", "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{pool_port}", "--parallelism=2"])
        assert flink == build(tmp_path / "local", [])
    finally:
        subprocess.run(["bash", str(stop)], env=env, timeout=120)
        pool.terminate()
        pool.wait(timeout=30)
