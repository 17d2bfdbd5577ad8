"""Registry commands for people: ``mlops models``, ``mlops versions NAME``, ..."""

from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mlops")
    parser.add_argument("command")
    parser.parse_args(argv)
    return 2
