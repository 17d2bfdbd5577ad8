"""Tiny steps for the error scenarios in conf/pipeline/error_*.yaml (see tests/test_errors.py)."""

from __future__ import annotations

from typing import Annotated

from mlops import step


@step
def numbers(size: int = 3) -> Annotated[list[int], "numbers"]:
    """0, 1, ..., size - 1."""
    return list(range(size))


@step
def total(values: list[int]) -> Annotated[int, "total"]:
    """The sum of `values`."""
    return sum(values)
