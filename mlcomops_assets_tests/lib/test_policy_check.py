"""``mlcomops policy check``: every mismatch between the policy and its data at once, each naming the
policy key that fixes it, and none quoting a cell of the data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from mlcomops_assets.lib.policy_check import check_frame, check_policy, load_source, report
from mlcomops_assets.policy import Policy, parse_policy
from mlcomops_assets_tests.conftest import REPO, default_policy

SECRET_EMAIL = "jane.secret@example.org"


@pytest.fixture(scope="module")
def arrests_as_read(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The default data exactly as the pipeline reads it (exported to CSV, labels as text)."""
    policy = parse_policy(default_policy())
    frame, source = load_source(policy.data, tmp_path_factory.mktemp("home"))
    assert "sklego_arrests" in source
    return frame


def _keys(policy: Policy, frame: pd.DataFrame) -> list[str]:
    return [p.key for p in check_frame(policy, frame)]


def test_the_repository_policy_fits_the_default_data(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(REPO / "expectations", home / "expectations")
    result = check_policy(parse_policy(default_policy()), home)
    assert result.problems == [] and result.rows == 5226 and result.columns == 8
    assert report(result, home / "governance.yaml").endswith("no problems")


def test_every_problem_is_listed_at_once_with_its_key(arrests_as_read: pd.DataFrame) -> None:
    raw = default_policy()
    raw["data"]["columns"]["employed"]["max_null_fraction"] = 0.01
    raw["data"]["row_count"]["min"] = 6000
    raw["data"]["record_key"] = "checks"
    policy = parse_policy(raw)
    frame = arrests_as_read.copy()
    frame = frame.drop(columns=["checks"]).assign(branch="north")  # a missing and an undeclared column
    frame["checks"] = 1  # put back as a constant: duplicated record keys
    frame.loc[:99, "employed"] = None  # 100 missing > 1%
    frame.loc[:4, "age"] = 150  # above max 100 and outside the age bins
    frame.loc[:2, "colour"] = "Green"  # not an allowed value
    problems = check_frame(policy, frame)
    keys = [p.key for p in problems]
    for key in (
        "data.columns.branch",
        "data.columns.employed.max_null_fraction",
        "data.columns.age.max",
        "data.columns.age.fairness_bins",
        "data.columns.colour.allowed_values",
        "data.row_count.min",
        "data.record_key",
    ):
        assert key in keys, (key, keys)
    employed = next(p for p in problems if p.key == "data.columns.employed.max_null_fraction")
    assert "1.9%" in employed.message and "0.01" in employed.message  # observed share and the declared one
    colour = next(p for p in problems if p.key == "data.columns.colour.allowed_values")
    assert "3 values" in colour.message and "Green" not in colour.message  # counts, never the value


def test_missing_and_undeclared_columns(arrests_as_read: pd.DataFrame) -> None:
    policy = parse_policy(default_policy())
    frame = arrests_as_read.drop(columns=["employed"]).assign(extra=1)
    problems = {p.key: p.message for p in check_frame(policy, frame)}
    assert "not in the file" in problems["data.columns.employed"]
    assert "not declared" in problems["data.columns.extra"]


def test_identifier_values_in_a_feature_are_counted_not_quoted(arrests_as_read: pd.DataFrame) -> None:
    raw = default_policy()
    raw["data"]["columns"]["note"] = {"role": "feature", "dtype": "string"}
    policy = parse_policy(raw)
    frame = arrests_as_read.assign(note=[f"note {i}" for i in range(len(arrests_as_read))])
    frame.loc[:1, "note"] = SECRET_EMAIL
    problems = [p for p in check_frame(policy, frame) if p.key == "data.columns.note.role"]
    messages = " ".join(p.message for p in problems)
    assert "2 values look like e-mail addresses" in messages
    assert "distinct: it identifies rows" in messages  # near-unique text declared as a feature
    assert SECRET_EMAIL not in messages


def test_group_sizes_target_labels_and_class_share(arrests_as_read: pd.DataFrame) -> None:
    raw = default_policy()
    raw["gates"]["fairness"]["min_group_size"] = 500  # 'Female' has 443 rows
    raw["data"]["min_class_share"] = 0.2  # 'No' is 17% of the labels
    policy = parse_policy(raw)
    problems = check_frame(policy, arrests_as_read)
    group = [p for p in problems if p.key == "gates.fairness.min_group_size"]
    assert any("sex='Female' has 443 rows" in p.message for p in group)
    assert any(p.key == "data.min_class_share" and "'No'" in p.message for p in problems)

    only_yes = arrests_as_read[arrests_as_read["released"] == "Yes"]
    keys = _keys(parse_policy(default_policy()), only_yes)
    assert "data.columns.released.allowed_values" in keys  # one declared label never occurs


def test_wrong_dtype_and_cutoff(arrests_as_read: pd.DataFrame) -> None:
    raw = default_policy()
    raw["data"]["training_cutoff"] = 1990  # before every year: nothing to train on
    policy = parse_policy(raw)
    frame = arrests_as_read.copy()
    frame["checks"] = frame["checks"].astype(float)
    frame.loc[0, "checks"] = None  # whole numbers with a gap read as float
    problems = {p.key: p.message for p in check_frame(policy, frame)}
    assert "declare dtype: float" in problems["data.columns.checks.dtype"]
    assert "0 rows" in problems["data.training_cutoff"]


def test_an_unreadable_source_and_a_missing_expectations_file_are_problems(tmp_path: Path) -> None:
    raw = default_policy()
    raw["data"]["source"] = {"kind": "file", "path": "data/missing.csv"}
    result = check_policy(parse_policy(raw), tmp_path)  # no expectations/ folder either
    keys = [p.key for p in result.problems]
    assert keys == ["data.extra_expectations", "data.source"]
    assert "file not found" in str(result.problems[1])
    assert "2 problem(s)" in report(result, tmp_path / "governance.yaml")
