"""The `dg` command line works from the repository root with the `[tool.dg]` block of pyproject.toml.

Both commands run as an engineer or `make lint` runs them: from the repository root, without
``MLCOMOPS_HOME`` (the code location finds its home itself) and with the project's Dagster instance
settings in ``DAGSTER_HOME`` (here a temporary copy, so the real instance is never touched).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DG = Path(sys.executable).parent / "dg"


@pytest.fixture
def dg_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLCOMOPS_HOME"}
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "config" / "dagster.yaml", dagster_home / "dagster.yaml")
    # As in the Makefile; VIRTUAL_ENV tells dg that the project's .venv is the active one.
    env.update(DAGSTER_HOME=str(dagster_home), VIRTUAL_ENV=str(Path(sys.executable).parent.parent))
    return env


def _dg(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DG), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_dg_check_defs(dg_env):
    done = _dg("check", "defs", env=dg_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully." in done.stdout


def test_dg_list_defs(dg_env):
    done = _dg("list", "defs", "--json", env=dg_env)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assets = {asset["asset_key"] for asset in listed["assets"]}
    assert {"raw_data", "trained_model", "champion_model"} <= assets
    assert {"end_to_end", "monitor_batch"} <= {job["name"] for job in listed["jobs"]}
