"""``mlops init [FOLDER]``: a small working project to start from.

It writes three files -- a pipeline YAML, a steps module and a README -- that need nothing but
mlops (no pandas, no scikit-learn): two steps that make data and fit a line to it, with a param
to override and a model version registered by every run. Existing files are never overwritten.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import os
import re
import shlex

from .errors import MlopsError

__all__ = ["FILES", "init_project"]

_PIPELINE = """\
# @package _global_
# Make noisy points on a line and fit a slope to them. Every run registers a version of the model
# `{model}`; try: python -m mlops +pipeline={pipeline} steps.make_data.noise=0.5
pipeline:
  name: {pipeline}
model:
  name: {model}
  version: null        # null: each run registers a new version
steps:
  make_data:
    _target_: {module}.make_data
    n: 50
    noise: 0.1
    seed: 0
  fit:
    _target_: {module}.fit
    points: ${{step:make_data.points}}
  evaluate:
    _target_: {module}.evaluate
    slope: ${{step:fit.slope}}
    points: ${{step:make_data.points}}
"""

_STEPS = '''\
"""The steps of the `{pipeline}` pipeline: plain functions made steps with @step.

A step's parameters are its inputs (wired in conf/pipeline/{pipeline}.yaml) and its params; its
return annotation names its outputs.
"""

from __future__ import annotations

import logging
import random
from typing import Annotated

from mlops import get_step_context, step

log = logging.getLogger(__name__)


@step
def make_data(n: int = 50, noise: float = 0.1, seed: int = 0) -> Annotated[list, "points"]:
    """`n` points (x, 2x + noise)."""
    rng = random.Random(seed)
    points = [[x / n, 2 * x / n + rng.gauss(0, noise)] for x in range(n)]
    log.info("made %d points", len(points))
    return points


@step
def fit(points: list) -> Annotated[float, "slope"]:
    """The least-squares slope through the origin."""
    slope = sum(x * y for x, y in points) / sum(x * x for x, _ in points)
    print(f"fitted slope {{slope:.4f}}")
    return slope


@step
def evaluate(slope: float, points: list) -> Annotated[float, "mse"]:
    """The mean squared error of the fit, recorded with the model version."""
    mse = sum((y - slope * x) ** 2 for x, y in points) / len(points)
    get_step_context().model_version.log_metadata({{"slope": slope}})
    return mse
'''

_README = """\
# {pipeline}

A project made by `mlops init`. Run the pipeline, then look at what it did:

```bash
{run}
{report}
```

- `conf/pipeline/{pipeline}.yaml` declares the steps and their params; override one with
  `python -m mlops +pipeline={pipeline} steps.make_data.noise=0.5`.
- `{module}.py` holds the step functions.
- Runs, artifacts and versions of the model `{model}` are kept in `.mlops/`:
  `mlops runs`, `mlops show-run latest`, `mlops versions {model}`, `mlops diff {model} 1 2`.
"""

#: the files ``init`` writes, relative to the project folder
FILES = ("conf/pipeline/{pipeline}.yaml", "{module}.py", "README.md")


def _name(folder: str) -> str:
    """A pipeline name from the folder's name: ``my-project`` -> ``my_project``.

    Examples:
        >>> _name("/tmp/My Project-2"), _name("/tmp/3d")
        ('my_project_2', 'p_3d')
    """
    base = re.sub(r"[^0-9a-zA-Z_]+", "_", os.path.basename(os.path.abspath(folder))).strip("_")
    base = base.lower() or "project"
    return base if base[0].isalpha() else f"p_{base}"


def init_project(folder: str = ".") -> tuple[list[str], list[str]]:
    """Write the starter project into ``folder``; (the files written, the commands to run).

    Raises:
        MlopsError: one of the files exists already (nothing is written then).
    """
    pipeline = _name(folder)
    names = {"pipeline": pipeline, "model": f"{pipeline}_model", "module": f"{pipeline}_steps"}
    run = f"python -m mlops +pipeline={pipeline}"
    report = "mlops report run latest"
    contents = {
        FILES[0].format(**names): _PIPELINE.format(**names),
        FILES[1].format(**names): _STEPS.format(**names),
        FILES[2]: _README.format(run=run, report=report, **names),
    }
    existing = [rel for rel in contents if os.path.exists(os.path.join(folder, rel))]
    if existing:
        raise MlopsError(
            f"not overwriting {', '.join(existing)} in {os.path.abspath(folder)}; run "
            "`mlops init NEW_FOLDER` for a new project"
        )
    for rel, text in contents.items():
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
    cd = [] if os.path.abspath(folder) == os.getcwd() else [f"cd {shlex.quote(folder)}"]
    return list(contents), [*cd, run, report]
