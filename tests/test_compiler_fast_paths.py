"""The compiler's shortcuts for large pipelines give exactly what the general path gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from mlops.compiler import _container, _plain_value, _read_steps, compile_pipeline
from mlops.errors import ConfigError
from mlops.schema import StepOutputRef, register

STEPS = """\
from typing import Annotated

from mlops import step


@step
def noop(x: int = 0, i: int = 0, opts: dict = None) -> Annotated[int, "out"]:
    return i


@step
def other(x: int = 0) -> int:
    return x
"""


@pytest.fixture
def steps_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "fast_path_steps.py").write_text(STEPS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fast_path_steps"


def _cfg(steps: dict[str, Any]) -> Any:
    register()
    return OmegaConf.create({"pipeline": {"name": "p"}, "steps": steps})


def _read_steps_general(cfg: Any) -> dict[str, dict[str, Any]]:
    """_read_steps without shortcuts: every value resolved by OmegaConf."""
    return {
        str(name): {str(a): _container(node[a], f"steps.{name}.{a}") for a in node}
        for name, node in cfg.steps.items()
    }


def test_read_steps_matches_omegaconf_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    """Literals, references and other interpolations read the same as through OmegaConf."""
    monkeypatch.setenv("FAST_PATH_VALUE", "from-env")
    cfg = _cfg(
        {
            "a": {"_target_": "m.noop", "i": 1, "f": 0.5, "s": "text", "n": None, "b": True},
            "b": {"_target_": "m.noop", "x": "${step:a.out}", "opts": {"k": [1, "v", None]}},
            "c": {"_target_": "m.other", "x": "${step:b}", "e": "${oc.env:FAST_PATH_VALUE}"},
            "d": {"_target_": "m.other", "x": "${steps.a.i}", "lit": "cost: $5", "esc": "\\${x}"},
            "e": {"_target_": "m.other", "x": "${step: a.out}", "w": "${step:null}"},
            "f": {"_target_": "m.other", "x": "${step:a.out.more}", "y": "${step:a-b}"},
        }
    )
    assert _read_steps(cfg) == _read_steps_general(cfg)
    assert _read_steps(cfg)["b"]["x"] == StepOutputRef("a", "out")


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        pytest.param("${step:a.out}", True, id="step-ref"),
        pytest.param("${step:a}", True, id="step-ref-only-output"),
        pytest.param([1, {"a": "b"}], True, id="nested-literals"),
        pytest.param("${step:true}", False, id="grammar-word"),
        pytest.param("???", False, id="missing"),
        pytest.param(["${step:a.out}"], False, id="ref-nested-in-list"),
        pytest.param({"k": {"j": "${x}"}}, False, id="interpolation-nested-in-dict"),
        pytest.param({"${x}": 1}, False, id="interpolation-in-key"),
    ],
)
def test_plain_value(raw: Any, plain: bool) -> None:
    """Only values that need no resolution take the shortcut."""
    assert (_plain_value(raw) is not _plain_value.__globals__["_RESOLVE"]) is plain


def test_missing_value_still_reported() -> None:
    """A mandatory value left as ??? is an error naming the key, as before."""
    with pytest.raises(ConfigError) as e:
        _read_steps(_cfg({"a": {"_target_": "m.noop", "i": "???"}}))
    assert e.value.key == "steps.a.i"


def test_nested_reference_still_rejected(steps_module: str) -> None:
    """A reference inside a list is still reported as not being a whole value."""
    cfg = _cfg(
        {
            "a": {"_target_": f"{steps_module}.noop"},
            "b": {"_target_": f"{steps_module}.noop", "opts": {"k": ["${step:a.out}"]}},
        }
    )
    with pytest.raises(ConfigError, match="must be the whole value"):
        compile_pipeline(cfg, None)


def test_steps_sharing_a_function_share_its_signature(steps_module: str) -> None:
    """Many steps of one function compile to the same keys as one step of it alone."""
    many = {f"s{i}": {"_target_": f"{steps_module}.noop", "i": i} for i in range(50)}
    many["t"] = {"_target_": f"{steps_module}.other", "x": "${step:s3.out}"}
    plan = compile_pipeline(_cfg(many), None)
    alone = compile_pipeline(_cfg({"s3": many["s3"]}), None)
    assert plan.steps["s3"].static_key == alone.steps["s3"].static_key
    assert plan.steps["s3"].signature == alone.steps["s3"].signature
    assert plan.steps["t"].signature.outputs == ("output",)
    assert len({sp.static_key for sp in plan.steps.values()}) == 51
