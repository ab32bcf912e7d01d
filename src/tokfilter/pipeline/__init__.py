"""`tokfilter run` / `tokfilter demo`: the method end to end, one cached step per stage, into one directory.

    experiment.py  the experiment file: TOML -> typed sections (one loader: tokfilter.config)
    cache.py       each step's result cached under a hash of its config and its inputs' keys
    context.py     what every step reads: the experiment, the output directory, earlier steps' results
    steps/         one small module per stage (corpus ... report): NAME, config(ctx), NEEDS, run(ctx)
    results.py     the results.json schema, written once
    run.py         the order of the steps, written once
    cli.py         the `demo` and `run` commands

Import `tokfilter.pipeline.run.run_pipeline` to run an experiment from Python (it loads torch).
"""

from tokfilter.pipeline.experiment import Experiment, load_experiment, shipped_experiment

__all__ = ["Experiment", "load_experiment", "shipped_experiment"]
