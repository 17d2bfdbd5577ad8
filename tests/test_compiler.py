"""The compiler: a composed config -> a Plan whose graph is a plain dict, ordered, keyed, pure."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf

from mlops.compiler import ArtifactInput, ModelPlan, StepInput, compile_pipeline
from mlops.errors import ConfigError, CycleError
from mlops.registry import Registry
from mlops.schema import register

STEPS = Path(__file__).parent / "conf" / "compiler"


def task(*args: Any) -> None:
    """A stand-in for the executor's task: the graph only holds it."""


@pytest.fixture(autouse=True)
def _steps_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    register()
    monkeypatch.syspath_prepend(str(STEPS))


@pytest.fixture
def make_config() -> Iterator[Callable[..., DictConfig]]:
    """Build configs for compile_pipeline; after the test, assert that none was mutated."""
    made: list[tuple[DictConfig, Any]] = []

    def make(steps: dict[str, Any], **top: Any) -> DictConfig:
        cfg = OmegaConf.create({"pipeline": {"name": "tiny"}, "steps": steps, **top})
        made.append((cfg, copy.deepcopy(OmegaConf.to_container(cfg, resolve=False))))
        return cfg

    yield make
    for cfg, before in made:
        assert OmegaConf.to_container(cfg, resolve=False) == before


def tiny(n: int = 3, scale: int = 1) -> dict[str, Any]:
    return {
        "numbers": {"_target_": "tiny_steps.numbers", "n": n},
        "total": {"_target_": "tiny_steps.total", "values": "${step:numbers}", "scale": scale},
        "report": {
            "_target_": "tiny_steps.report",
            "total": "${step:total.total}",
            "numbers": "${step:numbers.numbers}",
        },
    }


def test_graph_is_a_plain_dict(make_config: Callable[..., DictConfig]) -> None:
    """Each step's key maps to (task, step name, *keys of the steps it reads)."""
    plan = compile_pipeline(make_config(tiny()), None)
    k = {name: sp.graph_key for name, sp in plan.steps.items()}
    assert plan.graph(task) == {
        k["numbers"]: (task, "numbers"),
        k["total"]: (task, "total", k["numbers"]),
        k["report"]: (task, "report", k["total"], k["numbers"]),
    }
    assert all(re.fullmatch(rf"{name}-[0-9a-f]{{8,}}", key) for name, key in k.items())
    assert plan.keys == list(k.values())


def test_binding(make_config: Callable[..., DictConfig]) -> None:
    """Literals are params, references are inputs; a step's only output needs no name."""
    plan = compile_pipeline(make_config(tiny(n=5)), None)
    total = plan.steps["total"]
    assert (total.params, total.deps) == ({"scale": 1}, ("numbers",))
    assert total.inputs == {"values": StepInput("numbers", "numbers")}
    assert plan.steps["numbers"].params == {"n": 5}
    assert plan.steps["report"].deps == ("total", "numbers")
    assert (plan.pipeline, plan.model, plan.enable_cache) == ("tiny", None, True)


def test_keys_follow_what_changed(make_config: Callable[..., DictConfig]) -> None:
    """Keys are the same when compiled again; a param changes its step's key and those below."""
    base = compile_pipeline(make_config(tiny()), None)
    again = compile_pipeline(make_config(tiny()), None)
    scaled = compile_pipeline(make_config(tiny(scale=2)), None)
    more = compile_pipeline(make_config(tiny(n=4)), None)

    def keys(plan: Any) -> dict[str, str]:
        return {name: sp.graph_key for name, sp in plan.steps.items()}

    assert keys(again) == keys(base)
    changed = {n for n in keys(base) if keys(scaled)[n] != keys(base)[n]}
    assert changed == {"total", "report"}
    assert all(keys(more)[n] != keys(base)[n] for n in keys(base))


