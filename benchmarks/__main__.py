"""``python -m benchmarks``: run every benchmark, print the table, write the JSON."""

from benchmarks.run import main

if __name__ == "__main__":
    raise SystemExit(main())
