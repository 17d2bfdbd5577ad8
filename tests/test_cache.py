# mypy: disable-error-code="func-returns-value"
"""The cache: what changes make which steps miss, and what never does. Real runs, real Hydra."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cache_project import Project, make_project
from conftest import run_mlops

from mlops import Registry
from mlops.cache_store import CacheEntry, CacheStore

R, C = "ran", "cached"
STEPS = ("make", "total", "parity", "notify", "report")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


def _object(project: Project, step: str, output: str) -> Path:
    reg = Registry(project.registry)
    index = reg.cache.read_index("tiny", step)
    assert index is not None and index.cache_key is not None
    entry = CacheStore.parse(reg.cache.read_entry_doc(index.cache_key))
    assert isinstance(entry, CacheEntry)
    ref = entry.outputs[output]
    return Path(project.registry) / ref.path


def _flip_byte(project: Project, step: str, output: str) -> None:
    path = _object(project, step, output)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(project: Project, step: str, output: str) -> None:
    path = _object(project, step, output)
    path.write_bytes(path.read_bytes()[:-1])


def _move_registry(project: Project) -> list[str]:
    moved = str(project.folder / "moved-registry")
    shutil.copytree(project.registry, moved)
    return [f"registry.uri={moved}"]


# id, what to do after a first run (returns extra overrides), overrides, expected statuses
CASES: list[tuple[str, Callable[[Project], list[str]] | None, list[str], tuple[str, ...]]] = [
    ("nothing-changed", None, [], (C, C, C, R, C)),
    ("param-of-first-step", None, ["steps.make.n=4"], (R, R, R, R, R)),
    ("param-of-one-step", None, ["steps.total.factor=2.0"], (C, R, C, R, C)),
    ("param-int-not-float", None, ["steps.total.factor=1"], (C, R, C, R, C)),
    # n=5 makes other numbers, but parity(5) == parity(3): report stays cached
    ("early-cutoff-param", None, ["steps.make.n=5"], (R, R, R, R, C)),
    # make runs again and gives the same bytes: everything below it stays cached
    ("early-cutoff-refresh", None, ["cache.refresh=[make]"], (R, C, C, R, C)),
    ("refresh-one-step", None, ["cache.refresh=[total]"], (C, R, C, R, C)),
    ("cache-disabled-for-run", None, ["cache.enabled=false"], (R, R, R, R, R)),
    ("cache-disabled-for-pipeline", None, ["pipeline.enable_cache=false"], (R, R, R, R, R)),
    ("executor-not-in-key", None, ["executor=sync"], (C, C, C, R, C)),
    ("registry-path-not-in-key", _move_registry, [], (C, C, C, R, C)),
    # a helper of another module of the project
    (
        "helper-code",
        lambda p: p.edit("helpers", "round(value * factor", "round(value * factor * 1.0") or [],
        [],
        (C, R, C, R, C),
    ),
    (
        "module-constant",
        lambda p: p.edit("helpers", "SCALE_DIGITS = 6", "SCALE_DIGITS = 5") or [],
        [],
        (C, R, C, R, C),
    ),
    (
        "step-code",
        lambda p: p.edit("steps", "len(numbers) % 2", "len(numbers) % 2 + 0") or [],
        [],
        (C, C, R, R, C),
    ),
    (
        "comments-and-docstrings-not-in-key",
        lambda p: (
            p.edit(
                "steps",
                "    return len(numbers) % 2",
                '    """Parity."""\n    return len(numbers) % 2  # odd?',
            )
            or []
        ),
        [],
        (C, C, C, R, C),
    ),
    # same size, bytes changed: found only when a step loads it (total runs here)
    (
        "corrupted-object",
        lambda p: _flip_byte(p, "make", "numbers") or [],
        ["steps.total.factor=3.0"],
        (R, R, C, R, C),
    ),
    ("truncated-object", lambda p: _truncate(p, "make", "numbers") or [], [], (R, C, C, R, C)),
]


@pytest.mark.parametrize(
    ("change", "overrides", "expected"),
    [pytest.param(c, o, e, id=i) for i, c, o, e in CASES],
)
def test_changes_and_hits(
    project: Project,
    change: Callable[[Project], list[str]] | None,
    overrides: list[str],
    expected: tuple[str, ...],
    capfd: pytest.CaptureFixture[str],
) -> None:
    """After a first run, a change makes exactly the expected steps miss."""
    assert project.run() == dict.fromkeys(STEPS, R)
    extra = change(project) if change else []
    assert project.run("tiny", *overrides, *extra) == dict(zip(STEPS, expected, strict=True))
    capfd.readouterr()  # the corrupted cases warn on stderr (checked below)


def test_corrupted_object_warns_and_is_replaced(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    """A corrupted object a running step needs is reported, recomputed and stored again."""
    project.run()
    _flip_byte(project, "make", "numbers")
    capfd.readouterr()
    assert project.run("tiny", "steps.total.factor=3.0")["make"] == R
    assert "warning: step 'make': cached output `numbers` is corrupted; running the step again" in (
        capfd.readouterr().err
    )
    reg = Registry(project.registry)
    assert reg.list_runs(pipeline="tiny")[-1].load("total") == 10.0
    # the object was rewritten: the next run needing it is a hit, with no warning
    assert project.run("tiny", "steps.total.factor=4.0")["make"] == C
    assert "warning" not in capfd.readouterr().err


def test_model_promotion_and_context_reads(project: Project) -> None:
    """Promoting a new version misses only the steps that read the model, however they read it."""
    assert project.run("tiny_train") == {"make": R, "total": R, "promote": R}
    assert project.run("tiny_use") == {"make": R, "use": R}
    assert project.run("tiny_context") == {"make": C, "use": R}
    assert project.run("tiny_use") == {"make": C, "use": C}
    assert project.run("tiny_context") == {"make": C, "use": C}
    # fully cached training run: a complete v2, promoted
    assert project.run("tiny_train") == {"make": C, "total": C, "promote": R}
    reg = Registry(project.registry)
    v1, v2 = reg.list_model_versions("tiny_model")
    assert (v1.stage, v2.stage) == ("archived", "production")
    assert set(v2.artifacts) == {"numbers", "total", "stage"}
    assert v2.artifacts == v1.artifacts
    assert v2.metadata == v1.metadata == {"total": 4.0}
    assert project.run("tiny_use") == {"make": C, "use": R}
    assert project.run("tiny_context") == {"make": C, "use": R}
    # an explicit version is the same concrete version: hits
    assert project.run("tiny_use", "model.version=2") == {"make": C, "use": C}
    assert project.run("tiny_context", "model.version=1") == {"make": C, "use": R}


def test_hash_seed_and_helper_change_across_processes(tmp_path: Path) -> None:
    """Runs in processes with different PYTHONHASHSEEDs hit; a helper's change misses."""
    project = make_project(tmp_path / "project")
    args = ["+pipeline=tiny", f"registry.uri={project.registry}"]

    def statuses(seed: str) -> dict[str, str]:
        res = run_mlops(*args, cwd=project.folder, env={"PYTHONHASHSEED": seed}, check=True)
        return {r.split()[1]: r.split()[2] for r in res.stdout.splitlines() if r.startswith("  [")}

    assert statuses("1")["total"] == "done"
    assert statuses("2") == {"make": C, "total": C, "parity": C, "notify": "done", "report": C}
    project.edit("helpers", "return round(", "return round(  # rounded\n        ")
    assert statuses("3")["total"] == C
    project.edit("helpers", "SCALE_DIGITS = 6", "SCALE_DIGITS = 4")
    assert statuses("random") == {
        "make": C,
        "total": "done",
        "parity": C,
        "notify": "done",
        "report": C,
    }


