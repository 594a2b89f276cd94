"""The fast path decides exactly as the pipeline does: the same scores, explained outputs, contributions
and outlier flags, bit for bit, one application at a time and in batches; the same decision-log entries;
the linear SHAP values are coef * (x - background mean); a preprocessor it cannot replay, or a mismatch,
leaves the pipeline itself in charge, and says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlcomops_assets.lib import explain, modeling
from mlcomops_assets.lib.outliers import fit_detector
from mlcomops_assets.policy import parse_policy
from mlcomops_assets.serving import fastpath
from mlcomops_assets.serving.champion import Champion
from mlcomops_assets.serving.explanations import ServedExplainer
from mlcomops_assets.serving.outliers import OutlierWatch
from mlcomops_assets.serving.schema import application_schema, parse_applications
from mlcomops_assets.serving.scoring import application_frame, decide
from mlcomops_assets_tests.conftest import default_policy

KEY = b"fastpath-tests-pseudonym-key-001"


@pytest.fixture(scope="module")
def policy():
    """The default policy, with missing values allowed for a number and a category, and a category value
    the models never saw in training (one-hot: all zeros)."""
    raw = default_policy()
    raw["data"]["columns"]["age"]["max_null_fraction"] = 0.2
    raw["data"]["columns"]["employed"]["max_null_fraction"] = 0.2
    raw["data"]["columns"]["citizen"]["allowed_values"] = ["Yes", "No", "Unknown"]
    raw["data"]["columns"]["application_id"] = {"role": "identifier", "treatment": "pseudonymize", "dtype": "string"}
    raw["model"]["candidates"]["decision_tree"] = {"estimator": "decision_tree", "params": {"max_depth": 4}}
    return parse_policy(raw)


@pytest.fixture(scope="module")
def data(policy):
    from sklego.datasets import load_arrests

    frame = load_arrests(as_frame=True)
    training = frame.iloc[:2000].reset_index(drop=True)
    training.loc[::37, "age"] = np.nan  # the imputers learn something and are used
    training.loc[::41, "employed"] = np.nan
    return training, frame.iloc[2000:2400].reset_index(drop=True)


def _rows(policy, frame) -> list[dict]:
    rows = fastpath.verification_rows(policy, frame, limit=len(frame))
    rows += [{**rows[0], "citizen": "Unknown", "age": None, "employed": None}, {**rows[0], "age": 10.5}]
    return rows


def _fit(policy, training, candidate):
    model = modeling.build_pipeline(policy, policy.model.candidates[candidate])
    return model.fit(modeling.features(training, policy), modeling.labels(training, policy))


def _served(model, policy, holdout) -> ServedExplainer:
    explainer = explain.build_explainer(model, holdout, policy)
    return ServedExplainer(explainer, explain.output_scale(model), float(np.ravel(explainer.expected_value)[-1]))


def _bits(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=float).view(np.int64)


@pytest.mark.parametrize("candidate", ["logistic_regression", "gradient_boosting", "decision_tree"])
def test_the_fast_path_is_the_pipeline_bit_for_bit(policy, data, candidate):
    training, holdout = data
    model = _fit(policy, training, candidate)
    served = _served(model, policy, holdout)
    watch = OutlierWatch(fit_detector(training, policy))
    rows = _rows(policy, holdout)
    scorer = fastpath.build_scorer(model, served, watch, policy, rows, singles=10)
    assert scorer.status["fast_path"] is True, scorer.status
    reference = fastpath.Scorer(model, served, watch, policy)
    assert any(reference.score(rows).flags), "some rows are outliers"
    for batch in [rows, rows[:1], rows[-2:-1], rows[5:9], *([r] for r in rows[-40:])]:
        fast, slow = scorer.score(batch), reference.score(batch)
        for name in ("scores", "outputs", "contributions"):
            assert np.array_equal(_bits(getattr(fast, name)), _bits(getattr(slow, name))), name
        assert fast.flags == slow.flags
    # ... and the reference is the pipeline and the detector themselves.
    frame = application_frame(rows, policy)
    assert np.array_equal(reference.score(rows).scores, model.predict_proba(modeling.features(frame, policy))[:, 1])
    assert reference.score(rows).flags == [
        bool(v == -1) for v in watch.detector.predict(modeling.features(frame, policy))
    ]


def test_decision_log_entries_are_the_same_with_and_without_the_fast_path(policy, data):
    training, holdout = data
    model = _fit(policy, training, "logistic_regression")
    served = _served(model, policy, holdout)
    watch = OutlierWatch(fit_detector(training, policy))
    rows = _rows(policy, holdout)[:-1]  # 10.5 is not an integer: refused by the schema
    scorer = fastpath.build_scorer(model, served, watch, policy, rows, singles=5)
    schema = application_schema(policy, 10_000)
    sent = [{**r, "application_id": f"APP-{i}"} if i % 3 == 0 else r for i, r in enumerate(rows)]
    applications = parse_applications({"applications": sent}, schema, policy).applications

    def champion(with_scorer):
        return Champion("m", "7", "ab" * 32, None, model, served, watch, "now", scorer if with_scorer else None)

    fast, fast_flags = decide(champion(True), applications, schema, policy, KEY)
    slow, slow_flags = decide(champion(False), applications, schema, policy, KEY)
    assert fast == slow and fast_flags == slow_flags
    assert {e["favourable"] for e in fast} == {True, False}
    single = parse_applications(rows[3], schema, policy).applications
    assert decide(champion(True), single, schema, policy, KEY) == decide(champion(False), single, schema, policy, KEY)


def test_linear_shap_values_are_coefficients_times_distance_to_the_background_mean(policy, data):
    """What the LinearExplainer computes for the served model, written out: exact, vectorized."""
    training, holdout = data
    model = _fit(policy, training, "logistic_regression")
    served = _served(model, policy, holdout)
    rows = _rows(policy, holdout)
    transformed = model[:-1].transform(modeling.features(application_frame(rows, policy), policy))
    mean = explain.aggregate_background(model, holdout, policy).to_numpy()[0]
    direct = (transformed.to_numpy() - mean) * model[-1].coef_[0]
    assert np.array_equal(direct, explain.shap_values(served.explainer, model, application_frame(rows, policy), policy))
    scorer = fastpath.build_scorer(model, served, OutlierWatch(None), policy, rows, singles=0)
    sums = fastpath._column_sums(direct, list(scorer.sources), policy.data.feature_columns)
    assert np.array_equal(_bits(scorer.score(rows).contributions), _bits(sums))
    outputs = served.base_value + sums.sum(axis=1)
    assert np.allclose(outputs, model[-1].decision_function(transformed), atol=1e-9, rtol=0)


def test_an_unfaithful_explanation_is_refused_for_the_whole_request(policy, data):
    training, holdout = data
    model = _fit(policy, training, "logistic_regression")
    served = _served(model, policy, holdout)
    wrong = ServedExplainer(served.explainer, served.scale, served.base_value + 1e-3)
    scorer = fastpath.Scorer(model, wrong, OutlierWatch(None), policy)
    schema = application_schema(policy)
    applications = parse_applications({"applications": _rows(policy, holdout)[:3]}, schema, policy).applications
    champion = Champion("m", "7", "ab" * 32, None, model, wrong, OutlierWatch(None), "now", scorer)
    with pytest.raises(ValueError, match="not faithful"):
        decide(champion, applications, schema, policy, KEY)


def test_a_preprocessor_it_cannot_replay_keeps_the_pipeline(policy, data):
    from sklearn.preprocessing import MinMaxScaler

    training, holdout = data
    model = _fit(policy, training, "logistic_regression")
    served = _served(model, policy, holdout)
    rows = _rows(policy, holdout)
    numeric = model[0].named_transformers_["num"]
    original = numeric.steps[-1]
    try:
        fitted = MinMaxScaler().fit(pd.DataFrame(np.zeros((2, 2)), columns=list(numeric.feature_names_in_)))
        numeric.steps[-1] = ("scale", fitted)
        scorer = fastpath.build_scorer(model, served, OutlierWatch(None), policy, rows)
        assert scorer.status == {"fast_path": False, "reason": "no fast path for MinMaxScaler"}
        assert scorer.columns is None and len(scorer.score(rows[:2]).scores) == 2
    finally:
        numeric.steps[-1] = original


def test_a_mismatch_keeps_the_pipeline(policy, data, monkeypatch):
    training, holdout = data
    model = _fit(policy, training, "logistic_regression")
    served = _served(model, policy, holdout)
    rows = _rows(policy, holdout)
    transform = fastpath.CompiledColumns.transform
    monkeypatch.setattr(fastpath.CompiledColumns, "transform", lambda self, r: transform(self, r) * (1 + 1e-15))
    scorer = fastpath.build_scorer(model, served, OutlierWatch(None), policy, rows)
    assert scorer.status["fast_path"] is False and "differ from the pipeline" in scorer.status["reason"]
