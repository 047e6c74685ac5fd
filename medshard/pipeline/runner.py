"""Beam runner options: the in-process runner by default, any other runner by pass-through.

The default names Beam's DirectRunner explicitly, in `in_memory` mode for one worker
and `multi_processing` mode for several, so nothing is downloaded. Two modes are
refused because they lose data silently (see ARCHITECTURE.md): the DirectRunner's
`multi_threading` mode and the experimental DaskRunner.

Why the DaskRunner loses output (Beam 2.77, `apache_beam/runners/dask/`, read here):
its translator knows four primitives (Create, ParDo, GroupByKey, Flatten); every other
transform (Impulse, Read, Reshuffle, WindowInto, the writes' finalize steps) becomes an
identity, and only the Dask bag of the *last* leaf transform is computed, so a branch
that does not feed that leaf (e.g. WriteToText's write, reached through side inputs)
never runs while the job reports DONE. For this build's graph it would also run every
shard in one Dask task (Reshuffle is an identity and Create packs 128 elements per
partition), and it reports no metrics. A build that ran no shard would be caught by
the driver's check that every planned shard left its part, but a runner that neither
spreads the work nor reports it is not offered.
"""

from __future__ import annotations

from medshard.errors import UserError

REFUSED = {
    "multi_threading": "the DirectRunner's multi_threading mode drops elements silently; "
    "use --workers N (multi_processing) instead",
    "daskrunner": "Beam's DaskRunner translates only Create, ParDo, GroupByKey and Flatten, "
    "turns every other transform into a no-op and computes only the last step, so it "
    "reports success for work it never ran (and would run all shards in one task); use "
    "the default runner (--workers N), PortableRunner, Flink, Spark or Dataflow",
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
