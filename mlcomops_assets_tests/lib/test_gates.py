"""Waivers: only an approved waiver in force, for the same gate, metric, attribute and bound, excuses."""

import datetime as dt

import pytest

from mlcomops_assets.lib.gates import (
    FAIRNESS_METRICS,
    GAP_METRICS,
    Violation,
    apply_waivers,
    assess,
    batch_verdicts,
    evaluation_violations,
    largest_gap,
)
from mlcomops_assets.policy import parse_policy
from mlcomops_assets_tests.conftest import default_policy

EOD = Violation("fairness", "equalized_odds_difference", 0.27, 0.25, "citizen")
DAY = dt.date(2026, 3, 1)


def _policy(**waiver):
    raw = default_policy()
    raw["waivers"] = [
        {
            "gate": "fairness",
            "metric": "equalized_odds_difference",
            "attribute": "citizen",
            "up_to": 0.3,
            "approved_by": "dpo@example.org",
            "reason": "Gap traced to court no-show rates; reviewed with the supervisor.",
            "approved_on": "2026-01-01",
            "expires": "2026-06-30",
            **waiver,
        }
    ]
    return parse_policy(raw)


def test_active_waiver_excuses_and_is_described():
    outcome = apply_waivers([EOD], _policy(), DAY)
    assert outcome.passed and outcome.blocking == []
    (text,) = outcome.waived_texts()
    assert "citizen: equalized_odds_difference 0.270 > 0.250" in text
    assert "waived by dpo@example.org on 2026-01-01 until 2026-06-30" in text


@pytest.mark.parametrize(
    ("change", "note"),
    [
        ({"expires": "2026-02-28"}, "expired on 2026-02-28"),
        ({"approved_on": "2026-03-02", "expires": "2026-12-31"}, "not active before 2026-03-02"),
    ],
)
def test_expired_or_future_waiver_blocks_and_says_why(change, note):
    outcome = apply_waivers([EOD], _policy(**change), DAY)
    assert not outcome.passed
    (text,) = outcome.blocking_texts(DAY)
    assert text.startswith("citizen: equalized_odds_difference 0.270 > 0.250") and note in text


@pytest.mark.parametrize(
    "change", [{"attribute": "colour"}, {"metric": "demographic_parity_difference"}, {"up_to": 0.26}]
)
def test_waiver_for_something_else_does_not_excuse(change):
    outcome = apply_waivers([EOD], _policy(**change), DAY)
    assert outcome.blocking == [EOD] and outcome.lapsed == [] and outcome.waived == []


def test_no_waiver_blocks():
    outcome = apply_waivers([EOD], parse_policy(default_policy()), DAY)
    assert outcome.blocking_texts(DAY) == ["citizen: equalized_odds_difference 0.270 > 0.250"]


def test_evaluation_minimums_and_their_waiver(policy):
    low = {"roc_auc": 0.55, "accuracy": 0.9, "balanced_accuracy": 0.6}
    (violation,) = evaluation_violations(low, policy)
    assert violation.text == "roc_auc 0.550 < 0.600"
    waived = _policy(gate="evaluation", metric="roc_auc", attribute=None, up_to=0.5)
    assert apply_waivers([violation], waived, DAY).passed
    assert not apply_waivers(
        [violation], _policy(gate="evaluation", metric="roc_auc", attribute=None, up_to=0.58), DAY
    ).passed


UNMEASURED = Violation("fairness", "not_evaluated", 1.0, 2.0, "colour x sex")


@pytest.mark.parametrize(
    ("violations", "waiver", "status", "verdict_start"),
    [
        ([], None, "passed", "passed: all good"),
        ([EOD], None, "failed", "failed: citizen: equalized_odds_difference 0.270 > 0.250"),
        ([EOD], {}, "waived", "passed only under waivers: all good except citizen: equalized_odds_difference"),
        ([UNMEASURED], None, "not evaluated", "colour x sex: not evaluated: 1 group(s)"),
        ([EOD, UNMEASURED], None, "failed", "failed: citizen: equalized_odds_difference 0.270 > 0.250; colour x sex"),
        (
            [UNMEASURED],
            {"metric": "not_evaluated", "attribute": "colour x sex", "up_to": None},
            "waived",
            "passed only under waivers: all good except colour x sex: not evaluated",
        ),
    ],
)
def test_one_outcome_status_and_verdict(violations, waiver, status, verdict_start):
    policy = parse_policy(default_policy()) if waiver is None else _policy(**waiver)
    outcome = apply_waivers(violations, policy, DAY)
    assert outcome.status.value == status
    verdict = outcome.verdict(DAY, "all good")
    assert verdict.startswith(verdict_start)
    if status == "waived":
        assert "waived by dpo@example.org until 2026-06-30" in verdict
    assert outcome.passed == (status in ("passed", "waived"))


