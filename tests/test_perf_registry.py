"""Listing versions at scale: one pass over the stage record and the notes gives every version
the same stage and notes that reading it alone does (generated histories of stage changes)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mlops.registry import Registry


@pytest.mark.parametrize("seed", range(6))
def test_listed_versions_equal_versions_read_alone(tmp_path: Path, seed: int) -> None:
    """list_versions and read_version agree on stage and notes after random stage changes."""
    rng = random.Random(seed)
    reg = Registry(str(tmp_path / "registry"))
    models = reg.models
    versions = rng.randint(3, 12)
    for _ in range(versions):
        reg.register_model_version("m")
    for _ in range(rng.randint(0, 15)):
        n = rng.randint(1, versions)
        stage = rng.choice(["staging", "production", "archived", "staging", "production"])
        models.set_stage("m", n, stage, force=True)
    for _ in range(rng.randint(0, 6)):
        models.add_note("m", rng.randint(1, versions), {"k": rng.random()})
    listed = models.list_versions("m")
    assert [v.number for v in listed] == list(range(1, versions + 1))
    for v in listed:
        alone = models.read_version("m", v.number)
        assert alone is not None
        assert (v.stage, v.notes) == (alone.stage, alone.notes), v.number
    stages = [v.stage for v in listed]
    assert stages.count("production") <= 1 and stages.count("staging") <= 1
