"""Registry conformance: the same behaviour on a local folder, memory:// and S3 (moto)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.errors import (
    ArtifactError,
    InvalidNameError,
    ModelNotFoundError,
    RegistryError,
    RunNotFoundError,
    StageError,
)
from mlops.registry import Registry

Uri = tuple[str, dict[str, Any]]


@pytest.fixture
def reg(any_registry_uri: Uri) -> Registry:
    uri, options = any_registry_uri
    return Registry(uri, **options)


def test_versions_are_numbered_from_one(reg: Registry) -> None:
    """Versions get 1, 2, 3, ...; latest and numbers resolve; an unknown model has none."""
    assert reg.list_model_versions("m") == []
    made = [reg.register_model_version("m", run_id=f"r{i}").number for i in range(3)]
    assert made == [1, 2, 3]
    assert [v.number for v in reg.list_model_versions("m")] == [1, 2, 3]
    assert reg.get_model_version("m").number == 3
    assert reg.get_model_version("m", "2").run_id == "r1"
    assert reg.get_model_version("m", 1).stage == "none"
    assert reg.list_models() == ["m"]


def test_artifacts_and_metadata(reg: Registry) -> None:
    """Linked artifacts load back verified; metadata is kept per version."""
    ref = reg.artifacts.put(np.arange(10))
    reg.register_model_version("m", {"weights": ref}, {"accuracy": 0.5})
    again = reg.get_model_version("m", 1)
    assert again.metadata == {"accuracy": 0.5}
    assert list(again.artifacts) == ["weights"]
    np.testing.assert_array_equal(again.get_model_artifact("weights"), np.arange(10))
    with pytest.raises(
        ModelNotFoundError, match="has no artifact 'bias'; linked artifacts: weights"
    ):
        again.get_artifact_ref("bias")


def test_stages_force_and_history(reg: Registry) -> None:
    """One holder per stage; force archives the previous one; every change is in the history."""
    for _ in range(3):
        reg.register_model_version("m")
    reg.set_stage("m", 1, "production")
    with pytest.raises(StageError, match="version 1 is in 'production'; pass force=True"):
        reg.set_stage("m", 2, "production")
    reg.set_stage("m", 2, "production", force=True, run_id="run-2")
    reg.set_stage("m", 3, "staging")
    assert reg.get_model_version("m", "production").number == 2
    assert reg.get_model_version("m", "staging").number == 3
    assert reg.get_model_version("m", "archived").number == 1
    assert {v.number: v.stage for v in reg.list_model_versions("m")} == {
        1: "archived",
        2: "production",
        3: "staging",
    }
    history = reg.stage_history("m")
    assert [(c.seq, c.stage, c.version, c.previous) for c in history] == [
        (1, "production", 1, None),
        (2, "production", 2, 1),
        (3, "staging", 3, None),
    ]
    assert history[1].run_id == "run-2"
    # promoting the holder again records nothing
    assert reg.set_stage("m", 2, "production").seq == 3
    # a version moves out of its old stage
    reg.set_stage("m", 3, "production", force=True)
    assert reg.stage_history("m")[-1].holders == {"staging": None, "production": 3}


def test_rollback_walks_back_one_holder_at_a_time(reg: Registry) -> None:
    """Rollback returns production to v2, then v1, then says there is nothing earlier."""
    for n in (1, 2, 3):
        reg.register_model_version("m")
        reg.set_stage("m", n, "production", force=True)
    change = reg.rollback("m", "production")
    assert (change.version, change.previous, change.reason) == (2, 3, "rollback")
    assert reg.get_model_version("m", "production").number == 2
    assert reg.get_model_version("m", 3).stage == "archived"
    assert reg.rollback("m", "production").version == 1
    with pytest.raises(StageError, match="no earlier holder to roll back to"):
        reg.rollback("m", "production")
    assert [c.reason for c in reg.stage_history("m")] == ["promote"] * 3 + ["rollback"] * 2


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        pytest.param(
            lambda r: r.get_model_version("m", "production"),
            ModelNotFoundError,
            "model 'm' has no versions yet.",
            id="no-versions",
        ),
        pytest.param(
            lambda r: r.get_model_version("m", 7),
            ModelNotFoundError,
            "model 'm' has no version 7 (it has no versions yet)",
            id="no-such-version",
        ),
        pytest.param(
            lambda r: r.get_model_version("m", "prod"),
            StageError,
            "unknown stage 'prod'",
            id="unknown-stage",
        ),
        pytest.param(
            lambda r: r.get_run("nope"),
            RunNotFoundError,
            "no run 'nope' in registry",
            id="no-such-run",
        ),
    ],
)
def test_lookup_errors(reg: Registry, call: Any, error: type[Exception], message: str) -> None:
    """Missing models, versions, stages and runs are one clear error each."""
    with pytest.raises(error) as info:
        call(reg)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("a/b", id="slash"),
        pytest.param("..", id="dotdot"),
        pytest.param("a..b", id="dotdot-inside"),
        pytest.param(".hidden", id="leading-dot"),
        pytest.param("tab\there", id="control"),
        pytest.param("new\nline", id="newline"),
        pytest.param("sp ace", id="space"),
    ],
)
def test_bad_names(reg: Registry, name: str) -> None:
    """Names that are not one safe path segment are refused, saying what is allowed."""
    msg = f"invalid model name {name!r}: use letters, digits, '_', '-' and '.'"
    for call in (
        lambda: reg.register_model_version(name),
        lambda: reg.get_model_version(name),
        lambda: reg.set_stage(name, 1, "production"),
        lambda: reg.stage_history(name),
    ):
        with pytest.raises(InvalidNameError) as info:
            call()
        assert str(info.value).startswith(msg)
    with pytest.raises(InvalidNameError, match="invalid artifact name"):
        reg.register_model_version("ok", {name: reg.artifacts.put([1])})
    with pytest.raises(InvalidNameError, match="invalid run id"):
        reg.get_run(name or "../x")


def test_bounded_reads_with_a_lagging_head(reg: Registry) -> None:
    """A head hint that lags (a crashed writer) still gives the right latest; reading never
    writes (the hint is moved by the next writer); a hint that leads is not trusted."""
    for _ in range(40):
        reg.register_model_version("m")
    reg.storage.write_json("models/m/versions/head.json", {"n": 3})
    assert reg.get_model_version("m").number == 40
    assert reg.storage.read_json("models/m/versions/head.json") == {"n": 3}
    assert reg.register_model_version("m").number == 41
    assert reg.storage.read_json("models/m/versions/head.json") == {"n": 41}
    reg.storage.delete("models/m/versions/head.json")  # a registry from before head pointers
    assert reg.get_model_version("m").number == 41
    reg.storage.write_json("models/m/versions/head.json", {"n": 900})  # edited by hand
    assert reg.get_model_version("m").number == 41
    assert reg.register_model_version("m").number == 42


def test_pickle_needs_opt_in(any_registry_uri: Uri) -> None:
    """Pickles are refused unless allow_pickle is set, when storing and when loading."""
    uri, options = any_registry_uri
    with pytest.raises(ArtifactError, match="registry.allow_pickle=true"):
        Registry(uri, **options).artifacts.put(object)
    trusting = Registry(uri, allow_pickle=True, **options)
    ref = trusting.artifacts.put({1, 2})
    assert ref.format == "pickle"
    assert trusting.artifacts.get(ref) == {1, 2}
    with pytest.raises(ArtifactError, match="is a pickle; loading it runs code"):
        Registry(uri, **options).artifacts.get(ref)


def test_missing_bucket_is_one_clear_error(s3_server: Any) -> None:
    """Opening a registry in a bucket that does not exist names the URI and the fix."""
    with pytest.raises(RegistryError) as info:
        Registry("s3://no-such-bucket-here/reg", **s3_server.storage_options)
    assert str(info.value) == (
        "registry 's3://no-such-bucket-here/reg': the bucket does not exist. Create it, or "
        "point registry.uri at an existing one."
    )


def test_unreachable_endpoint_is_one_clear_error() -> None:
    """An endpoint nobody listens on is a RegistryError naming the URI, not a botocore trace."""
    options = {
        "key": "k",
        "secret": "s",
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"},
        "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
    }
    with pytest.raises(RegistryError) as info:
        Registry("s3://bucket/reg", **options)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("registry 's3://bucket/reg' is not reachable: cannot list ''")
    assert "Could not connect to the endpoint URL" in message


def test_credentials_in_the_uri_are_not_shown() -> None:
    """A password in the registry URL is hidden wherever the URL is shown."""
    reg = Registry("memory://user:hunter2@somewhere/reg")
    assert "hunter2" not in reg.uri
    assert "hunter2" not in repr(reg)


def test_registry_root_that_is_a_file(tmp_path: Path) -> None:
    """A registry.uri pointing at a file is reported on first use, naming the URI."""
    f = tmp_path / "file"
    f.write_text("x")
    reg = Registry(str(f))
    with pytest.raises(RegistryError, match=f"registry '{f}'"):
        reg.register_model_version("m")


def test_secrets_never_reach_run_records(s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    """A real run on S3 with credentials as overrides: run.json and the logs never hold them."""
    secret = "s3cr3t-Value-123"
    key_id = "AKIA-key-id-987"
    overrides = [
        f"registry.uri={s3_bucket}/reg",
        f"+registry.storage_options.client_kwargs.endpoint_url={s3_server.endpoint_url}",
        f"+registry.storage_options.key={key_id}",
        f"+registry.storage_options.secret={secret}",
        f"+registry.storage_options.client_kwargs.aws_session_token=tok-{secret}",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "+pipeline=train_and_promote", *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert secret not in proc.stdout + proc.stderr
    client = s3_server.client()
    bucket = s3_bucket.removeprefix("s3://")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    runs = [k for k in keys if k.endswith("run.json")]
    assert len(runs) == 1
    body = client.get_object(Bucket=bucket, Key=runs[0])["Body"].read().decode()
    assert secret not in body and key_id not in body
    options = json.loads(body)["config"]["registry"]["storage_options"]
    assert options["secret"] == "***" and options["key"] == "***"
    assert options["client_kwargs"]["endpoint_url"] == s3_server.endpoint_url
    for path in tmp_path.rglob("*"):  # Hydra's outputs/ folder: logs and saved configs
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