@pytest.mark.parametrize(
    ("steps", "order"),
    [
        pytest.param(
            {
                "total": {"_target_": "tiny_steps.total", "values": "${step:numbers}"},
                "numbers": {"_target_": "tiny_steps.numbers"},
            },
            ["numbers", "total"],
            id="reader-listed-first",
        ),
        pytest.param(
            {
                "d": {"_target_": "tiny_steps.both", "a": "${step:b}", "b": "${step:c}"},
                "c": {"_target_": "tiny_steps.total", "values": "${step:a}"},
                "b": {"_target_": "tiny_steps.total", "values": "${step:a}"},
                "a": {"_target_": "tiny_steps.numbers"},
            },
            ["a", "c", "b", "d"],
            id="diamond-config-order-among-equals",
        ),
    ],
)
def test_order(
    make_config: Callable[..., DictConfig], steps: dict[str, Any], order: list[str]
) -> None:
    """Every step comes after the steps it reads."""
    assert list(compile_pipeline(make_config(steps), None).steps) == order


@pytest.mark.parametrize(
    ("steps", "cycle"),
    [
        pytest.param(
            {"a": {"_target_": "tiny_steps.total", "values": "${step:a}"}},
            ["a", "a"],
            id="cycle-self",
        ),
        pytest.param(
            {
                "a": {"_target_": "tiny_steps.total", "values": "${step:b}"},
                "b": {"_target_": "tiny_steps.total", "values": "${step:a}"},
            },
            ["a", "b", "a"],
            id="cycle-two-steps",
        ),
        pytest.param(
            {
                "a": {"_target_": "tiny_steps.total", "values": "${step:c}"},
                "b": {"_target_": "tiny_steps.total", "values": "${step:a}"},
                "c": {"_target_": "tiny_steps.total", "values": "${step:b}"},
                "d": {"_target_": "tiny_steps.numbers"},
            },
            ["a", "b", "c", "a"],
            id="cycle-three-steps",
        ),
    ],
)
def test_cycle(
    make_config: Callable[..., DictConfig], steps: dict[str, Any], cycle: list[str]
) -> None:
    """A cycle is the path around it, each step feeding the next, from the first step listed."""
    with pytest.raises(CycleError) as e:
        compile_pipeline(make_config(steps), None)
    assert e.value.cycle == cycle
    assert str(e.value) == (
        f"steps: the steps form a cycle: {' -> '.join(cycle)}. Remove one of these references "
        "so that the steps can be ordered."
    )


@pytest.fixture
def registry() -> Registry:
    return Registry(f"memory://compiler-{uuid.uuid4().hex[:8]}")


def _files(reg: Registry) -> dict[str, int]:
    return reg.storage.walk_files("")


def test_model_stage_resolved_to_a_version(
    make_config: Callable[..., DictConfig], registry: Registry
) -> None:
    """model.version=production is resolved to a number at compile time; promoting another
    version changes the key of exactly the step that reads the model. Compiling writes nothing."""
    for n in (1, 2):
        registry.register_model_version(
            "tiny_model", {"numbers": registry.artifacts.put(list(range(n)))}
        )
    registry.set_stage("tiny_model", 1, "production")
    steps = {
        "numbers": {"_target_": "tiny_steps.numbers"},
        "total": {"_target_": "tiny_steps.total", "values": "${model:numbers}"},
    }
    model = {"name": "tiny_model", "version": "production"}
    before = _files(registry)
    first = compile_pipeline(make_config(steps, model=model), registry.models)
    assert _files(registry) == before
    assert first.model == ModelPlan("tiny_model", "production", 1)
    values = first.steps["total"].inputs["values"]
    assert isinstance(values, ArtifactInput) and values.version == 1
    registry.set_stage("tiny_model", 2, "production", force=True)
    second = compile_pipeline(make_config(steps, model=model), registry.models)
    assert second.model == ModelPlan("tiny_model", "production", 2)
    assert second.steps["numbers"].graph_key == first.steps["numbers"].graph_key
    assert second.steps["total"].graph_key != first.steps["total"].graph_key


def test_new_version_has_no_artifacts(
    make_config: Callable[..., DictConfig], registry: Registry
) -> None:
    """${model:...} in a pipeline that registers a new version (model.version null) is an error."""
    steps = {"total": {"_target_": "tiny_steps.total", "values": "${model:numbers}"}}
    cfg = make_config(steps, model={"name": "tiny_model", "version": None})
    with pytest.raises(ConfigError) as e:
        compile_pipeline(cfg, registry.models)
    assert e.value.key == "steps.total.values"
    assert "model.version is null" in str(e.value)
