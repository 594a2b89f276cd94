"""Promotion verdicts: gates first, then no regression beyond the policy's tolerance."""

import datetime as dt

import pytest

from mlcomops_assets.lib.gates import largest_gap
from mlcomops_assets.lib.promotion import Standing, decide, gate_failures
from mlcomops_assets.policy import PolicyError, parse_policy
from mlcomops_assets_tests.conftest import default_policy


def _fairness(dpd: float, eod: float, ratio: float = 0.95, unevaluable: bool = False):
    colour = {
        "evaluable": True,
        "demographic_parity_difference": dpd,
        "equalized_odds_difference": eod,
        "demographic_parity_ratio": ratio,
    }
    attributes = {"colour": colour}
    if unevaluable:
        attributes["sex"] = {"evaluable": False, "groups": [{"too_small": True}, {"too_small": False}]}
    return {"attributes": attributes}


def test_first_model_is_promoted_when_every_gate_passed(policy):
    verdict = decide(Standing(0.7, 0.1), None, [], policy)
    assert verdict.promote and "no current champion" in verdict.text


def test_failed_gate_refuses_with_its_numbers(policy):
    evaluation = {"roc_auc": 0.55, "accuracy": 0.8, "balanced_accuracy": 0.5}
    fairness = _fairness(0.2, 0.1)
    failures, waived = gate_failures(evaluation, fairness, {"additivity_error": 1e-15}, policy, 1e-6, dt.date.today())
    assert waived == []
    verdict = decide(Standing(0.55, 0.2), Standing(0.7, 0.1), failures, policy)
    assert not verdict.promote
    assert "evaluation gate: roc_auc 0.550 < 0.600" in verdict.text
    assert "fairness gate: colour: demographic_parity_difference 0.200 > 0.150" in verdict.text


def test_regression_beyond_tolerance_is_refused_within_it_promoted(policy):
    champion = Standing(0.70, 0.10)
    worse = decide(Standing(0.67, 0.10), champion, [], policy)
    assert not worse.promote and "0.030 below the champion's 0.700" in worse.text
    unfair = decide(Standing(0.70, 0.16), champion, [], policy)
    assert not unfair.promote and "largest fairness gap 0.160" in unfair.text
    assert decide(Standing(0.69, 0.12), champion, [], policy).promote


def test_largest_gap_ignores_unevaluable_groups():
    assert largest_gap(_fairness(0.06, 0.12, unevaluable=True)) == 0.12


def test_an_attribute_that_was_not_evaluated_blocks_unless_waived_by_name():
    """What was not measured never passes: it blocks as 'not evaluated', and only a waiver naming that
    exact attribute excuses it (a waiver for the metric without an attribute does not)."""
    raw = default_policy()
    evaluation = {"roc_auc": 0.7, "accuracy": 0.85, "balanced_accuracy": 0.6}
    day = dt.date(2026, 5, 1)
    fairness = _fairness(0.05, 0.1, unevaluable=True)
    failures, _ = gate_failures(evaluation, fairness, {"additivity_error": 0.0}, parse_policy(raw), 1e-6, day)
    assert failures == ["fairness gate: sex: not evaluated: 1 group(s) with at least min_group_size rows, 2 needed"]
    waiver = {
        "gate": "fairness",
        "metric": "not_evaluated",
        "approved_by": "dpo@example.org",
        "reason": "the group is too small in this holdout; assessed by hand",
        "approved_on": "2026-04-01",
        "expires": "2026-12-31",
    }
    raw["waivers"] = [waiver]
    with pytest.raises(PolicyError, match="must name the attribute"):  # never a blanket excuse
        parse_policy(raw)
    raw["waivers"] = [{**waiver, "attribute": "colour"}]  # another attribute: no excuse
    failures, waived = gate_failures(evaluation, fairness, {"additivity_error": 0.0}, parse_policy(raw), 1e-6, day)
    assert len(failures) == 1 and waived == []
    raw["waivers"] = [{**waiver, "attribute": "sex"}]
    failures, waived = gate_failures(evaluation, fairness, {"additivity_error": 0.0}, parse_policy(raw), 1e-6, day)
    assert failures == [] and len(waived) == 1 and "not evaluated" in waived[0]


def test_gates_are_re_derived_with_the_policy_in_force_and_its_waivers():
    raw = default_policy()
    raw["gates"]["fairness"]["max_equalized_odds_difference"] = 0.05
    tightened = parse_policy(raw)
    evaluation = {"roc_auc": 0.7, "accuracy": 0.8, "balanced_accuracy": 0.6}
    day = dt.date(2026, 5, 1)
    failures, _ = gate_failures(evaluation, _fairness(0.05, 0.12), {"additivity_error": 0.0}, tightened, 1e-6, day)
    assert failures == ["fairness gate: colour: equalized_odds_difference 0.120 > 0.050"]
    raw["waivers"] = [
        {
            "gate": "fairness",
            "metric": "equalized_odds_difference",
            "attribute": "colour",
            "approved_by": "dpo@example.org",
            "reason": "Accepted for one quarter while more data is collected.",
            "approved_on": "2026-04-01",
            "expires": "2026-06-30",
        }
    ]
    failures, waived = gate_failures(
        evaluation, _fairness(0.05, 0.12), {"additivity_error": 0.0}, parse_policy(raw), 1e-6, day
    )
    assert failures == [] and "waived by dpo@example.org" in waived[0]
