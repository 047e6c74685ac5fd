"""Small helpers shared by tests."""

from __future__ import annotations

from pathlib import Path


def output_files(out: Path) -> dict[str, bytes]:
    """Every published file of a build (shards, index, manifest, quarantine) -> bytes."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_file() and not rel.startswith(".medshard/"):
            files[rel] = p.read_bytes()
    return files


def opencv_frames(video: Path | bytes, suffix: str = ".mp4") -> tuple[list, float, int]:
    """Every frame (BGR arrays), the fps and the frame count as OpenCV reads `video` (a file,
    or encoded bytes written to a temporary file with `suffix`): the independent decoder
    the video tests compare against."""
    import tempfile

    import cv2

    if isinstance(video, bytes):
        with tempfile.NamedTemporaryFile(suffix=suffix) as f:
            f.write(video)
            f.flush()
            return opencv_frames(Path(f.name))
    cap = cv2.VideoCapture(str(video))
    assert cap.isOpened(), video
    fps, count = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, fps, count


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 60) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f}s")


class PortableServices:
    """Beam's job service and an external SDK worker pool, each in its own process, on
    loopback: the Fn API path that Flink, Spark and Dataflow use. Context manager."""

    def __init__(self, env: dict[str, str] | None = None, workers: int = 1) -> None:
        import os
        import sys

        self.env = dict(os.environ if env is None else env)
        # the pool starts workers as `python`: it must be this interpreter
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.job_port, self.pool_port = free_port(), free_port()
        self.procs: list = []
        # Beam's job service gives an external pool one worker; ours honours the job's
        # --direct_num_workers (tests/portable_job_service.py)
        self.workers = workers

    def beam_args(self) -> list[str]:
        return ["--runner=PortableRunner", f"--job_endpoint=localhost:{self.job_port}",
                "--environment_type=EXTERNAL",
                f"--environment_config=localhost:{self.pool_port}",
                *([f"--direct_num_workers={self.workers}"] if self.workers > 1 else [])]

    def __enter__(self) -> PortableServices:
        import subprocess
        import sys

        service = ("tests.portable_job_service" if self.workers > 1
                   else "apache_beam.runners.portability.local_job_service_main")
        repo = Path(__file__).resolve().parent.parent
        self.procs = [
            subprocess.Popen([sys.executable, "-m", service, f"--port={self.job_port}"],
                             env=self.env, cwd=repo,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                              f"--service_port={self.pool_port}"], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ]
        try:
            for port in (self.job_port, self.pool_port):
                wait_for_port(port)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            p.terminate()
            p.wait(timeout=30)
