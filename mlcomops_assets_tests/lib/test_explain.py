"""SHAP explanations add up to the model's output and name the input columns."""

import math

import numpy as np
import pytest

from mlcomops_assets.lib import explain, modeling
from mlcomops_assets.lib.splitting import split_by_time


@pytest.mark.parametrize("candidate", ["gradient_boosting", "logistic_regression"])
def test_single_decision_explanation_adds_up(arrests, policy, candidate):
    splits = split_by_time(arrests, policy)
    model = modeling.build_pipeline(policy, policy.model.candidates[candidate]).fit(
        modeling.features(splits.training, policy), modeling.labels(splits.training, policy)
    )
    explainer = explain.build_explainer(model, splits.training, policy)
    row = splits.holdout.iloc[[3]]
    result = explain.explain_decision(explainer, model, row, policy)
    assert set(result["contributions"]) == set(policy.data.feature_columns)
    assert math.isclose(1 / (1 + math.exp(-result["log_odds"])), result["probability_favourable"], rel_tol=1e-9)
    importance = explain.global_importance(explain.shap_values(explainer, model, splits.holdout, policy), policy)
    assert set(importance["source_column"]) == set(policy.data.feature_columns)
    assert np.all(np.diff(importance["mean_abs_shap"].to_numpy()) <= 0)
    assert explain.source_feature("cat__employed_Yes", ["employed", "employed_since"]) == "employed"
