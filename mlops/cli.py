"""The command line: ``python -m mlops +pipeline=NAME [overrides]`` and ``mlops COMMAND``.

Running a pipeline goes through Hydra (composition, overrides, ``-m`` sweeps, ``--cfg``,
``--help``). The registry commands (``mlops models``, ``mlops promote`` ...) live in
:mod:`mlops.admin`. Errors a user can fix are printed as one message without a traceback;
``HYDRA_FULL_ERROR=1`` shows the traceback.
"""

from __future__ import annotations

import logging
import os
import re
import sys

from .console import say
from .errors import MlopsError, describe
from .interrupts import EXIT_INTERRUPTED

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
        run_config(
            cfg,  # type: ignore[arg-type]
            available_pipelines=_available_pipelines(),
            exit_on_second_interrupt=True,
        )
    except (MlopsError, OSError) as e:  # OSError: a full or read-only disk, said in words
        if _full_error():
            raise
        say(f"Error: {describe(e)}", level=logging.ERROR)
        sys.exit(1)


# Flags and overrides that add to Hydra's config search path: with them, a pipeline can come from
# places the pre-check below does not look, so Hydra is left to report a missing one.
_SEARCH_PATH_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp", "hydra.searchpath")
_PIPELINE_ARG = re.compile(r"\+{0,2}pipeline=(?P<name>.*)")


def _requested_pipeline(args: list[str]) -> str | None:
    """The NAME of a plain ``+pipeline=NAME`` that mlops can check itself, else None.

    Examples:
        >>> _requested_pipeline(["+pipeline=train_and_promote", "steps.train.C=10"])
        'train_and_promote'
        >>> _requested_pipeline(["-m", "+pipeline=a,b"]) is None   # a sweep: Hydra checks it
        True
    """
    if any(a.split("=", 1)[0] in _SEARCH_PATH_FLAGS for a in args):
        return None
    for arg in args:
        m = _PIPELINE_ARG.fullmatch(arg)
        if m:
            name = m.group("name")
            return name if re.fullmatch(r"[A-Za-z0-9_.\-]+", name) else None
    return None


def _check_pipeline(args: list[str]) -> None:
    """Report an unknown ``+pipeline=NAME`` as one mlops message instead of Hydra's report.

    Hydra handles a missing config inside ``hydra.main`` (printing its search path), so the
    check happens before Hydra starts. With ``HYDRA_FULL_ERROR=1`` Hydra reports it as usual.
    """
    from .api import check_pipeline_exists

    if _full_error():
        return
    name = _requested_pipeline(args)
    if name is None:
        return
    name_given = any(re.fullmatch(r"\+{0,2}pipeline\.name=.+", a) for a in args)
    try:
        check_pipeline_exists(name, name_given=name_given)
    except MlopsError as e:
        say(f"Error: {e}", level=logging.ERROR)
        sys.exit(1)


def _check_executor(args: list[str]) -> None:
    """Report a bad ``executor...`` override as one mlops message (see below), before Hydra."""
    if _full_error():
        return
    try:
        _check_executor_overrides(args)
    except MlopsError as e:
        say(f"Error: {e}", level=logging.ERROR)
        sys.exit(1)


def _check_executor_overrides(args: list[str]) -> None:
    """Check ``executor=NAME`` and ``executor.KEY=VALUE`` overrides as mlops would, before Hydra.

    Hydra refuses ``executor.num_workers=1.5`` or ``executor=threds`` itself, in seven or more
    lines that end in advice about tracebacks; a value of the right type but out of range
    (``-1``) it lets through. Both get mlops' one line (:class:`~mlops.schedulers.ExecutorOptions`).
    Overrides are parsed with Hydra's own parser, so values mean what they will mean in the
    config; sweeps, and choices with an extra config search path, are left to Hydra.
    """
    from .schedulers import ExecutorOptions

    candidates = [a for a in args if re.match(r"[+~]{0,2}executor[.=]", a)]
    if not candidates:
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except Exception:  # noqa: BLE001 - a syntax error: Hydra reports it with its grammar
        return
    values: dict[str, object] = {}
    for o in overrides:
        if o.is_sweep_override() or o.is_delete():
            continue
        _, _, key = o.key_or_group.partition(".")
        if key:
            values[key] = o.value()
        elif not any(a.split("=", 1)[0] in _SEARCH_PATH_FLAGS for a in args):
            _check_executor_choice(str(o.value()))
    ExecutorOptions.from_config(values)


