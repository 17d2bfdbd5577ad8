"""The packaged pipeline configs: top-level conf/ in the repository, mlops.conf once installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import ROOT


def _setuptools_config() -> dict[str, object]:
    tomllib = pytest.importorskip("tomllib")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return dict(tomllib.load(f)["tool"]["setuptools"])


def _package_dirs() -> dict[str, Path]:
    """Every package of the source tree, by the name it is installed under."""
    found: dict[str, Path] = {}
    for top, prefix in ((ROOT / "mlops", "mlops"), (ROOT / "hydra_plugins", "hydra_plugins")):
        for d in [top, *sorted(p for p in top.rglob("*") if p.is_dir())]:
            if d.name == "__pycache__" or "__pycache__" in d.parts:
                continue
            if any(d.glob("*.py")):
                found[".".join([prefix, *d.relative_to(top).parts])] = d
    found["hydra_plugins"] = ROOT / "hydra_plugins"  # a namespace package, as Hydra wants
    for d in [ROOT / "conf", *sorted(p for p in (ROOT / "conf").rglob("*") if p.is_dir())]:
        if any(d.glob("*.yaml")) or any(d.glob("*.py")):
            found[".".join(["mlops.conf", *d.relative_to(ROOT / "conf").parts])] = d
    return found


def test_every_package_is_listed() -> None:
    """pyproject lists every package (a new one left out would be missing from the wheel)."""
    config = _setuptools_config()
    assert sorted(config["packages"]) == sorted(_package_dirs())  # type: ignore[call-overload]
    assert config["package-dir"] == {"mlops.conf": "conf"}
    assert not (ROOT / "mlops" / "conf").exists(), (
        "the configs live in the top-level conf/: delete the stale mlops/conf/ folder (an older "
        "checkout's __pycache__ would shadow them) and reinstall with pip install -e ."
    )


def test_packaged_configs_are_read_from_conf() -> None:
    """In a checkout, mlops.conf is the top-level conf/ (an editable install maps it there)."""
    from importlib.resources import files

    assert os.path.samefile(str(files("mlops.conf")), ROOT / "conf")


@pytest.mark.slow
def test_wheel_runs_from_an_empty_folder(tmp_path: Path) -> None:
    """A wheel installed in a fresh venv ships the configs: python -m mlops works anywhere,
    and a project's own conf/ comes ahead of them."""
    # built from a copy: building in place leaves build/ in the checkout
    source = tmp_path / "source"
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                    ".mlops", "outputs", "multirun", "tests")
    )  # fmt: skip
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    (wheel,) = wheels.glob("mlops-*.whl")
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True,
                   capture_output=True)  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run(
        [python, "-m", "mlops", "+pipeline=train_and_promote", "executor=sync"],
        cwd=empty, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "model iris_classifier v1 registered; stage: production" in run.stdout
    where = subprocess.run(
        [python, "-c", "import mlops.conf; print(mlops.conf.__file__)"],
        cwd=empty, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert str(env_dir) in where
    (empty / "conf" / "pipeline").mkdir(parents=True)
    (empty / "conf" / "pipeline" / "train_and_promote.yaml").write_text(
        "# @package _global_\npipeline:\n  name: mine\nsteps:\n  promote:\n"
        "    _target_: mlops.examples.iris.promotion.promote\n    accuracy: 0.5\n"
    )
    run = subprocess.run(
        [python, "-m", "mlops", "+pipeline=train_and_promote"],
        cwd=empty, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert "mlops: running mine (1 steps" in run.stdout, run.stdout + run.stderr
