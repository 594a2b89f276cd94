"""Every registered model family runs the whole chain: policy, tuning, scoring, exact SHAP, size, saving."""

import math
import subprocess
import sys

import numpy as np
import pytest

from mlcomops_assets.lib import candidates, explain, modeling
from mlcomops_assets.lib.families import FAMILIES, family, family_of
from mlcomops_assets.lib.model_registry import trusted_types
from mlcomops_assets.lib.splitting import split_data
from mlcomops_assets.policy import PolicyError, parse_policy
from mlcomops_assets_tests.conftest import default_policy

# One candidate per registered family, small grids: a family added to the registry without an entry
# here fails test_every_family_has_a_candidate_here.
CANDIDATES = {
    "logistic_regression": {"estimator": "logistic_regression", "interpretable": True, "grid": {"C": [0.1, 1.0]}},
    "gradient_boosting": {
        "estimator": "gradient_boosting",
        "params": {"n_estimators": 30},
        "grid": {"max_depth": [2, 3]},
    },
    "decision_tree": {
        "estimator": "decision_tree",
        "params": {"min_samples_leaf": 20, "class_weight": "balanced"},
        "grid": {"max_depth": [2, 3, 4], "criterion": ["gini", "entropy"]},
    },
}


def _with_candidates(specs: dict) -> dict:
    raw = default_policy()
    raw["model"]["candidates"] = specs
    return raw


@pytest.fixture(scope="module")
def every_family():
    return parse_policy(_with_candidates(CANDIDATES))


@pytest.fixture(scope="module")
def splits(arrests, every_family):
    split = split_data(arrests, every_family)
    # A small sample keeps three grid searches fast; the chain, not the model quality, is under test.
    return split.training.sample(800, random_state=every_family.seed), split.holdout.head(200)


def test_every_family_has_a_candidate_here():
    assert set(CANDIDATES) == set(FAMILIES)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_tunes_scores_explains_and_is_measured(name, every_family, splits, tmp_path):
    import joblib
    import skops.io as sio

    from mlcomops_assets.lib.evidence_scan import RowIndex, scan_file

    policy, (training, holdout) = every_family, splits
    spec = policy.model.candidates[name]

    # Tuning by cross-validation, refitted on the sample.
    tuned = candidates.tune(name, training, policy)
    assert family_of(tuned.model[-1]) is family(name)
    assert all(tuned.best_params[k] in v for k, v in spec.grid.items())
    assert len(tuned.cv_results) == math.prod(len(v) for v in spec.grid.values())
    assert 0.5 < tuned.cv_mean < 1.0

    # Scoring.
    scores = modeling.positive_scores(tuned.model, holdout, policy)
    assert scores.shape == (len(holdout),) and np.all((scores >= 0) & (scores <= 1))
    assert set(modeling.decisions(scores, policy)) <= {0, 1}

    # Exact SHAP: base value + contributions reproduce the explained output within the project's bound.
    explainer = explain.build_explainer(tuned.model, training, policy)
    values = explain.shap_values(explainer, tuned.model, holdout, policy)
    base = float(np.ravel(explainer.expected_value)[-1])
    output = explain.explained_output(tuned.model, holdout, policy)
    error = float(np.max(np.abs(base + values.sum(axis=1).to_numpy() - output)))
    assert error <= policy.gates.explainability.max_additivity_error

    scale = explain.output_scale(tuned.model)
    assert scale == family(name).output_scale
    decision = explain.explain_decision(explainer, tuned.model, holdout.iloc[[3]], policy)
    assert set(decision["contributions"]) == set(policy.data.feature_columns)
    assert math.isclose(decision[f"base_{scale}"], base)
    to_probability = (lambda v: 1 / (1 + math.exp(-v))) if scale == "log_odds" else (lambda v: v)
    assert math.isclose(to_probability(decision[scale]), decision["probability_favourable"], rel_tol=1e-9)

    # The stored explainer keeps no training row, whatever the family.
    transformed = tuned.model[:-1].transform(modeling.features(training, policy))
    stored = tmp_path / "explainer.joblib"
    joblib.dump(explainer, stored)
    assert scan_file(stored, RowIndex([training], matrices=[transformed.to_numpy(dtype=float)])) == []

    # Model size: what a reader must read.
    size = candidates.model_size(tuned.model)
    assert set(size) == {"parameters", "trees", "tree_nodes"} and size["parameters"] > 0

    # Saved with skops, the model loads back trusting only the types derived from it.
    loaded = sio.loads(sio.dumps(tuned.model), trusted=trusted_types(tuned.model))
    x = modeling.features(holdout, policy)
    np.testing.assert_array_equal(loaded.predict_proba(x), tuned.model.predict_proba(x))


