"""The policy file is validated on load and errors name the key and what is expected."""

from pathlib import Path

import pytest
import yaml

from mlcomops_assets.policy import PolicyError, load_policy, parse_policy
from mlcomops_assets_tests.conftest import REPO, default_policy


def test_repository_policy_is_valid():
    policy = load_policy(REPO / "governance.yaml")
    assert policy.data.target == "released"
    assert policy.data.feature_columns == ["age", "citizen", "employed", "checks"]
    assert policy.data.protected_attributes == ["colour", "sex", "age", "citizen"]
    assert "colour" not in policy.data.feature_columns


def _error(mutate) -> str:
    raw = default_policy()
    mutate(raw)
    with pytest.raises(PolicyError) as info:
        parse_policy(raw)
    return str(info.value)


def test_unknown_key_is_named():
    message = _error(lambda p: p["gates"]["fairness"].update({"max_demographic_parity_diff": 0.1}))
    assert "gates.fairness.max_demographic_parity_diff" in message
    assert "unknown key" in message


def test_wrong_type_is_named_with_value():
    message = _error(lambda p: p["gates"]["evaluation"].update({"min_roc_auc": "high"}))
    assert "gates.evaluation.min_roc_auc" in message and "'high'" in message


def test_out_of_range_threshold_is_named():
    message = _error(lambda p: p["gates"]["fairness"].update({"max_demographic_parity_difference": 1.5}))
    assert "gates.fairness.max_demographic_parity_difference" in message
    assert "less than or equal to 1" in message


def test_missing_required_key_is_named():
    message = _error(lambda p: p.pop("seed"))
    assert "seed: required key is missing" in message


def test_positive_label_must_be_a_target_value():
    message = _error(lambda p: p["data"].update({"positive_label": "Released"}))
    assert "positive_label 'Released'" in message and "['Yes', 'No']" in message


def test_protected_feature_needs_justification():
    message = _error(lambda p: p["data"]["columns"]["citizen"].pop("justification"))
    assert "data.columns.citizen" in message and "justification" in message


def test_unknown_model_parameter_is_named():
    message = _error(lambda p: p["model"]["candidates"]["gradient_boosting"]["grid"].update({"n_estimator": [10]}))
    assert "model.candidates.gradient_boosting" in message and "n_estimator" in message and "n_estimators" in message


def test_an_interpretable_alternative_is_required():
    message = _error(lambda p: p["model"]["candidates"]["logistic_regression"].update({"interpretable": False}))
    assert "interpretable" in message
    message = _error(lambda p: p["model"]["candidates"].pop("gradient_boosting"))
    assert "at least two candidates" in message


def _waiver(**changes):
    waiver = {
        "gate": "fairness",
        "metric": "equalized_odds_difference",
        "attribute": "citizen",
        "approved_by": "dpo@example.org",
        "reason": "Gap traced to court no-show rates; reviewed with the supervisor.",
        "approved_on": "2026-01-01",
        "expires": "2026-06-30",
    }
    return {**waiver, **changes}


def test_waivers_are_validated():
    assert "expires (2025-01-01) is before approved_on" in _error(
        lambda p: p.update(waivers=[_waiver(expires="2025-01-01")])
    )
    assert "'gdp' is not one of" in _error(lambda p: p.update(waivers=[_waiver(attribute="gdp")]))
    assert "not a fairness gate" in _error(lambda p: p.update(waivers=[_waiver(metric="roc_auc")]))
    assert "waivers.0.approved_by" in _error(lambda p: p.update(waivers=[_waiver(approved_by="")]))
    assert "waivers.0.reason" in _error(lambda p: p.update(waivers=[_waiver(reason="ok")]))


def test_intersection_of_unprotected_column_fails():
    message = _error(lambda p: p["gates"]["fairness"].update({"intersections": [["colour", "checks"]]}))
    assert "['checks']" in message


def test_file_source_needs_a_supported_path():
    message = _error(lambda p: p["data"].update({"source": {"kind": "file", "path": "data/x.xlsx"}}))
    assert "data.source" in message and ".csv or .parquet" in message


def test_missing_and_malformed_files(tmp_path: Path):
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "governance.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    bad.write_text(yaml.safe_dump(["a", "list"]))
    with pytest.raises(PolicyError, match="must be a YAML mapping"):
        load_policy(bad)


def test_fingerprint_tracks_thresholds():
    base = parse_policy(default_policy())
    raw = default_policy()
    raw["gates"]["fairness"]["max_demographic_parity_difference"] = 0.05
    assert parse_policy(raw).fingerprint != base.fingerprint
    assert parse_policy(default_policy()).fingerprint == base.fingerprint
