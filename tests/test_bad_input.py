"""Bad input from the command line: one line naming the key (or file and line), exit 1, no writes.

The scenarios are pipeline files written into a copy of ``tests/conf/bad_input`` (a user project
with its own step module): malformed YAML generated from a good file (a tab, a shifted line, a
repeated key, at every line where one can go), files Hydra would misreport (no
``# @package _global_``, empty, no ``pipeline.name``), and bad values of ``executor.*`` and
``registry.uri``. Every case runs against one registry holding one run, and checks that the
registry's files are byte for byte what they were.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, run_mlops

import mlops

PROJECT = ROOT / "tests" / "conf" / "bad_input"
GOOD = (PROJECT / "conf" / "pipeline" / "good.yaml").read_text()
PIPELINE_FILE = "conf/pipeline/bad.yaml"


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The project copied to a temporary folder, and a registry with one run of ``good``."""
    base = tmp_path_factory.mktemp("bad_input")
    folder = base / "project"
    shutil.copytree(PROJECT, folder)
    registry = base / "registry"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.syspath_prepend(str(folder))
        mlops.run("good", [f"registry.uri={registry}"], quiet=True)
    yield folder, registry


def _run_bad(project: tuple[Path, Path], text: str | None, *args: str) -> tuple[int, str]:
    """Run with ``text`` as conf/pipeline/bad.yaml; return exit code and stderr; check no writes."""
    folder, registry = project
    if text is not None:
        (folder / PIPELINE_FILE).write_text(text)
    before = _snapshot(registry)
    try:
        res = run_mlops(*args, cwd=folder)
    finally:
        (folder / PIPELINE_FILE).unlink(missing_ok=True)
    assert "Traceback" not in res.output, res.output
    assert _snapshot(registry) == before
    return res.returncode, res.stderr


# -- whole messages ---------------------------------------------------------------------------

FILE_CASES = [
    pytest.param(
        GOOD.replace("  numbers:\n", "\tnumbers:\n"),
        f"{PIPELINE_FILE}, line 7, column 1: a tab character: indent YAML with spaces, not tabs",
        id="yaml-tab",
    ),
    pytest.param(
        GOOD.replace("  name: good\n", "  name: good\n  name: other\n"),
        f"{PIPELINE_FILE}, line 4: duplicate key 'name' (first on line 3); a key may appear once "
        "in a mapping: merge the two or rename one",
        id="yaml-duplicate-key",
    ),
    pytest.param(
        GOOD.replace("model:\n", " model:\n"),
        f"{PIPELINE_FILE}, line 4, column 2: malformed YAML (expected <block end>, but found "
        "'<block mapping start>'): check the indentation of this line against the lines above it",
        id="yaml-bad-indent",
    ),
    pytest.param(
        GOOD.replace("# @package _global_\n", ""),
        f"{PIPELINE_FILE}, line 1: the file does not start with '# @package _global_'; add that "
        "line first, so that its pipeline:, model: and steps: are top-level keys",
        id="no-package-header",
    ),
    pytest.param(
        "",
        f"{PIPELINE_FILE} is empty. A pipeline file starts with '# @package _global_' and sets "
        "pipeline.name, model and steps (see conf/pipeline/train_and_promote.yaml).",
        id="empty-file",
    ),
    pytest.param(
        "# @package _global_\n",
        f"{PIPELINE_FILE} is empty. A pipeline file starts with '# @package _global_' and sets "
        "pipeline.name, model and steps (see conf/pipeline/train_and_promote.yaml).",
        id="header-only",
    ),
    pytest.param(
        GOOD.replace("pipeline:\n  name: good\n", ""),
        f"pipeline.name: {PIPELINE_FILE} does not set pipeline.name; add 'pipeline:' with "
        "'name: bad' under it",
        id="no-pipeline-name",
    ),
    pytest.param(
        GOOD.replace("_target_: bad_steps.numbers", "_target_: 123"),
        "steps.numbers._target_: must be a string, the import path of the step function (e.g. "
        "mypackage.steps.train); got 123 (int)",
        id="target-a-number",
    ),
    pytest.param(
        GOOD.replace("_target_: bad_steps.numbers", "_target_: [bad_steps.numbers]"),
        "steps.numbers._target_: must be a string, the import path of the step function (e.g. "
        "mypackage.steps.train); got ['bad_steps.numbers'] (list)",
        id="target-a-list",
    ),
]