def test_assess_rederives_every_gate_from_the_numbers(policy):
    fairness = {
        "attributes": {
            "citizen": {
                "evaluable": True,
                "demographic_parity_difference": 0.05,
                "equalized_odds_difference": float("nan"),  # a figure that is not a number never passes
                "demographic_parity_ratio": 0.7,
            },
            "sex": {"evaluable": False, "groups": [{"too_small": False}, {"too_small": True}]},
        }
    }
    outcome = assess(
        policy, DAY, evaluation={"roc_auc": 0.7, "accuracy": 0.5, "balanced_accuracy": 0.6}, fairness=fairness
    )
    texts = outcome.blocking_texts(DAY)
    assert any(t.startswith("accuracy 0.500 < 0.750") for t in texts)
    assert any(t.startswith("citizen: equalized_odds_difference nan") for t in texts)
    assert any(t.startswith("citizen: demographic_parity_ratio 0.700 < 0.800") for t in texts)
    assert any(t.startswith("sex: not evaluated: 1 group(s)") for t in texts)
    assert outcome.status.value == "failed" and len(texts) == 4
    assert largest_gap(fairness) == 0.05


def test_one_list_of_gap_metrics():
    import mlcomops_assets.lib.fairness as fairness_lib
    import mlcomops_assets.lib.promotion as promotion_lib

    assert FAIRNESS_METRICS[: len(GAP_METRICS)] == GAP_METRICS
    assert not hasattr(fairness_lib, "GAP_METRICS") and not hasattr(promotion_lib, "GAP_METRICS")


def test_an_implausible_holdout_auc_blocks_promotion_as_leakage(policy):
    perfect = {"roc_auc": 0.995, "accuracy": 0.99, "balanced_accuracy": 0.99}
    outcome = assess(policy, DAY, evaluation=perfect)
    (text,) = outcome.blocking_texts(DAY)
    assert text.startswith("holdout roc_auc 0.995 >= 0.990 (gates.leakage.max_holdout_auc)")
    warn_only = parse_policy(
        {**default_policy(), "gates": {**default_policy()["gates"], "leakage": {"severity": "warn"}}}
    )
    assert assess(warn_only, DAY, evaluation=perfect).passed
    assert assess(policy, DAY, evaluation={**perfect, "roc_auc": 0.98}).passed


DRIFT = {"drift_share": 0.5, "drifted_columns": 3, "columns": [{}] * 6}
STEADY = {
    "score_ks": 0.034,
    "positive_rate_change": 0.002,
    "batch_positive_rate": 0.984,
    "reference_positive_rate": 0.982,
}


def _batch(policy, drift=DRIFT, prediction=STEADY, outliers=0.02, fairness=None):
    return batch_verdicts(
        policy,
        DAY,
        drift=drift,
        prediction_drift=prediction,
        outlier_share=outliers,
        reference_outlier_share=0.01,
        fairness=fairness,
    )


def test_batch_verdicts_name_every_figure_with_its_limit(policy):
    """Drift, prediction drift and outliers pass or fail through the gates, worded like every gate."""
    steady = _batch(policy, drift={**DRIFT, "drift_share": 0.167, "drifted_columns": 1})
    assert all(v.passed for v in steady.values())
    assert steady["data_drift"].text == "passed: drift_share 0.167 < 0.500 (1 of 6 columns drifted)"
    assert steady["prediction_drift"].text.startswith("passed: score_ks 0.034 <= 0.200, positive_rate_change 0.002")
    assert steady["outliers"].text == "passed: outlier_share 0.020 <= 0.060 (training reference 0.010)"
    assert steady["fairness"].passed and steady["fairness"].status.value == "not evaluated"

    # Evidently's dataset drift starts at the limit; the other figures break above theirs.
    drifted = _batch(policy, prediction={**STEADY, "score_ks": 0.35}, outliers=0.3)
    assert not any(drifted[alarm].passed for alarm in ("data_drift", "prediction_drift", "outliers"))
    assert drifted["data_drift"].text == "failed: drift_share 0.500 >= 0.500 (3 of 6 columns drifted)"
    assert drifted["prediction_drift"].text.startswith("failed: score_ks 0.350 > 0.200 (positive_rate_change 0.002")
    assert drifted["outliers"].text.startswith("failed: outlier_share 0.300 > 0.060")
    assert _batch(policy, outliers=0.06)["outliers"].passed


def test_batch_fairness_fails_only_on_measured_gaps(policy):
    measured = apply_waivers([EOD], policy, DAY)
    assert not _batch(policy, fairness=measured)["fairness"].passed
    unmeasured = _batch(policy, fairness=apply_waivers([UNMEASURED], policy, DAY))["fairness"]
    assert unmeasured.passed and unmeasured.text.startswith("colour x sex: not evaluated")