def test_a_decision_tree_is_shallow_readable_and_counted_by_nodes(every_family, splits):
    training, _ = splits
    tuned = candidates.tune("decision_tree", training, every_family)
    tree = tuned.model[-1]
    assert type(tree).__name__ == "DecisionTreeClassifier"
    assert tree.get_depth() <= tuned.best_params["max_depth"] and tree.min_samples_leaf == 20
    nodes = tree.tree_.node_count
    assert candidates.model_size(tuned.model) == {"parameters": nodes, "trees": 1, "tree_nodes": nodes}
    # No scaling step: split thresholds stay in the data's own units (age in years).
    assert "scale" not in tuned.model["preprocess"].named_transformers_["num"].named_steps
    # Single trees are explained in probability (their leaves hold class fractions, a pure leaf has
    # infinite log-odds); the family says so, and explanations are named by it.
    assert family("decision_tree").output_scale == "probability"
    assert family("decision_tree").interpretable


def test_the_family_builds_with_its_defaults_and_always_the_policy_seed():
    tree = family("decision_tree").build({"criterion": "entropy", "random_state": 99}, seed=7)
    assert tree.max_depth == 4 and tree.criterion == "entropy" and tree.random_state == 7
    assert family("logistic_regression").build({}, seed=7).max_iter == 1000


def test_an_unregistered_estimator_is_named_with_the_registered_ones():
    from sklearn.ensemble import RandomForestClassifier

    with pytest.raises(LookupError, match="RandomForestClassifier is no registered model family") as info:
        family_of(RandomForestClassifier())
    assert all(name in str(info.value) for name in FAMILIES)
    with pytest.raises(KeyError, match="decision_tree"):
        family("random_forest")


def test_a_policy_with_three_families_validates_and_its_flag_decides_interpretability():
    specs = {
        "logistic_regression": {"estimator": "logistic_regression", "interpretable": True, "grid": {"C": [0.1, 1.0]}},
        "gradient_boosting": {"estimator": "gradient_boosting", "grid": {"max_depth": [2, 3]}},
        "decision_tree": {"estimator": "decision_tree", "grid": {"max_depth": [2, 3]}},
    }
    policy = parse_policy(_with_candidates(specs))
    assert {n: c.estimator for n, c in policy.model.candidates.items()} == {n: n for n in specs}
    # The registry calls a decision tree interpretable; only the policy's flag makes it the explainable choice.
    assert family("decision_tree").interpretable
    assert policy.model.interpretable_candidates == ["logistic_regression"]


def _error(specs: dict) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(_with_candidates({**CANDIDATES, **specs}))
    return str(info.value)


def test_the_policy_accepts_decision_tree_and_names_what_it_refuses():
    parse_policy(_with_candidates({**CANDIDATES, "tree": {"estimator": "decision_tree", "params": {"max_depth": 3}}}))
    message = _error({"tree": {"estimator": "decision_tree", "grid": {"depth": [2, 3]}}})
    assert "model.candidates.tree" in message and "['depth']" in message and "'decision_tree'" in message
    allowed = sorted(family("decision_tree").params)
    assert str(allowed) in message and "max_depth" in allowed
    message = _error({"forest": {"estimator": "random_forest"}})
    assert "model.candidates.forest.estimator" in message and all(f"'{n}'" in message for n in FAMILIES)


def test_the_policy_imports_no_scikit_learn():
    """Validating a policy file must stay fast: the registry names classes and imports them lazily."""
    code = (
        "import sys, mlcomops_assets.policy; print(sorted(m for m in ('sklearn', 'shap', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
