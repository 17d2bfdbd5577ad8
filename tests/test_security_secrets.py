"""Secrets are never shown or stored: sweeps, Hydra's own lines and hints, params, plans.

Every test runs the command line as a user would and then greps everything it could have
written -- stdout, stderr, every file under the working folder (Hydra's outputs and multirun
folders, the sweep summaries) and every object of the registry -- for the secret values.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import pytest
from conftest import CliResult, run_mlops

from mlops.redaction import (
    RedactingFilter,
    is_secret_key,
    redact_text,
    secret_param,
    secret_values,
)


def _secret(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(6)}"


def _assert_nowhere(values: list[str], result: CliResult, *folders: Path) -> None:
    for value in values:
        assert value not in result.output, f"{value} printed:\n{result.output}"
        for folder in folders:
            for path in folder.rglob("*"):
                if path.is_file():
                    assert value.encode() not in path.read_bytes(), f"{value} stored in {path}"


def _s3_objects(server: Any, bucket: str) -> list[bytes]:
    client = server.client()
    name = bucket.removeprefix("s3://")
    listing = client.list_objects_v2(Bucket=name).get("Contents", [])
    return [client.get_object(Bucket=name, Key=o["Key"])["Body"].read() for o in listing]


# -- sweeps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("launcher", ["mlops", "basic"])
def test_sweep_on_s3_shows_and_stores_no_credentials(
    launcher: str, s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    """A sweep on S3 with its credentials as overrides (moto accepts any)."""
    key, secret = _secret("AKIAkey"), _secret("secret")
    token = _secret("session")
    result = run_mlops(
        "-m",
        "+pipeline=train_and_promote",
        f"registry.uri={s3_bucket}/reg",
        f"+registry.storage_options.client_kwargs.endpoint_url={s3_server.endpoint_url}",
        f"+registry.storage_options.key={key}",
        f"+registry.storage_options.secret={secret}",
        f"+registry.storage_options.client_kwargs.aws_session_token={token}",
        "steps.train.C=0.5,1",
        f"hydra/launcher={launcher}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.output
    assert "+registry.storage_options.secret=***" in result.stdout
    if launcher == "mlops":
        summaries = list(tmp_path.rglob("sweep_summary.*"))
        assert len(summaries) == 2
        assert "storage_options.key=***" in summaries[0].read_text()
    else:
        assert "[HYDRA] \t#1 : " in result.stdout  # Hydra's own job lines were printed
    _assert_nowhere([key, secret, token], result, tmp_path)
    stored = _s3_objects(s3_server, s3_bucket)
    assert any(b"run.json" in b or b"pipeline" in b for b in stored)
    for value in (key, secret, token):
        assert not any(value.encode() in body for body in stored), value


@pytest.mark.parametrize("launcher", ["mlops", "basic"])
@pytest.mark.parametrize(
    "override", ["password", "api_token", "client_secret", "access_key_id", "auth"]
)
def test_sweep_on_a_local_registry(launcher: str, override: str, tmp_path: Path) -> None:
    """Generated secret names, a registry in memory (a local folder takes no storage options):
    job lines, summaries, .hydra/, logs."""
    value = _secret("pw")
    result = run_mlops(
        "-m",
        "+pipeline=train_and_promote",
        f"registry.uri=memory://secrets-{tmp_path.name}",
        f"+registry.storage_options.{override}={value}",
        "steps.train.C=0.5,1",
        f"hydra/launcher={launcher}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.output
    _assert_nowhere([value], result, tmp_path)


def test_hydra_hint_does_not_echo_a_key(tmp_path: Path) -> None:
    """Overriding a key that is not there: Hydra's "To append ... use +KEY=VALUE" hint."""
    value = _secret("AKIAkey")
    for args in (
        ["+pipeline=train_and_promote", f"registry.storage_options.key={value}"],
        ["-m", "+pipeline=train_and_promote", f"registry.storage_options.key={value},{value}x"],
    ):
        result = run_mlops(*args, f"registry.uri={tmp_path / 'reg'}", cwd=tmp_path)
        assert result.returncode == 1, result.output
        assert "use +registry.storage_options.key=***" in result.output
        _assert_nowhere([value], result, tmp_path)


