"""Fetching raw data needs neither Apache Beam nor the pipeline (`medshard[acquire]`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_consent_info_and_download_plan_run_with_beam_unimportable(tmp_path):
    script = textwrap.dedent(f"""
        import importlib.abc, sys

        class NoBeam(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "apache_beam" or name.startswith("apache_beam."):
                    raise ImportError("apache_beam is not installed (test)")
                return None

        sys.meta_path.insert(0, NoBeam())
        import os
        os.environ["MEDSHARD_HOME"] = {str(tmp_path / "home")!r}
        from medshard.cli import main
        from medshard.sources import available_sources, source_class
        import medshard.acquire.download.run  # the download engine and providers
        for slug in available_sources():
            cls = source_class(slug)
            assert cls.download is not None, slug  # every built-in declares its route
        assert main(["consent", "ptb-xl", "--accept"]) == 0
        assert main(["consent", "--list"]) == 0
        assert main(["info", "vindr-cxr"]) == 0
        # a manual source: the steps are printed, then the missing copy is one line, exit 2
        assert main(["consent", "tuab", "--accept"]) == 0
        assert main(["download", "tuab", "--data-root", {str(tmp_path / "data")!r}]) == 2
        assert not any(m.startswith("apache_beam") for m in sys.modules)
        assert "medshard.pipeline.build" not in sys.modules
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")
    assert "Request access to the TUH EEG corpora" in proc.stdout  # the steps were printed
    assert "edf/train or edf/eval" in proc.stderr  # then what is missing, in one line
