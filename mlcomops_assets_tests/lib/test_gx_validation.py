"""The data contract run by Great Expectations names the rule, the column and the offending count."""

import numpy as np

from mlcomops_assets.lib.gx_validation import blocking_failures, validate
from mlcomops_assets.lib.rules import rules_from_policy
from mlcomops_assets_tests.conftest import REPO


def _failed(frame, policy):
    return {r.rule: r for r in validate(frame, rules_from_policy(policy.data, REPO), "t").results if not r.passed}


def test_default_data_passes_every_rule(arrests, policy):
    results = validate(arrests, rules_from_policy(policy.data, REPO), "t").results
    assert len(results) == len(rules_from_policy(policy.data, REPO))
    assert [r.rule for r in results if not r.passed] == []


def test_out_of_range_and_unknown_values_are_counted(arrests, policy):
    broken = arrests.copy()
    broken.loc[:6, "age"] = -4  # 7 rows
    broken.loc[100:102, "colour"] = "Green"  # 3 rows
    failed = _failed(broken, policy)
    assert set(failed) == {"age__range", "colour__allowed_values"}
    assert failed["age__range"].unexpected_count == 7 and failed["age__range"].column == "age"
    assert "'age'" in failed["age__range"].message and "7 of 5,226 rows" in failed["age__range"].message
    assert failed["colour__allowed_values"].unexpected_count == 3
    # Only counts leave the validation: no offending value is carried in the message.
    assert "Green" not in failed["colour__allowed_values"].message


def test_missing_column_and_wrong_type_are_reported(arrests, policy):
    broken = arrests.drop(columns=["checks"]).assign(age=arrests["age"].astype(str))
    failed = _failed(broken, policy)
    assert "missing ['checks']" in failed["columns_match_policy"].message
    assert "missing from the data" in failed["checks__not_null"].message
    assert "found dtype" in failed["age__type"].message
    assert all(r.severity == "critical" for r in blocking_failures(list(failed.values())))


def test_nulls_and_single_class_label(arrests, policy):
    broken = arrests.assign(released="Yes")
    broken.loc[:9, "employed"] = np.nan
    failed = _failed(broken, policy)
    assert failed["employed__not_null"].unexpected_count == 10
    assert "released__both_classes_present" in failed


def test_every_failure_names_the_policy_key_that_would_change_it(arrests, policy):
    broken = arrests.assign(released="Yes")
    broken.loc[:9, "employed"] = np.nan
    broken.loc[:6, "age"] = -4
    failed = _failed(broken, policy)
    assert failed["employed__not_null"].message.endswith("Policy key: data.columns.employed.max_null_fraction.")
    assert "Policy key: data.columns.age.min / data.columns.age.max." in failed["age__range"].message
    assert "Policy key: data.columns.released.allowed_values." in failed["released__both_classes_present"].message
    assert all("Policy key: " in r.message for r in failed.values())
    passed = validate(arrests, rules_from_policy(policy.data, REPO), "t").results
    assert not any("Policy key" in r.message for r in passed)


def test_the_basic_result_format_gives_the_results_summary_gave(arrests, policy, monkeypatch):
    """BASIC (no list of unexpected row indices, the contract's main cost at 10M rows) yields the very same
    per-rule results and messages as SUMMARY, on data that passes and on data breaking many rules."""
    from mlcomops_assets.lib import gx_validation

    broken = arrests.copy()
    broken.loc[:6, "age"] = -4
    broken["colour"] = "White"
    broken.loc[:9, "colour"] = "Black"  # a group below its minimum size
    broken.loc[100:102, "colour"] = "Green"
    broken.loc[200:260, "sex"] = None
    rules = rules_from_policy(policy.data, REPO)
    for frame in (arrests, broken):
        basic = validate(frame, rules, "t").results
        monkeypatch.setattr(gx_validation, "RESULT_FORMAT", {**gx_validation.RESULT_FORMAT, "result_format": "SUMMARY"})
        summary = validate(frame, rules, "t").results
        monkeypatch.undo()
        assert basic == summary
    assert gx_validation.RESULT_FORMAT["result_format"] == "BASIC"
    assert {r.rule for r in basic if not r.passed} >= {
        "age__range",
        "colour__allowed_values",
        "colour__group__Black__min_size",
        "sex__not_null",
    }