def test_failed_job_lines_hide_secrets(tmp_path: Path) -> None:
    """A sweep whose jobs fail: the failure lines repeat the overrides, hidden."""
    value = _secret("pw")
    result = run_mlops(
        "-m",
        "+pipeline=train_and_promote",
        f"registry.uri={tmp_path / 'reg'}",
        f"+registry.storage_options.password={value}",
        "steps.train.C=abc,1",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "failed" in result.output
    _assert_nowhere([value], result, tmp_path)


# -- Hydra's logging -------------------------------------------------------------------------------


def test_hydra_logging_config_hides_secrets(tmp_path: Path) -> None:
    """The composed hydra.hydra_logging and job_logging configs put the filter on every handler."""
    import logging.config

    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from mlops.schema import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_module("mlops.conf", version_base=None):
        cfg = compose("mlops", return_hydra_config=True)
    GlobalHydra.instance().clear()
    value = _secret("s")
    for which in ("hydra_logging", "job_logging"):
        conf = OmegaConf.to_container(cfg.hydra[which], resolve=False)
        assert isinstance(conf, dict)
        for name, handler in conf["handlers"].items():
            assert "redact_secrets" in handler.get("filters", []), (which, name)
    conf = OmegaConf.to_container(cfg.hydra.hydra_logging)
    out = tmp_path / "log.txt"
    assert isinstance(conf, dict)
    conf["handlers"]["console"] = {
        "class": "logging.FileHandler",
        "filename": str(out),
        "filters": ["redact_secrets"],
    }
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logging.config.dictConfig(conf)  # type: ignore[arg-type]
        logging.getLogger("hydra.launcher").info(
            "\t#0 : a=1 +registry.storage_options.key=%s", value
        )
        for h in root.handlers:
            h.flush()
    finally:
        for h in root.handlers:
            h.close()
        root.handlers[:], root.level = saved[0], saved[1]
    text = out.read_text()
    assert "key=***" in text and value not in text


# -- secret step params ----------------------------------------------------------------------------

STEPS = """
from typing import Annotated

from mlops import step


@step
def fetch(
    n: int = 2, password: str = "", api_token: str = "", conn: dict | None = None
) -> Annotated[int, "rows"]:
    return n * 10 + len(password) + len(api_token) + len(str(conn))


@step
def double(rows: int) -> Annotated[int, "doubled"]:
    return 2 * rows
"""

PIPELINE = """\
# @package _global_
pipeline:
  name: secretive
steps:
  fetch:
    _target_: secret_steps.fetch
    n: 2
    password: {password}
    api_token: {token}
    conn:
      host: db.example
      db_password: {nested}
  double:
    _target_: secret_steps.double
    rows: ${{step:fetch.rows}}
"""


def test_secret_params_are_keyed_but_never_stored_or_shown(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "conf" / "pipeline").mkdir(parents=True)
    (project / "secret_steps.py").write_text(STEPS)
    registry = tmp_path / "registry"
    pw1, pw2, tok, nested = _secret("pw1"), _secret("pw2"), _secret("tok"), _secret("nested")
    (project / "conf" / "pipeline" / "secretive.yaml").write_text(
        PIPELINE.format(password=pw1, token=tok, nested=nested)
    )
    reg = f"registry.uri={registry}"
    outputs: list[CliResult] = []

    first = run_mlops("+pipeline=secretive", reg, cwd=project, check=True)
    outputs.append(first)
    again = run_mlops("+pipeline=secretive", reg, cwd=project, check=True)
    outputs.append(again)
    assert "fetch" in again.output and "cached" in again.output

    # the same secret from the command line is the same key
    same = run_mlops("+pipeline=secretive", reg, f"steps.fetch.password={pw1}", cwd=project)
    outputs.append(same)
    assert same.returncode == 0 and "cached" in _status_line(same, "fetch")

    # a changed secret misses, and the plan says which param changed, without values
    plan = run_mlops(
        "+pipeline=secretive", reg, f"steps.fetch.password={pw2}", "plan=true", cwd=project
    )
    outputs.append(plan)
    assert plan.returncode == 0, plan.output
    assert "param `password` changed (a secret: its values are not shown)" in plan.output
    changed = run_mlops(
        "+pipeline=secretive", reg, f"steps.fetch.password={pw2}", cwd=project, check=True
    )
    outputs.append(changed)
    assert "done" in _status_line(changed, "fetch")  # ran: a changed secret misses

    # a failing run with the secret on the command line (a type error in another param)
    failed = run_mlops(
        "+pipeline=secretive", reg, f"steps.fetch.password={pw2}", "steps.fetch.n=abc",
        cwd=project,
    )  # fmt: skip
    outputs.append(failed)
    assert failed.returncode == 1

    # a nested secret that changes misses too
    other = _secret("nested2")
    moved = run_mlops(
        "+pipeline=secretive", reg, f"steps.fetch.password={pw2}",
        f"steps.fetch.conn.db_password={other}", "plan=true", cwd=project,
    )  # fmt: skip
    outputs.append(moved)
    assert "will run" in _status_line(moved, "fetch"), moved.output

    for value in (pw1, pw2, tok, nested, other):
        for out in outputs:
            assert value not in out.output, (value, out.output)
        for path in [*registry.rglob("*"), *project.rglob("*")]:
            if path.is_file() and path.parent.name != "pipeline":  # not the user's own YAML
                assert value.encode() not in path.read_bytes(), (value, path)


def _status_line(result: CliResult, step: str) -> str:
    lines = [line for line in result.output.splitlines() if f" {step} " in f" {line} "]
    return "\n".join(lines)


# -- the rules, on generated variants --------------------------------------------------------------

SECRET_NAMES = [
    "password", "passwd", "db_password", "api_token", "token", "access_token", "secret",
    "client_secret", "key", "api_key", "access_key_id", "aws_secret_access_key",
    "aws_session_token", "private_key", "credentials", "auth", "Authorization", "API-KEY",
]  # fmt: skip
PLAIN_NAMES = ["C", "n", "key_column", "endpoint_url", "author", "n_keys_seen", "monkey", "seed"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names(name: str) -> None:
    value = _secret("v")
    assert is_secret_key(name)
    for prefix in ("", "+", "++", "steps.fetch.", "+registry.storage_options."):
        line = f"#3 : x=1 {prefix}{name}={value} y=2"
        hidden = redact_text(line)
        assert value not in hidden and f"{prefix}{name}=***" in hidden
        assert value in secret_values([f"{prefix}{name}={value}"])
        assert value not in redact_text(f"overrides: ['{prefix}{name}={value}', 'z=3']")
    fingerprint = secret_param(name, value)
    assert value not in str(fingerprint) and fingerprint != secret_param(name, value + "x")


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_plain_names(name: str) -> None:
    assert not is_secret_key(name)
    assert redact_text(f"{name}=17") == f"{name}=17"
    assert secret_param(name, 17) == 17


def test_logging_filter_hides_args() -> None:
    value = _secret("v")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "use +key=%s", (value,), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "use +key=***"


def test_sweep_summary_rows_hide_secrets() -> None:
    from mlops.sweep import PromotionPolicy, SweepJob, format_summary, summary

    value = _secret("pw")
    jobs = [
        SweepJob(0, ["steps.train.C=1", f"+registry.storage_options.password={value}"]),
        SweepJob(1, [f"api_token={value},{value}2"], error=f"bad override api_token={value}"),
    ]
    rows = summary(jobs, PromotionPolicy())
    text = format_summary(rows) + " ".join(j.label for j in jobs)
    assert value not in repr(rows) and value not in text
    assert rows[0]["overrides"][1] == "+registry.storage_options.password=***"


def test_redacting_stream_passes_everything_else(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from mlops.redaction import redacted_output

    value = _secret("v")
    with redacted_output([f"+registry.storage_options.key={value}", "steps.train.C=1"]):
        print(f"hint: use +registry.storage_options.key={value}")
        print(f"raw {value} and C=1", file=sys.stderr)
        assert sys.stdout.encoding and hasattr(sys.stdout, "flush")
    with redacted_output(["steps.train.C=1"]):
        print("nothing to hide")
    out, err = capsys.readouterr()
    assert out == "hint: use +registry.storage_options.key=***\nnothing to hide\n"
    assert err == "raw *** and C=1\n"
