"""Benchmarks: what mlops costs against the floor its building blocks set, measured in one run.

Run ``python -m benchmarks`` (or ``python benchmarks/run.py``) from the repository root; see
``benchmarks/README.md`` for the table, the result shape and how to add a benchmark module.
"""