@pytest.mark.parametrize(("text", "message"), FILE_CASES)
def test_bad_pipeline_file(project: tuple[Path, Path], text: str, message: str) -> None:
    """The whole message on stderr, exit code 1, no traceback, the registry unchanged."""
    _, registry = project
    code, err = _run_bad(project, text, "+pipeline=bad", f"registry.uri={registry}")
    assert (code, err) == (1, f"Error: {message}\n")


_SAME = (
    "steps: steps '{a}' and '{b}' both output '{out}' and neither runs after the other, so "
    "version N of model 'counter' would link whichever finished last. Give one of them another "
    'output name (-> Annotated[T, "NAME"]).'
)

OVERRIDE_CASES = [
    pytest.param(
        ["+pipeline=same_output"],
        _SAME.format(a="first_score", b="second_score", out="score"),
        id="same-output-name",
    ),
    pytest.param(
        ["+pipeline=same_plain_output"],
        _SAME.format(a="a", b="b", out="output"),
        id="same-unannotated-output",
    ),
    pytest.param(
        [
            "+pipeline=good",
            "steps.score._target_=bad_steps.score_b",
            "+steps.again._target_=bad_steps.score_a",
            "+steps.again.values=${step:numbers.numbers}",
        ],
        _SAME.format(a="score", b="again", out="score"),
        id="same-output-name-by-override",
    ),
    pytest.param(
        ["+pipeline=good", "executor.num_workers=-1"],
        "executor.num_workers: must be a whole number of at least 1 (or null: one per core), "
        "got -1",
        id="num-workers-negative",
    ),
    pytest.param(
        ["+pipeline=good", "executor=distributed", "executor.n_workers=0"],
        "executor.n_workers: must be a whole number of at least 1 (or null: one per core), got 0",
        id="n-workers-zero",
    ),
    pytest.param(
        ["+pipeline=good", "executor.name=thread"],
        "executor.name: unknown executor 'thread'. Did you mean 'threads'? Choose one of: sync, "
        "threads, processes, distributed (e.g. executor=sync).",
        id="executor-misspelt",
    ),
    pytest.param(
        ["+pipeline=good", "model.name=" + "m" * 256],
        "model.name: invalid model name '" + "m" * 40 + "...': 256 characters; use at most 200",
        id="model-name-too-long",
    ),
]


@pytest.mark.parametrize(("args", "message"), OVERRIDE_CASES)
def test_bad_override(project: tuple[Path, Path], args: list[str], message: str) -> None:
    """The whole message on stderr, exit code 1, no traceback, the registry unchanged."""
    _, registry = project
    code, err = _run_bad(project, None, *args, f"registry.uri={registry}")
    assert (code, err) == (1, f"Error: {message}\n")


def test_same_output_without_a_model_runs(project: tuple[Path, Path], tmp_path: Path) -> None:
    """Two steps may share an output name when no model version links it."""
    folder, _ = project
    res = run_mlops("+pipeline=same_output_no_model", f"registry.uri={tmp_path / 'r'}", cwd=folder)
    assert res.returncode == 0, res.output


# -- generated variants: every line of a good file, broken one way at a time ---------------------


def _lines() -> list[str]:
    return GOOD.splitlines(keepends=True)


def _indented() -> list[int]:
    return [i for i, line in enumerate(_lines()) if line.startswith(" ")]


def _with_tab(i: int) -> str:
    lines = _lines()
    lines[i] = "\t" + lines[i].lstrip(" ")
    return "".join(lines)


@pytest.mark.parametrize("i", _indented())
def test_tab_on_any_line(project: tuple[Path, Path], i: int) -> None:
    """A tab as indentation on any line: the file and that line are named."""
    _, registry = project
    code, err = _run_bad(project, _with_tab(i), "+pipeline=bad", f"registry.uri={registry}")
    assert (code, err) == (
        1,
        f"Error: {PIPELINE_FILE}, line {i + 1}, column 1: a tab character: indent YAML with "
        "spaces, not tabs\n",
    )


def _mapping_lines() -> list[int]:
    """Lines that hold a key (and so can be repeated right after themselves)."""
    return [i for i, line in enumerate(_lines()) if re.match(r"^\s*\w+:\s*\S+\s*$", line)]


