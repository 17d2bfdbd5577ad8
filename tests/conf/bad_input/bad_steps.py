"""Tiny steps for the bad-input scenarios in conf/pipeline/*.yaml (see tests/test_bad_input.py)."""

from __future__ import annotations

from typing import Annotated

from mlops import step


@step
def numbers(size: int = 3) -> Annotated[list[int], "numbers"]:
    """0, 1, ..., size - 1."""
    return list(range(size))


@step
def score_a(values: list[int]) -> Annotated[int, "score"]:
    """One score."""
    return sum(values)


@step
def score_b(values: list[int]) -> Annotated[int, "score"]:
    """Another score of the same name."""
    return max(values)


@step
def plain_a(values: list[int]):  # type: ignore[no-untyped-def]  # noqa: ANN201 - unannotated
    """An unannotated output (named ``output``)."""
    return len(values)


@step
def plain_b(values: list[int]):  # type: ignore[no-untyped-def]  # noqa: ANN201
    """Another unannotated output."""
    return min(values)
