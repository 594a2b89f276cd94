"""Waivers: only an approved waiver in force, for the same gate, metric, attribute and bound, excuses."""

import datetime as dt

import pytest

from mlcomops_assets.lib.gates import Violation, apply_waivers, evaluation_violations
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