def test_fully_cached_iris_registers_complete_version(tmp_path: Path) -> None:
    """A fully cached train_and_promote registers a complete, promoted version; predict follows."""
    import mlops

    uri = f"registry.uri={tmp_path / 'reg'}"
    first = mlops.run("train_and_promote", [uri], quiet=True)
    assert set(first.steps.values()) == {R}
    assert mlops.run("do_predictions", [uri], quiet=True).steps == {
        "load_inference_data": R,
        "predict": R,
    }
    second = mlops.run("train_and_promote", [uri], quiet=True)
    assert second.steps == {"load_data": C, "split": C, "train": C, "evaluate": C, "promote": R}
    reg = Registry(str(tmp_path / "reg"))
    v1, v2 = reg.list_model_versions("iris_classifier")
    assert (v1.stage, v2.stage) == ("archived", "production")
    assert v2.metadata == v1.metadata and "accuracy" in v2.metadata
    assert {k: r for k, r in v2.artifacts.items() if k != "promotion"} == {
        k: r for k, r in v1.artifacts.items() if k != "promotion"
    }
    # production moved from v1 to v2: only predict misses
    assert mlops.run("do_predictions", [uri], quiet=True).steps == {
        "load_inference_data": C,
        "predict": R,
    }
    assert mlops.run("do_predictions_from_context", [uri], quiet=True).steps == {
        "load_inference_data": C,
        "predict": R,
    }
    assert mlops.run("do_predictions_from_context", [uri], quiet=True).steps == {
        "load_inference_data": C,
        "predict": C,
    }
