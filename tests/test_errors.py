"""Every config mistake from the command line: one whole message, exit code 1, no traceback.

The scenarios are small pipelines in ``tests/conf/errors/conf/pipeline/error_*.yaml`` (a user
project with its own step module), plus overrides of the packaged iris pipelines. They all run
against one registry holding two versions of ``iris_classifier``, neither in a stage, and each
case checks that the registry's files are byte for byte what they were.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, run_mlops

import mlops

PROJECT = ROOT / "tests" / "conf" / "errors"

_FIX_STAGE = (
    "Run python -m mlops +pipeline=train_and_promote to register and promote a version, promote "
    "one with `mlops promote iris_classifier VERSION {stage}`, or pass model.version=latest."
)
_PIPELINES = (
    "do_predictions, do_predictions_from_context, error_bad_target, error_cycle, "
    "error_missing_argument, error_unknown_output, error_unknown_param, error_unknown_step, "
    "train_and_promote"
)

CASES = [
    pytest.param(
        ["+pipeline=nope"],
        f"+pipeline=nope: no pipeline named 'nope'. Available pipelines: {_PIPELINES}. "
        "To add it, create conf/pipeline/nope.yaml in the current folder.",
        id="unknown-pipeline",
    ),
    pytest.param(
        ["+pipeline=train_and_promot"],
        "+pipeline=train_and_promot: no pipeline named 'train_and_promot'. Did you mean "
        f"'train_and_promote'? Available pipelines: {_PIPELINES}. To add it, create "
        "conf/pipeline/train_and_promot.yaml in the current folder.",
        id="unknown-pipeline-nearest",
    ),
    pytest.param(
        [],
        f"pipeline: no pipeline selected: run with +pipeline=NAME. Available pipelines: "
        f"{_PIPELINES}.",
        id="no-pipeline",
    ),
    pytest.param(
        ["+pipeline=error_bad_target"],
        "steps.numbers._target_: cannot import module 'error_stepz' of 'error_stepz.numbers': "
        "No module named 'error_stepz'. Check the spelling, and that the module is importable "
        "from the current folder (or installed).",
        id="target-does-not-import",
    ),
    pytest.param(
        ["+pipeline=train_and_promote", "steps.train._target_=mlops.examples.iris.steps.trian"],
        "steps.train._target_: module 'mlops.examples.iris.steps' has no 'trian'. Did you mean "
        "'train'? Its steps: evaluate, load_data, load_inference_data, predict, "
        "predict_with_context, split, train.",
        id="target-no-such-function",
    ),
    pytest.param(
        ["+pipeline=error_missing_argument"],
        "steps.total: missing argument 'values' of error_steps.total(): set steps.total.values "
        "to a value, or to a reference such as ${step:OTHER_STEP.OUTPUT}",
        id="missing-argument",
    ),
    pytest.param(
        ["+pipeline=error_unknown_param"],
        "steps.numbers.sise: error_steps.numbers() has no parameter 'sise'. Did you mean "
        "'size'? Its parameters: size.",
        id="unknown-param",
    ),
    pytest.param(
        ["+pipeline=train_and_promote", "steps.train.Cc=10"],
        "steps.train.Cc: mlops.examples.iris.steps.train() has no parameter 'Cc'. Did you mean "
        "'C'? Its parameters: X_train, y_train, C, max_iter.",
        id="unknown-param-override",
    ),
    pytest.param(
        ["+pipeline=train_and_promote", "steps.trian.C=10"],
        "steps.trian: this step has no _target_: set it to the import path of the step function "
        "(e.g. mypackage.steps.train), or fix the step's name in the override. Did you mean "
        "'train'?",
        id="unknown-step-override",
    ),
    pytest.param(
        ["+pipeline=error_unknown_step"],
        "steps.total.values: ${step:numbrs.numbers} refers to step 'numbrs', which this pipeline "
        "does not have. Did you mean 'numbers'? Steps: numbers, total.",
        id="reference-unknown-step",
    ),
    pytest.param(
        ["+pipeline=error_unknown_output"],
        "steps.total.values: step 'numbers' has no output 'number'. Did you mean 'numbers'? "
        "Its outputs: numbers.",
        id="reference-unknown-output",
    ),
    pytest.param(
        ["+pipeline=error_cycle"],
        "steps: the steps form a cycle: a -> b -> a. Remove one of these references so that the "
        "steps can be ordered.",
        id="cycle-two-steps",
    ),
    pytest.param(
        ["+pipeline=do_predictions", "model.version=prod"],
        "model.version: unknown stage 'prod': use a version number, 'latest', or one of "
        "'staging', 'production', 'archived'.",
        id="unknown-stage",
    ),
    pytest.param(
        ["+pipeline=do_predictions", "model.version=7"],
        "model.version: model 'iris_classifier' has no version 7 (it has versions 1 to 2)",
        id="unknown-version",
    ),
    pytest.param(
        ["+pipeline=do_predictions"],
        "model.version: model 'iris_classifier' has no version in stage 'production'. "
        + _FIX_STAGE.format(stage="production"),
        id="no-version-in-production",
    ),
    pytest.param(
        ["+pipeline=do_predictions", "model.version=staging"],
        "model.version: model 'iris_classifier' has no version in stage 'staging'. "
        + _FIX_STAGE.format(stage="staging"),
        id="no-version-in-staging",
    ),
    pytest.param(
        ["+pipeline=train_and_promote", "+modle.name=x"],
        "modle: unknown config key. Did you mean 'model'? Top-level keys: pipeline, model, steps, "
        "registry, executor, cache, plan, report.",
        id="unknown-top-level-key",
    ),
    pytest.param(
        ["+pipeline=train_and_promote", "steps.train._target_=123"],
        "steps.train._target_: must be a string, the import path of the step function (e.g. "
        "mypackage.steps.train); got 123 (int)",
        id="target-not-a-string",
    ),
    pytest.param(
        ["+pipeline=train_and_promote", "executor.num_workers=-1"],
        "executor.num_workers: must be a whole number of at least 1 (or null: one per core), "
        "got -1",
        id="executor-num-workers-negative",
    ),
    pytest.param(
        ["+pipeline=train_and_promote", "executor=processes", "executor.num_workers=1.5"],
        "executor.num_workers: must be a whole number of at least 1 (or null: one per core), "
        "got 1.5",
        id="executor-num-workers-not-whole",
    ),
    pytest.param(
        ["+pipeline=train_and_promote", "executor=threds"],
        "executor: unknown executor 'threds'. Did you mean 'threads'? Choose one of: sync, "
        "threads, processes, distributed (e.g. executor=sync).",
        id="executor-unknown",
    ),
    pytest.param(
        ["+pipeline=train_and_promote", "model.name=" + "m" * 256],
        "model.name: invalid model name '" + "m" * 40 + "...': 256 characters; use at most 200",
        id="model-name-too-long",
    ),
]


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` and a hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The error project copied to a temporary folder, and a registry with v1 and v2, unstaged."""
    base = tmp_path_factory.mktemp("errors")
    folder = base / "project"
    shutil.copytree(PROJECT, folder)
    registry = base / "registry"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)  # no conf/ here: the packaged pipelines
        for _ in range(2):
            mlops.run(
                "train_and_promote",
                [f"registry.uri={registry}", "steps.promote.threshold=1.01"],
                quiet=True,
            )
    yield folder, registry


@pytest.mark.parametrize(("args", "message"), CASES)
def test_error_message(project: tuple[Path, Path], args: list[str], message: str) -> None:
    """The whole message on stderr, exit code 1, no traceback, and the registry unchanged."""
    folder, registry = project
    before = _snapshot(registry)
    res = run_mlops(*args, f"registry.uri={registry}", cwd=folder)
    assert (res.returncode, res.stderr) == (1, f"Error: {message}\n")
    assert "Traceback" not in res.output
    assert _snapshot(registry) == before


def test_full_error_shows_traceback(project: tuple[Path, Path]) -> None:
    """HYDRA_FULL_ERROR=1 shows the traceback, ending in the same message."""
    folder, registry = project
    full = {"HYDRA_FULL_ERROR": "1"}
    res = run_mlops("+pipeline=error_cycle", f"registry.uri={registry}", cwd=folder, env=full)
    assert res.returncode == 1
    assert "Traceback (most recent call last)" in res.stderr
    assert "mlops.errors.CycleError: steps: the steps form a cycle: a -> b -> a." in res.stderr
