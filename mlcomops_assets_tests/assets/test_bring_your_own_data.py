"""Bring your own data as the README says: `mlcomops policy init`, review, run the graph.

The data is new to the project: Faker names, e-mail addresses and customer ids, a numeric age, a column
with missing values, a 0/1 target and no date column. The drafted policy is used as written (reviewing
the roles confirms them), so what is tested is the draft itself.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlcomops_assets.constants import A_CANDIDATE_PASSES_EVERY_GATE, CHAMPION_MODEL
from mlcomops_assets.policy import ColumnRole, load_policy
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets.summary import render
from mlcomops_assets_tests.conftest import materialize

pytestmark = pytest.mark.e2e

SOURCE = "data/source/applications.csv"


def applications(rows: int = 3000, seed: int = 5, rare_nationality: bool = False) -> pd.DataFrame:
    """Loan applications: the decision depends on income, savings and housing, not on age or sex."""
    from faker import Faker

    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    income = rng.lognormal(mean=10.4, sigma=0.35, size=rows).round(0)
    savings = rng.gamma(2.0, 2500.0, size=rows).round(2)
    housing = rng.choice(["own", "rent", "free"], size=rows, p=[0.5, 0.4, 0.1])
    logit = (
        1.6 * (np.log(income) - 10.4) / 0.35
        + 0.8 * (savings - 5000) / 3500
        + np.where(housing == "own", 0.6, 0.0)
        + rng.normal(0, 1.0, rows)
    )
    savings[rng.random(rows) < 0.08] = np.nan  # missing values the draft must allow
    frame = pd.DataFrame(
        {
            "customer_id": [f"K-{i:06d}" for i in range(rows)],
            "full_name": [fake.name() for _ in range(rows)],
            "email": [fake.unique.email() for _ in range(rows)],
            "age": rng.integers(18, 80, size=rows),
            "sex": rng.choice(["female", "male"], size=rows),
            "income": income,
            "savings": savings,
            "housing": housing,
            "repaid": (logit > 0).astype(int),
        }
    )
    if rare_nationality:
        # 2% of the rows: enough for the data contract (30 rows), too few in the holdout to compare.
        frame.insert(5, "nationality", np.where(rng.random(rows) < 0.02, "other", "domestic"))
    return frame


def _mlcomops(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLCOMOPS_HOME": str(home)}
    command = [sys.executable, "-m", "mlcomops_assets.cli", *args]
    return subprocess.run(command, cwd=home, env=env, capture_output=True, text=True, timeout=300)


def _drafted_home(tmp_path: Path, frame: pd.DataFrame) -> Path:
    home = tmp_path / "home"
    (home / "data" / "source").mkdir(parents=True)
    frame.to_csv(home / SOURCE, index=False)
    drafted = _mlcomops(home, "policy", "init", SOURCE, "--target", "repaid")
    assert drafted.returncode == 0, drafted.stderr
    checked = _mlcomops(home, "policy", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return home


def test_a_drafted_policy_runs_the_whole_graph_unedited(tmp_path):
    home = _drafted_home(tmp_path, applications())
    policy = load_policy(home / "governance.yaml")
    roles = {name: column.role for name, column in policy.data.columns.items()}
    assert {n for n, r in roles.items() if r == ColumnRole.IDENTIFIER} == {"customer_id", "full_name", "email"}
    assert roles["age"] == roles["sex"] == ColumnRole.PROTECTED and policy.data.time_column is None

    with materialize(home) as (result, instance):
        failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
        assert result.success, failed
        champion = instance.get_latest_materialization_event(CHAMPION_MODEL).asset_materialization.metadata
        assert champion["verdict"].value.startswith("promoted: every gate passed")
        summary = render(ProjectPaths(home), instance)
    assert "fairness verdict    passed:" in summary
    assert "inbox" in summary  # no time column: batches come from the inbox only
    # The identifiers never left the raw layer.
    validated = pd.read_parquet(home / "data" / "validated" / "validated_data.parquet")
    assert not {"customer_id", "full_name", "email"} & set(validated.columns)


def test_an_unevaluable_group_blocks_as_not_evaluated_until_a_waiver_names_it(tmp_path):
    home = _drafted_home(tmp_path, applications(rare_nationality=True))
    policy_file = home / "governance.yaml"
    assert load_policy(policy_file).data.columns["nationality"].role == ColumnRole.PROTECTED

    with materialize(home) as (result, _):
        assert not result.success
        (gate,) = [e for e in result.get_asset_check_evaluations() if e.check_name == A_CANDIDATE_PASSES_EVERY_GATE]
        assert not gate.passed and "nationality: not evaluated" in gate.description
        assert CHAMPION_MODEL.to_user_string() not in {
            m.asset_key.to_user_string() for m in result.get_asset_materialization_events() if m.asset_key
        }

    raw = yaml.safe_load(policy_file.read_text())
    today = dt.datetime.now(dt.UTC).date()
    raw["waivers"] = [
        {
            "gate": "fairness",
            "metric": "not_evaluated",
            "attribute": "nationality",
            "approved_by": "dpo@example.org",
            "reason": "Too few non-domestic applicants to compare; reviewed monthly on pooled batches.",
            "approved_on": today - dt.timedelta(days=1),  # dates as YAML writes them unquoted
            "expires": today + dt.timedelta(days=30),
        }
    ]
    policy_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    with materialize(home) as (result, instance):
        assert result.success
        summary = render(ProjectPaths(home), instance)
    assert "fairness verdict    passed only under waivers:" in summary
    assert "nationality: not evaluated" in summary and "waived by dpo@example.org until" in summary
