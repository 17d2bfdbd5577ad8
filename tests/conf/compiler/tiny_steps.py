"""Steps for tests/test_compiler.py: small, pure, and with no heavy imports."""

from __future__ import annotations

from typing import Annotated

from mlops import step


@step
def numbers(n: int = 3) -> Annotated[list[int], "numbers"]:
    return list(range(n))


@step
def total(values: list[int], scale: int = 1) -> Annotated[int, "total"]:
    return scale * sum(values)


@step
def report(total: int, numbers: list[int]) -> Annotated[str, "report"]:
    return f"{len(numbers)} numbers, total {total}"


@step
def both(a: int, b: int) -> Annotated[int, "sum"]:
    return a + b