@pytest.mark.parametrize("i", _mapping_lines())
def test_duplicate_key_on_any_line(project: tuple[Path, Path], i: int) -> None:
    """A key written twice in one mapping: both lines and the key are named."""
    _, registry = project
    lines = _lines()
    key = lines[i].strip().split(":")[0]
    text = "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
    code, err = _run_bad(project, text, "+pipeline=bad", f"registry.uri={registry}")
    assert (code, err) == (
        1,
        f"Error: {PIPELINE_FILE}, line {i + 2}: duplicate key '{key}' (first on line {i + 1}); "
        "a key may appear once in a mapping: merge the two or rename one\n",
    )


def _shifted(i: int, shift: int) -> str:
    lines = _lines()
    lines[i] = " " * shift + lines[i]
    return "".join(lines)


def _malformed(text: str) -> bool:
    import yaml

    try:
        yaml.safe_load(text)
    except yaml.YAMLError:
        return True
    return False


SHIFTED = [
    (i, shift)
    for i in range(len(_lines()))
    for shift in (1, 2, 3)
    if _malformed(_shifted(i, shift))
]


@pytest.mark.parametrize(("i", "shift"), SHIFTED)
def test_shifted_line(project: tuple[Path, Path], i: int, shift: int) -> None:
    """A line shifted right so that the YAML breaks: the file and a line next to it are named."""
    _, registry = project
    code, err = _run_bad(project, _shifted(i, shift), "+pipeline=bad", f"registry.uri={registry}")
    assert code == 1 and err.count("\n") == 1, err
    m = re.fullmatch(
        rf"Error: {PIPELINE_FILE}, line (\d+), column \d+: malformed YAML \(.*\): check the "
        r"indentation of this line against the lines above it\n|"
        rf"Error: {PIPELINE_FILE}, line (\d+), column \d+: malformed YAML: .*\n",
        err,
    )
    assert m is not None, err
    line = int(m.group(1) or m.group(2))
    assert i + 1 <= line <= i + 3, err


def test_shifted_lines_are_generated() -> None:
    """The generator finds broken variants on most lines (else the test above tests little)."""
    assert len({i for i, _ in SHIFTED}) >= len(_lines()) // 2


@pytest.mark.parametrize(
    "value",
    ["-1", "0", "-100", "1.5", "abc", "true", "'-3'", "[1]", "{a:1}"],
    ids=lambda v: f"value={v}",
)
@pytest.mark.parametrize("key", ["num_workers", "n_workers", "threads_per_worker"])
def test_executor_counts(project: tuple[Path, Path], key: str, value: str) -> None:
    """Worker counts that are not whole numbers >= 1 are refused before anything is written."""
    _, registry = project
    code, err = _run_bad(
        project, None, "+pipeline=good", f"executor.{key}={value}", f"registry.uri={registry}"
    )
    assert code == 1, err
    assert err.startswith(
        f"Error: executor.{key}: must be a whole number of at least 1 (or null: one per core), got "
    ), err
    assert err.count("\n") == 1, err


