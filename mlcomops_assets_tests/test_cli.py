"""The ``mlcomops`` command line, run as a person runs it: in a subprocess, in a project home that
``MLCOMOPS_HOME`` names. ``policy init`` drafts a policy that loads and checks clean; ``policy check``
lists every problem at once; exit codes 0 (ok), 1 (problems found), 2 (usage or policy error)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlcomops_assets.policy import POLICY_ERROR_EXIT_CODE, ColumnRole, load_policy
from mlcomops_assets_tests.conftest import REPO
from mlcomops_assets_tests.lib.test_policy_draft import IDENTIFIERS, applicants


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def mlcomops(home: Path, *args: str, script: bool = False) -> subprocess.CompletedProcess:
    """Run the command line in ``home`` with ``MLCOMOPS_HOME`` pointing there."""
    env = {**os.environ, "MLCOMOPS_HOME": str(home)}
    command = (
        [str(Path(sys.executable).parent / "mlcomops")] if script else [sys.executable, "-m", "mlcomops_assets.cli"]
    )
    return subprocess.run([*command, *args], cwd=home, env=env, capture_output=True, text=True, timeout=180)


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "mlcomops"
    assert script.is_file(), "run `make setup`: it installs the package (and its console script) editable"
    done = mlcomops(REPO, "--help", script=True)
    assert done.returncode == 0, done.stderr
    assert "policy" in done.stdout


def test_init_drafts_a_policy_that_loads_and_checks_clean(home: Path) -> None:
    frame = applicants()
    frame.to_csv(home / "applicants.csv", index=False)

    done = mlcomops(home, "policy", "init", "applicants.csv")

    assert done.returncode == 0, done.stderr
    policy = load_policy(home / "governance.yaml")
    columns = policy.data.columns
    assert [n for n, c in columns.items() if c.role == ColumnRole.IDENTIFIER] == IDENTIFIERS
    assert columns["age"].role == ColumnRole.PROTECTED and columns["age"].fairness_bins
    assert sorted(columns["approved"].allowed_values or []) == ["0", "1"]
    assert policy.data.time_column is None
    assert columns["income"].max_null_fraction >= frame["income"].isna().mean() > 0
    assert policy.data.source.path == "applicants.csv"
    text = (home / "governance.yaml").read_text()
    for column in ("email", "full_name"):
        assert not [v for v in frame[column] if v in text], f"{column} values in the draft"

    checked = mlcomops(home, "policy", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no problems" in checked.stdout


def test_init_refuses_to_overwrite_without_force(home: Path) -> None:
    applicants(rows=120).to_csv(home / "applicants.csv", index=False)
    (home / "governance.yaml").write_text("# hand-written, keep me\n")

    refused = mlcomops(home, "policy", "init", "applicants.csv")
    assert refused.returncode == POLICY_ERROR_EXIT_CODE
    assert "--force" in refused.stderr
    assert (home / "governance.yaml").read_text() == "# hand-written, keep me\n"

    forced = mlcomops(home, "policy", "init", "applicants.csv", "--force", "--target", "approved")
    assert forced.returncode == 0, forced.stderr
    assert load_policy(home / "governance.yaml").data.target == "approved"


def test_init_reads_parquet_and_writes_where_asked(home: Path) -> None:
    (home / "data").mkdir()
    applicants().to_parquet(home / "data" / "applicants.parquet")

    done = mlcomops(home, "policy", "init", "data/applicants.parquet", "--output", "drafts/policy.yaml")
    assert done.returncode == 0, done.stderr
    policy = load_policy(home / "drafts" / "policy.yaml")
    assert policy.data.source.path == "data/applicants.parquet"
    assert sorted(policy.data.columns["approved"].allowed_values or []) == ["0", "1"]

    checked = mlcomops(home, "policy", "check", "--policy", "drafts/policy.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_init_without_a_target_asks_for_one(home: Path) -> None:
    applicants(rows=60).drop(columns=["approved"]).to_csv(home / "people.csv", index=False)
    done = mlcomops(home, "policy", "init", "people.csv")
    assert done.returncode == POLICY_ERROR_EXIT_CODE
    assert "--target" in done.stderr
    assert not (home / "governance.yaml").exists()


def test_check_lists_every_problem_of_a_broken_policy_at_once(home: Path) -> None:
    applicants().to_csv(home / "applicants.csv", index=False)
    assert mlcomops(home, "policy", "init", "applicants.csv").returncode == 0
    raw = yaml.safe_load((home / "governance.yaml").read_text())
    columns = raw["data"]["columns"]
    del columns["region"]  # in the file, no longer declared
    columns["branch"] = {"role": "feature", "dtype": "category", "allowed_values": ["a", "b"]}  # not in the file
    columns["income"]["max_null_fraction"] = 0.01  # ~15% are missing
    (home / "governance.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))

    done = mlcomops(home, "policy", "check")

    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "3 problem(s)" in out
    assert "data.columns.region: in the file but not declared" in out
    assert "data.columns.branch: declared but not in the file" in out
    assert "data.columns.income.max_null_fraction:" in out and "above the declared 0.01" in out


def test_check_of_the_repository_policy_passes(home: Path) -> None:
    shutil.copy(REPO / "governance.yaml", home / "governance.yaml")
    shutil.copytree(REPO / "expectations", home / "expectations")
    done = mlcomops(home, "policy", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no problems" in done.stdout


def test_an_invalid_policy_is_a_policy_error(home: Path) -> None:
    raw = yaml.safe_load((REPO / "governance.yaml").read_text())
    raw["gates"]["fairness"]["min_group_sise"] = 10
    (home / "governance.yaml").write_text(yaml.safe_dump(raw))
    done = mlcomops(home, "policy", "check")
    assert done.returncode == POLICY_ERROR_EXIT_CODE
    assert "gates.fairness.min_group_sise: unknown key" in done.stderr
