"""SHAP explanations add up to the model's output and name the input columns."""

import math

import numpy as np
import pytest

from mlcomops_assets.lib import explain, modeling
from mlcomops_assets.lib.splitting import split_data


@pytest.mark.parametrize("candidate", ["gradient_boosting", "logistic_regression"])
def test_single_decision_explanation_adds_up(arrests, policy, candidate):
    splits = split_data(arrests, policy)
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


@pytest.mark.parametrize("candidate", ["gradient_boosting", "logistic_regression"])
def test_the_explainer_keeps_no_training_row(arrests, policy, candidate, tmp_path):
    """Pickled as the asset stores it, the explainer holds no row of the training data, raw or
    transformed; the same scan finds the rows in an explainer built the old way (a row sample)."""
    import joblib
    import shap

    from mlcomops_assets.lib.evidence_scan import RowIndex, scan_file

    splits = split_data(arrests, policy)
    training = splits.training
    model = modeling.build_pipeline(policy, policy.model.candidates[candidate]).fit(
        modeling.features(training, policy), modeling.labels(training, policy)
    )
    transformed = model[:-1].transform(modeling.features(training, policy))
    index = RowIndex([training], matrices=[transformed.to_numpy(dtype=float)])

    stored = tmp_path / "explainer.joblib"
    joblib.dump(explain.build_explainer(model, training, policy), stored)
    assert scan_file(stored, index) == []

    leaky = tmp_path / "leaky.joblib"
    background = transformed.sample(100, random_state=0)
    old_style = (
        shap.TreeExplainer(model[-1], background)
        if candidate == "gradient_boosting"
        else shap.LinearExplainer(model[-1], background)
    )
    joblib.dump(old_style, leaky)
    assert sum(f.rows for f in scan_file(leaky, index)) >= 100


def test_the_mean_background_gives_the_same_linear_explanations(arrests, policy):
    """Replacing the row sample by its mean row changes no SHAP value of a linear model."""
    import shap

    splits = split_data(arrests, policy)
    model = modeling.build_pipeline(policy, policy.model.candidates["logistic_regression"]).fit(
        modeling.features(splits.training, policy), modeling.labels(splits.training, policy)
    )
    # 100 rows: SHAP's masker itself keeps at most 100, so both see exactly the same background rows.
    sample = splits.training.sample(100, random_state=0)
    rows = model[:-1].transform(modeling.features(sample, policy))
    with_rows = explain.shap_values(shap.LinearExplainer(model[-1], rows), model, splits.holdout, policy)
    with_mean = explain.shap_values(explain.build_explainer(model, sample, policy), model, splits.holdout, policy)
    assert np.allclose(with_rows.to_numpy(), with_mean.to_numpy(), atol=1e-10)