# -- the registry location --------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["", "''", "' '"], ids=["bare", "quoted", "blank"])
def test_empty_registry_uri(project: tuple[Path, Path], uri: str) -> None:
    """``registry.uri=''`` is refused; the current folder does not become a registry."""
    folder, _ = project
    code, err = _run_bad(project, None, "+pipeline=good", f"registry.uri={uri}")
    assert code == 1
    assert err.startswith("Error: registry.uri: is empty ("), err
    assert not {"objects", "runs", "models", "cache", ".mlops"} & {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("form", ["{path}", "file://{path}"])
def test_registry_uri_naming_a_file(project: tuple[Path, Path], tmp_path: Path, form: str) -> None:
    """A registry.uri that names a file says so, with the key."""
    afile = tmp_path / "notes.txt"
    afile.write_text("not a registry")
    code, err = _run_bad(project, None, "+pipeline=good", "registry.uri=" + form.format(path=afile))
    assert (code, err) == (
        1,
        f"Error: registry.uri: {afile} is a file, not a folder; point registry.uri at a folder "
        "(it is created if missing) or a URL\n",
    )
    assert afile.read_text() == "not a registry"


def test_new_registry_folder_is_created(project: tuple[Path, Path], tmp_path: Path) -> None:
    """``python -m mlops`` on a folder that does not exist yet creates it (the friendly case)."""
    folder, _ = project
    new = tmp_path / "a" / "new" / "registry"
    res = run_mlops("+pipeline=good", f"registry.uri={new}", cwd=folder)
    assert res.returncode == 0, res.output
    assert (new / "runs").is_dir()


COMMANDS = [
    ["models"],
    ["versions", "counter"],
    ["history", "counter"],
    ["runs"],
    ["gc"],
    ["gc", "--dry-run"],
    ["rollback", "counter", "production"],
    ["promote", "counter", "1", "production"],
    ["show-run", "20260101-000000-000000-abcdef"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c))
@pytest.mark.parametrize("mistake", ["missing", "typo", "file"])
def test_registry_commands_on_a_missing_folder(
    project: tuple[Path, Path], command: list[str], mistake: str
) -> None:
    """``mlops versions``, ``gc`` ... on a folder that is not there: said, not an empty registry."""
    folder, registry = project
    path = {
        "missing": folder / "no-such-registry",
        "typo": registry.with_name(registry.name + "y"),
        "file": folder / "bad_steps.py",
    }[mistake]
    res = run_mlops(*command, "--registry", str(path), cwd=folder)
    what = "is a file, not a registry folder" if mistake == "file" else "does not exist"
    assert (res.returncode, res.stderr, res.stdout) == (
        1,
        f"Error: --registry: {path} {what}. Pass the folder python -m mlops wrote to with "
        "--registry PATH (the default is .mlops in the current folder)\n",
        "",
    )
    assert not path.exists() or path.is_file()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        pytest.param(
            ["rollback", "countr", "production"],
            "model 'countr' has no versions yet. Did you mean 'counter'? Run the pipeline that "
            "trains it (e.g. python -m mlops +pipeline=train_and_promote) to register one.",
            id="rollback-misspelt-model",
        ),
        pytest.param(
            ["rollback", "counter", "production"],
            "model 'counter': stage 'production' has no earlier holder to roll back to (see "
            "`mlops history counter`)",
            id="rollback-no-earlier-holder",
        ),
    ],
)
def test_rollback_messages(project: tuple[Path, Path], command: list[str], message: str) -> None:
    """An unknown model is named as such, with the nearest name; a known one without history too."""
    folder, registry = project
    before = _snapshot(registry)
    res = run_mlops(*command, "--registry", str(registry), cwd=folder)
    assert (res.returncode, res.stderr) == (1, f"Error: {message}\n")
    assert _snapshot(registry) == before


def test_project_executor_config(project: tuple[Path, Path], tmp_path: Path) -> None:
    """A project's own conf/executor/NAME.yaml is a valid choice; a misspelt one is named."""
    folder, _ = project
    own = folder / "conf" / "executor" / "one_at_a_time.yaml"
    own.parent.mkdir(exist_ok=True)
    own.write_text("name: sync\n")
    try:
        res = run_mlops(
            "+pipeline=good", "executor=one_at_a_time", f"registry.uri={tmp_path}/r", cwd=folder
        )
        assert res.returncode == 0, res.output
        assert "executor sync" in res.stdout
        res = run_mlops(
            "+pipeline=good", "executor=one_at_time", f"registry.uri={tmp_path}/r", cwd=folder
        )
        assert (res.returncode, res.stderr) == (
            1,
            "Error: executor: unknown executor 'one_at_time'. Did you mean 'one_at_a_time'? Choose "
            "one of: sync, threads, processes, distributed, one_at_a_time (e.g. executor=sync).\n",
        )
    finally:
        own.unlink()


def test_name_from_a_defaults_list(project: tuple[Path, Path], tmp_path: Path) -> None:
    """A pipeline file whose defaults list brings pipeline.name is not refused (friendly case)."""
    folder, _ = project
    base = folder / "conf" / "pipeline" / "base_name.yaml"
    base.write_text("# @package _global_\npipeline:\n  name: from_base\n")
    text = GOOD.replace("pipeline:\n  name: good\n", "defaults:\n  - base_name\n")
    (folder / PIPELINE_FILE).write_text(text)
    try:
        res = run_mlops("+pipeline=bad", f"registry.uri={tmp_path / 'r'}", cwd=folder)
    finally:
        base.unlink()
        (folder / PIPELINE_FILE).unlink()
    assert res.returncode == 0, res.output
    assert "mlops: running from_base" in res.stdout
