"""Fairness metrics: binned numeric attributes, intersections, small groups flagged, gate verdicts."""

import numpy as np
import pandas as pd

from mlcomops_assets.lib.fairness import fairness_report, group_labels
from mlcomops_assets.lib.gates import fairness_violations


def _frame(n_a: int, n_b: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "colour": ["White"] * n_a + ["Black"] * n_b,
            "sex": (["Male", "Female"] * ((n_a + n_b) // 2 + 1))[: n_a + n_b],
            "age": np.linspace(15, 70, n_a + n_b).round(),
            "citizen": ["Yes"] * (n_a + n_b),
        }
    )


def test_numeric_attribute_is_binned_by_policy_edges(policy):
    groups = group_labels(pd.DataFrame({"age": [12, 25, 39, 40, 99]}), "age", policy)
    assert list(groups) == ["0-25", "25-40", "25-40", "40-120", "40-120"]


def test_disparities_match_hand_computed_rates(policy):
    frame = _frame(100, 100)
    y_true = np.ones(200, dtype=int)
    # White: 90 of 100 favourable decisions; Black: 60 of 100.
    y_pred = np.r_[np.ones(90), np.zeros(10), np.ones(60), np.zeros(40)].astype(int)
    report = fairness_report(frame, y_true, y_pred, policy)
    colour = report["attributes"]["colour"]
    assert round(colour["demographic_parity_difference"], 10) == 0.3
    assert round(colour["demographic_parity_ratio"], 4) == round(60 / 90, 4)
    rates = {g["group"]: g["selection_rate"] for g in colour["groups"]}
    assert rates == {"Black": 0.6, "White": 0.9}
    texts = [v.text for v in fairness_violations(report, policy)]
    assert "colour: demographic_parity_difference 0.300 > 0.150" in texts
    assert f"colour: demographic_parity_ratio {60 / 90:.3f} < 0.800" in texts


def test_small_groups_are_flagged_and_excluded_not_pooled(policy):
    frame = _frame(190, 10)  # 10 Black rows < min_group_size 30
    y_true = np.ones(200, dtype=int)
    y_pred = np.r_[np.ones(190), np.zeros(10)].astype(int)
    report = fairness_report(frame, y_true, y_pred, policy)
    colour = report["attributes"]["colour"]
    assert {g["group"]: g["too_small"] for g in colour["groups"]} == {"Black": True, "White": False}
    assert colour["evaluable"] is False and "fewer than two groups" in colour["reason"]
    assert "colour x sex" in report["attributes"]
    # Not measured is not passed: the attribute blocks as "not evaluated".
    (unmeasured,) = [v for v in fairness_violations(report, policy) if v.attribute == "colour"]
    assert unmeasured.metric == "not_evaluated" and "colour: not evaluated: 1 group(s)" in unmeasured.text


def test_report_equals_fairlearn_on_groups_and_gaps(policy):
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    rng = np.random.default_rng(11)
    n = 3000
    frame = pd.DataFrame(
        {
            "colour": rng.choice(["White", "Black"], n, p=[0.7, 0.3]),
            "sex": rng.choice(["Male", "Female"], n, p=[0.9, 0.1]),
            "age": rng.integers(15, 70, n),
            "citizen": rng.choice(["Yes", "No"], n, p=[0.85, 0.15]),
        }
    )
    y_true = rng.integers(0, 2, n)
    y_pred = (rng.random(n) < np.where(frame["colour"] == "White", 0.9, 0.7)).astype(int)
    report = fairness_report(frame, y_true, y_pred, policy)
    for name, sensitive in (("colour", frame["colour"]), ("colour x sex", frame[["colour", "sex"]])):
        mf = MetricFrame(
            metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=sensitive,
        )
        ours = {g["group"]: g for g in report["attributes"][name]["groups"]}
        for key, row in mf.by_group.iterrows():
            label = " & ".join(key) if isinstance(key, tuple) else key
            assert ours[label]["selection_rate"] == round(row["selection_rate"], 4)
            assert ours[label]["true_positive_rate"] == round(row["tpr"], 4)
            assert ours[label]["false_positive_rate"] == round(row["fpr"], 4)
        result = report["attributes"][name]
        assert np.isclose(
            result["demographic_parity_difference"],
            demographic_parity_difference(y_true, y_pred, sensitive_features=sensitive),
        )
        assert np.isclose(
            result["demographic_parity_ratio"], demographic_parity_ratio(y_true, y_pred, sensitive_features=sensitive)
        )
        assert np.isclose(
            result["equalized_odds_difference"], equalized_odds_difference(y_true, y_pred, sensitive_features=sensitive)
        )
        interval = result["intervals"]["demographic_parity_difference"]
        assert interval["low"] <= result["demographic_parity_difference"] <= interval["high"]
