"""Candidate tuning: grid search on training rows only, deterministic under the policy's seed."""

import numpy as np
import pytest

from mlcomops_assets.lib import candidates, modeling
from mlcomops_assets.lib.splitting import split_data


@pytest.fixture(scope="module")
def training(arrests, policy):
    return split_data(arrests, policy).training


def test_tuning_picks_from_the_grid_and_is_reproducible(training, policy):
    first = candidates.tune("logistic_regression", training, policy)
    second = candidates.tune("logistic_regression", training, policy)
    grid = policy.model.candidates["logistic_regression"].grid
    assert first.best_params["C"] in grid["C"] and first.best_params == second.best_params
    assert len(first.cv_results) == len(grid["C"])
    assert [r["rank"] for r in first.cv_results if r["params"] == first.best_params] == [1]
    assert 0.5 < first.cv_mean < 1.0
    x = modeling.features(training, policy)
    np.testing.assert_array_equal(first.model.predict_proba(x), second.model.predict_proba(x))


def test_model_size_counts_what_a_reader_must_read(training, policy):
    linear = candidates.tune("logistic_regression", training, policy)
    encoded = linear.model[:-1].transform(modeling.features(training.head(5), policy)).shape[1]
    assert candidates.model_size(linear.model) == {"parameters": encoded + 1, "trees": 0, "tree_nodes": 0}
    trees = candidates.tune("gradient_boosting", training, policy)
    size = candidates.model_size(trees.model)
    assert size["trees"] == policy.model.candidates["gradient_boosting"].params["n_estimators"]
    assert size["tree_nodes"] > 3 * size["trees"]


def test_large_training_sets_are_searched_on_a_sample_and_fitted_on_all_rows(training):
    from mlcomops_assets.policy import parse_policy
    from mlcomops_assets_tests.conftest import default_policy

    raw = default_policy()
    raw["model"]["selection"]["cv_max_rows"] = 600
    policy = parse_policy(raw)
    tuned = candidates.tune("logistic_regression", training, policy)
    assert tuned.cv_rows == 600 < len(training) == tuned.fit_rows
    full = modeling.build_pipeline(policy, tuned.spec, **tuned.best_params)
    x, y = modeling.features(training, policy), modeling.labels(training, policy)
    np.testing.assert_array_equal(tuned.model.predict_proba(x), full.fit(x, y).predict_proba(x))


def test_above_fit_max_rows_the_final_fit_is_on_a_stratified_sample(training):
    """model.selection.fit_max_rows bounds the final fit: a stratified, seeded sample of that many rows in
    their original order, the same one every time; below the bound every row is used (tested above)."""
    from sklearn.model_selection import train_test_split

    from mlcomops_assets.policy import parse_policy
    from mlcomops_assets_tests.conftest import default_policy

    raw = default_policy()
    raw["model"]["selection"]["fit_max_rows"] = 900
    policy = parse_policy(raw)
    tuned = candidates.tune("logistic_regression", training, policy)
    assert tuned.fit_rows == 900 < len(training)
    assert candidates.run_params(tuned, policy)["fit_rows"] == 900
    x, y = modeling.features(training, policy), modeling.labels(training, policy)
    kept, _ = train_test_split(np.arange(len(x)), train_size=900, stratify=y, random_state=policy.seed)
    kept.sort()
    assert abs(y[kept].mean() - y.mean()) < 0.01  # stratified: the label share of all training rows
    sample = modeling.build_pipeline(policy, tuned.spec, **tuned.best_params).fit(x.iloc[kept], y[kept])
    np.testing.assert_array_equal(tuned.model.predict_proba(x), sample.predict_proba(x))
    again = candidates.tune("logistic_regression", training, policy)
    np.testing.assert_array_equal(tuned.model.predict_proba(x), again.model.predict_proba(x))
