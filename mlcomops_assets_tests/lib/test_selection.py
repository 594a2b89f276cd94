"""The choice rule: gates first, then the interpretable candidate unless the other gains enough."""

from mlcomops_assets.lib.selection import preferred


def _result(name, auc, interpretable, passed=True, deployable=True, parameters=10):
    result = {
        "name": name,
        "interpretable": interpretable,
        "deployable": deployable,
        "size": {"parameters": parameters},
        "holdout": {"roc_auc": auc},
        "intervals": {"roc_auc": {"low": auc - 0.03, "high": auc + 0.03}},
        "gates": {"passed": passed, "blocking": [] if passed else ["fairness gate: colour: x 0.300 > 0.150"]},
    }
    if not deployable:
        result["not_deployable_because"] = "needs colour at decision time"
    return result


def test_interpretable_wins_unless_the_gain_reaches_the_policy_minimum(policy):
    small_gain = preferred([_result("lr", 0.700, True), _result("gb", 0.705, False, parameters=900)], policy)
    assert small_gain.chosen == "lr" and "a gain of 0.005 < 0.01" in small_gain.justification
    large_gain = preferred([_result("lr", 0.700, True), _result("gb", 0.720, False, parameters=900)], policy)
    assert large_gain.chosen == "gb"
    assert (
        "less explainable, 900 parameters" in large_gain.justification and "0.020 >= 0.01" in large_gain.justification
    )
    assert "min_gain_for_complexity" in large_gain.rule


def test_a_candidate_failing_a_gate_is_never_chosen(policy):
    choice = preferred([_result("lr", 0.70, True, passed=False), _result("gb", 0.69, False)], policy)
    assert choice.chosen == "gb" and "no interpretable candidate passes every gate" in choice.justification
    assert "colour: x 0.300 > 0.150" in choice.justification


def test_no_passing_deployable_candidate_means_no_choice_with_every_reason(policy):
    choice = preferred(
        [
            _result("lr", 0.70, True, passed=False),
            _result("gb", 0.72, False, passed=False),
            _result("gb+mitigated", 0.71, False, deployable=False),
        ],
        policy,
    )
    assert choice.chosen is None
    assert "lr: fairness gate" in choice.justification and "gb+mitigated: needs colour" in choice.justification


def test_ungated_preference_ignores_gates(policy):
    results = [_result("lr", 0.70, True, passed=False), _result("gb", 0.75, False, passed=False)]
    assert preferred(results, policy, gated=False).chosen == "gb"