def _check_executor_choice(choice: str) -> None:
    """``executor=NAME`` selects ``conf/executor/NAME.yaml``: packaged, or the project's."""
    from .errors import ConfigError, did_you_mean
    from .schedulers import EXECUTORS

    project = os.path.join(os.getcwd(), "conf", "executor")
    own = (
        [f[: -len(".yaml")] for f in os.listdir(project) if f.endswith(".yaml")]
        if os.path.isdir(project)
        else []
    )
    choices = sorted({*EXECUTORS, *own})
    if choice not in choices:
        raise ConfigError(
            f"unknown executor '{choice}'.{did_you_mean(choice, choices)} Choose one of: "
            f"{', '.join(EXECUTORS + tuple(sorted(set(own) - set(EXECUTORS))))} (e.g. "
            "executor=sync).",
            "executor",
        )


def _full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def run_pipeline_cli() -> None:
    """Hydra's entry point for running pipelines.

    A plain run (every argument an override) is composed once, or served by the compose cache,
    and run as Hydra's run mode does (:mod:`mlops.hydra_run`); anything else -- flags, sweeps,
    and a command line that does not compose -- goes to ``hydra.main``, after mlops' own checks
    of the pipeline file, which explain in one line what Hydra reports in many.
    """
    from . import hydra_run
    from .redaction import redacted_output
    from .schema import register

    register()
    args = sys.argv[1:]
    _check_executor(args)
    with redacted_output(args):  # Hydra prints overrides in hints and errors
        if hydra_run.run(args, _task):
            return
        import hydra

        _check_pipeline(args)
        hydra.main(version_base=None, config_path="conf", config_name="mlops")(_task)()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``mlops`` and ``python -m mlops``.

    What it prints goes through :class:`mlops.console.SafeStream` (a closed pipe stops the
    printing, not the run). Ctrl-C exits with status 130 and no traceback: during a run after
    the run's own line (:mod:`mlops.interrupts`), before one after a line saying so.
    """
    from .console import protect_std_streams
    from .interrupts import RunInterrupted

    if argv is None:  # the program, not a call from Python (whose streams are the caller's)
        protect_std_streams()
        exit_on_sigint()  # Ctrl-C before a run ends it now
    try:
        _main(argv)
    except RunInterrupted:
        sys.exit(EXIT_INTERRUPTED)  # the first Ctrl-C said what happens
    except KeyboardInterrupt:
        say("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        if argv is None:  # the program: what is left is the interpreter's exit
            ignore_sigint_from_now_on()


def exit_on_sigint() -> None:
    """Until a run starts, Ctrl-C ends the process at once with status 130 and one line.

    Nothing is written before a run starts (composing and compiling only read), so there is
    nothing to finish; and a KeyboardInterrupt raised in the middle of Hydra's or OmegaConf's
    code can come out as another error, or as a traceback. A run installs its own handler for
    its duration (:mod:`mlops.interrupts`) and puts this one back when it ends.
    """
    import signal
    import threading

    def handle(signum: int, frame: object) -> None:
        say("interrupted", err=True)
        os._exit(EXIT_INTERRUPTED)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handle)


def ignore_sigint_from_now_on() -> None:
    """Ignore Ctrl-C for the rest of the process: its work is done and its status decided; a
    KeyboardInterrupt while the interpreter exits would only print a traceback."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main(argv: list[str] | None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "pipeline":  # mlops pipeline export|show (not a Hydra override)
        from .pipeline_cli import main as pipeline_main

        sys.exit(pipeline_main(args[1:]))
    if args and not args[0].startswith("-") and "=" not in args[0]:
        from .admin import main as admin_main

        sys.exit(admin_main(args))
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    run_pipeline_cli()
