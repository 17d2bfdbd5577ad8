"""A tiny user project for the cache and plan tests: light steps, a helper module, a model.

``make_project(folder)`` writes ``conf/pipeline/*.yaml`` and a package of step modules named
uniquely per project (so that in-process tests never share imported modules), and returns a
:class:`Project` that runs pipelines in-process (``run``, ``plan``) with the folder as cwd.
"""

from __future__ import annotations

import io
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HELPERS = '''\
"""Helpers of the project's steps."""

SCALE_DIGITS = 6


def scale(value, factor):
    return round(value * factor, SCALE_DIGITS)
'''

STEPS = '''\
"""The project's steps."""

from typing import Annotated

from mlops import get_step_context, step

from .helpers import scale

OFFSET = 1


@step
def make(n: int = 3) -> Annotated[list, "numbers"]:
    return list(range(n))


@step
def total(numbers: list, factor: float = 1.0) -> Annotated[float, "total"]:
    return scale(sum(numbers), factor) + OFFSET


@step
def parity(numbers: list) -> Annotated[int, "parity"]:
    return len(numbers) % 2


@step
def report(parity: int) -> Annotated[str, "report"]:
    return f"parity {parity}"


@step(enable_cache=False)
def notify(total: float) -> Annotated[str, "note"]:
    return f"total is {total}"


@step(enable_cache=False)
def promote(total: float) -> Annotated[str, "stage"]:
    get_step_context().model_version.set_stage("production", force=True)
    return "production"


@step
def use_model(total: float, numbers: list) -> Annotated[float, "used"]:
    return total * len(numbers)


@step
def use_model_from_context(numbers: list) -> Annotated[int, "used"]:
    return get_step_context().model_version.number * len(numbers)
'''

TINY = """\
# @package _global_
pipeline:
  name: tiny
steps:
  make:
    _target_: {pkg}.steps.make
    n: 3
  total:
    _target_: {pkg}.steps.total
    numbers: ${{step:make.numbers}}
    factor: 1.0
  parity:
    _target_: {pkg}.steps.parity
    numbers: ${{step:make.numbers}}
  report:
    _target_: {pkg}.steps.report
    parity: ${{step:parity.parity}}
  notify:
    _target_: {pkg}.steps.notify
    total: ${{step:total.total}}
"""

TINY_TRAIN = """\
# @package _global_
pipeline:
  name: tiny_train
model:
  name: tiny_model
  version: null
steps:
  make:
    _target_: {pkg}.steps.make
    n: 3
  total:
    _target_: {pkg}.steps.total
    numbers: ${{step:make.numbers}}
  promote:
    _target_: {pkg}.steps.promote
    total: ${{step:total.total}}
"""

TINY_USE = """\
# @package _global_
pipeline:
  name: tiny_use
model:
  name: tiny_model
  version: production
steps:
  make:
    _target_: {pkg}.steps.make
    n: 4
  use:
    _target_: {pkg}.steps.use_model
    total: ${{model:total}}
    numbers: ${{step:make.numbers}}
"""

TINY_CONTEXT = """\
# @package _global_
pipeline:
  name: tiny_context
model:
  name: tiny_model
  version: production
steps:
  make:
    _target_: {pkg}.steps.make
    n: 4
  use:
    _target_: {pkg}.steps.use_model_from_context
    numbers: ${{step:make.numbers}}
"""


@dataclass
class Project:
    folder: Path
    pkg: str

    @property
    def registry(self) -> str:
        return str(self.folder / "registry")

    def path(self, module: str) -> Path:
        return self.folder / self.pkg / f"{module}.py"

    def edit(self, module: str, old: str, new: str) -> None:
        """Replace ``old`` by ``new`` in a module of the project (which must contain it)."""
        p = self.path(module)
        text = p.read_text()
        assert old in text, (old, p)
        p.write_text(text.replace(old, new))

    @contextmanager
    def cwd(self) -> Any:
        before = os.getcwd()
        os.chdir(self.folder)
        try:
            yield
        finally:
            os.chdir(before)

    def _compose(self, pipeline: str, overrides: list[str]) -> Any:
        from hydra import compose, initialize_config_module
        from hydra.core.global_hydra import GlobalHydra

        from mlops.schema import register

        register()
        GlobalHydra.instance().clear()
        with initialize_config_module("mlops.conf", version_base=None):
            return compose(
                "mlops",
                overrides=[f"+pipeline={pipeline}", f"registry.uri={self.registry}", *overrides],
            )

    def run(self, pipeline: str = "tiny", *overrides: str) -> dict[str, str]:
        """Run in-process; the status of each step (``ran`` / ``cached``)."""
        from mlops.api import run_config

        with self.cwd():
            result = run_config(self._compose(pipeline, list(overrides)), stream=io.StringIO())
        return dict(result.steps)  # type: ignore[union-attr,arg-type]

    def plan(self, pipeline: str = "tiny", *overrides: str) -> str:
        """The text ``plan=true`` prints."""
        from mlops.api import run_config

        out = io.StringIO()
        with self.cwd():
            run_config(self._compose(pipeline, ["plan=true", *overrides]), stream=out)
        return out.getvalue()


def make_project(folder: Path) -> Project:
    pkg = f"tinyproj_{uuid.uuid4().hex[:10]}"
    (folder / "conf" / "pipeline").mkdir(parents=True)
    for name, text in {
        "tiny": TINY,
        "tiny_train": TINY_TRAIN,
        "tiny_use": TINY_USE,
        "tiny_context": TINY_CONTEXT,
    }.items():
        (folder / "conf" / "pipeline" / f"{name}.yaml").write_text(text.format(pkg=pkg))
    (folder / pkg).mkdir()
    (folder / pkg / "__init__.py").write_text("")
    (folder / pkg / "helpers.py").write_text(HELPERS)
    (folder / pkg / "steps.py").write_text(STEPS)
    return Project(folder, pkg)
