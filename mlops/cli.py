"""The command line: ``python -m mlops +pipeline=NAME [overrides]`` and ``mlops COMMAND``.

Running a pipeline goes through Hydra (composition, overrides, ``-m`` sweeps, ``--cfg``,
``--help``). The registry commands (``mlops models``, ``mlops promote`` ...) live in
:mod:`mlops.admin`. Errors a user can fix are printed as one message without a traceback;
``HYDRA_FULL_ERROR=1`` shows the traceback.
"""

from __future__ import annotations

import os
import sys

from .errors import MlopsError

__all__ = ["main"]


def _available_pipelines() -> list[str]:
    try:
        from hydra.core.global_hydra import GlobalHydra

        return sorted(GlobalHydra.instance().config_loader().get_group_options("pipeline"))
    except Exception:
        return []


def _task(cfg: object) -> None:
    from .api import run_config

    try:
        run_config(cfg, available_pipelines=_available_pipelines())  # type: ignore[arg-type]
    except MlopsError as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"Error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


def run_pipeline_cli() -> None:
    """Hydra's entry point for running pipelines."""
    import hydra

    from .schema import register

    register()
    hydra.main(version_base=None, config_path="conf", config_name="mlops")(_task)()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``mlops`` and ``python -m mlops``."""
    args = sys.argv[1:] if argv is None else argv
    if args and not args[0].startswith("-") and "=" not in args[0]:
        from .admin import main as admin_main

        sys.exit(admin_main(args))
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    run_pipeline_cli()
