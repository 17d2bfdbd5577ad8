"""Run the Python pipelines: ``python examples/python_pipelines/run.py [OVERRIDE ...]``.

The registry is ``.mlops`` in the current folder, as for ``python -m mlops``; overrides are the
command line's (``registry.uri=/tmp/reg``, ``executor=sync``, ``steps.train.C=10`` ...) and
apply to every pipeline run here.
"""

import sys

from iris_pipelines import do_predictions, do_predictions_from_context, train_and_promote

if __name__ == "__main__":
    overrides = sys.argv[1:]
    train_and_promote.run(overrides)
    run = do_predictions.run(overrides)
    print("predictions:", list(run.load("predict", "predictions"))[:10], "...")
    do_predictions_from_context.run(overrides)
