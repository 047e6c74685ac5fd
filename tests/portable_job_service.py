"""Beam's local job service (`local_job_service_main`), honouring `--direct_num_workers`.

Beam's local job service runs each job on an FnApiRunner built with one worker per
environment, whatever the job's options say (Beam 2.77, `BeamJob._invoke_runner`), so
an external worker pool only ever gets one SDK worker from it. Flink, Spark and Dataflow
start as many SDK workers as their parallelism asks. To exercise a pool of several
worker processes here, this entry point sets the runner's worker count from the job's
`direct_num_workers` and is otherwise Beam's job service unchanged.

    python -m tests.portable_job_service --port=PORT
"""

from __future__ import annotations

import signal
import sys

from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.portability.api import beam_job_api_pb2
from apache_beam.runners.portability import local_job_service, local_job_service_main
from apache_beam.runners.portability.fn_api_runner import fn_runner


def _invoke_runner(self):
    self.set_state(beam_job_api_pb2.JobState.RUNNING)
    options = self.pipeline_options()
    runner = fn_runner.FnApiRunner(provision_info=self._provision_info)
    # the options arrive as a JSON struct: numbers as text
    runner._num_workers = max(1, int(options.view_as(DirectOptions).direct_num_workers or 1))
    return runner.run_via_runner_api(self._pipeline_proto, options)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(0))
    local_job_service.BeamJob._invoke_runner = _invoke_runner
    local_job_service_main.run(sys.argv[1:])
