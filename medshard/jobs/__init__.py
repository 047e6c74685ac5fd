"""Jobs that turn a build into CLIMB-comparable numbers: training, few-shot and OOD manifests.

`medshard.jobs.fewshot` and `medshard.jobs.ood` need no torch; `medshard.jobs.train`
needs `medshard[torch]`.
"""
