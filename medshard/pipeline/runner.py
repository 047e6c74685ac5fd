"""Beam runner options: the in-process runner by default, any other runner by pass-through.

The default names Beam's DirectRunner explicitly, in `in_memory` mode for one worker
and `multi_processing` mode for several, so nothing is downloaded. Two modes are
refused because they lose data silently (see ARCHITECTURE.md): the DirectRunner's
`multi_threading` mode and the experimental DaskRunner.
"""

from __future__ import annotations

from medshard.errors import UserError

REFUSED = {
    "multi_threading": "the DirectRunner's multi_threading mode drops elements silently; "
    "use --workers N (multi_processing) instead",
    "daskrunner": "Beam's DaskRunner reported success while writing nothing in our tests; "
    "use the default runner, Flink, Spark, Dataflow or PortableRunner",
}


def beam_options(workers: int, beam_args: list[str]):
    """PipelineOptions for `workers` local processes, or for the runner named in `beam_args`."""
    from apache_beam.options.pipeline_options import (
        DirectOptions,
        PipelineOptions,
        StandardOptions,
    )

    lowered = " ".join(beam_args).lower()
    for word, why in REFUSED.items():
        if word in lowered:
            raise UserError(f"refusing {word}: {why}")
    options = PipelineOptions(beam_args)
    std = options.view_as(StandardOptions)
    if std.runner is None:
        std.runner = "DirectRunner"
        direct = options.view_as(DirectOptions)
        direct.direct_running_mode = "in_memory" if workers == 1 else "multi_processing"
        direct.direct_num_workers = workers
    return options
