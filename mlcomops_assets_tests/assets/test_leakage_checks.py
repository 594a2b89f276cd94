"""Target leakage in the graph: a post-outcome column declared as a feature stops training (or, past the
first check, registration), names the column and its figure, and passes once declared ignored."""

import dagster as dg
import numpy as np
import pytest
from sklego.datasets import load_arrests

from mlcomops_assets import constants as c
from mlcomops_assets.assets.leakage_checks import model_does_not_leak
from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.leakage import auc_drop_importance
from mlcomops_assets.policy import parse_policy
from mlcomops_assets.resources import MlflowSession, ProjectResource
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.conftest import default_policy, materialize, write_home

pytestmark = pytest.mark.e2e

LEAK = "processing_minutes"  # recorded when the summons is processed: only released people have one
SPLITS = ",".join(
    k.path[-1] for k in (c.RAW_DATA, c.VALIDATED_DATA, c.TRAINING_DATA, c.HOLDOUT_DATA, c.PRODUCTION_DATA)
)
THROUGH_REGISTRATION = (
    SPLITS + "," + ",".join(k.path[-1] for k in (c.MODEL_CANDIDATES, c.MODEL_SELECTION_REPORT, c.TRAINED_MODEL))
)


def _leaky_home(tmp_path, role: str = "feature", **leakage) -> ProjectPaths:
    """The arrests data as a CSV source with a column filled in only after a release (the outcome)."""
    frame = load_arrests(as_frame=True)
    released = (frame["released"] == "Yes").to_numpy()
    minutes = np.random.default_rng(0).gamma(4.0, 15.0, len(frame)).round(1)
    frame[LEAK] = np.where(released, minutes, np.nan)
    policy = default_policy()
    policy["data"]["source"] = {"kind": "file", "path": "source/arrests.csv"}
    policy["data"]["columns"][LEAK] = (
        {"role": "feature", "dtype": "float", "min": 0, "max": 10_000, "max_null_fraction": 0.5}
        if role == "feature"
        else {"role": role}
    )
    policy["gates"]["leakage"] = leakage
    # A near-perfect model reproduces the groups' base rates, which the default fairness limits refuse:
    # the fairness gate must not be what stops registration here.
    policy["gates"]["fairness"].update(
        max_demographic_parity_difference=1.0, max_equalized_odds_difference=1.0, min_demographic_parity_ratio=0.0
    )
    home = write_home(tmp_path / "home", policy)
    (home / "source").mkdir()
    frame.to_csv(home / "source/arrests.csv", index=False)
    return ProjectPaths(home)


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _materialized(result) -> set[str]:
    return {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}


def _registered_versions(paths: ProjectPaths) -> list:
    if not (paths.mlflow_dir / "mlflow.db").exists():
        return []  # no MLflow store at all: nothing was trained, let alone registered
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=paths.mlflow_tracking_uri, registry_uri=paths.mlflow_tracking_uri)
    return [v for m in client.search_registered_models() for v in client.search_model_versions(f"name='{m.name}'")]


def _value(check, key: str):
    return check.metadata[key].value


def test_post_outcome_feature_stops_training(tmp_path):
    paths = _leaky_home(tmp_path)
    with materialize(paths.home, THROUGH_REGISTRATION) as (result, _):
        checks = _checks(result)
        done = _materialized(result)
    leak = checks[c.NO_TARGET_LEAKAGE]
    assert not leak.passed and leak.severity.value == "ERROR"
    assert (
        f"'{LEAK}' alone predicts 'released' with cross-validated ROC AUC 1.000 > "
        "gates.leakage.max_single_feature_auc 0.90" in leak.description
    )
    assert f"data.columns.{LEAK}.role" in leak.description
    assert _value(leak, "flagged_columns") == LEAK
    assert _value(leak, "highest_single_feature_auc") == 1.0
    by_column = _value(leak, "single_feature_auc_by_column")
    assert set(by_column) == {"age", "citizen", "employed", "checks", LEAK}
    assert max(v for k, v in by_column.items() if k != LEAK) < 0.75
    # The split was published (the check reads it); nothing was trained or registered.
    assert c.TRAINING_DATA.path[-1] in done
    assert not done & {c.MODEL_CANDIDATES.path[-1], c.TRAINED_MODEL.path[-1]}
    assert not result.success
    assert _registered_versions(paths) == []
    assert checks[c.NO_CONSTANT_FEATURES].passed


def test_declared_ignored_the_column_passes(tmp_path):
    paths = _leaky_home(tmp_path, role="ignored")
    with materialize(paths.home, SPLITS) as (result, _):
        checks = _checks(result)
    assert result.success
    leak = checks[c.NO_TARGET_LEAKAGE]
    assert leak.passed, leak.description
    assert set(_value(leak, "single_feature_auc_by_column")) == {"age", "citizen", "employed", "checks"}
    assert _value(leak, "highest_single_feature_auc") < 0.75
    assert _value(leak, "flagged_columns") == "(none)"
    assert checks[c.NO_CONSTANT_FEATURES].passed


def test_a_leaky_candidate_is_never_chosen_past_a_permissive_first_check(tmp_path):
    """Past a permissive first check, the leaky candidate's holdout ROC AUC fails the selection gates (the
    rule promotion re-derives too), so the interpretable candidate, which cannot use the leak, is chosen
    and model_does_not_leak measures it with its figures."""
    import json

    paths = _leaky_home(tmp_path, max_single_feature_auc=1.0)
    with materialize(paths.home, THROUGH_REGISTRATION) as (result, _):
        checks = _checks(result)
    assert checks[c.NO_TARGET_LEAKAGE].passed and checks[c.A_CANDIDATE_PASSES_EVERY_GATE].passed
    report = json.loads((paths.selection_dir / "model_selection_report.json").read_text())
    by_name = {r["name"]: r for r in report["candidates"]}
    leaky = by_name["gradient_boosting"]["gates"]
    assert not leaky["passed"]
    assert any("holdout roc_auc 1.000 >= 0.990 (gates.leakage.max_holdout_auc)" in t for t in leaky["blocking"])
    assert report["chosen"] == "logistic_regression"
    model = checks[c.MODEL_DOES_NOT_LEAK]
    assert model.passed and "largest permutation importance (ROC AUC drop)" in model.description
    assert len(_registered_versions(paths)) == 1


def test_warn_severity_reports_and_trains(tmp_path):
    paths = _leaky_home(tmp_path, severity="warn")
    with materialize(paths.home, THROUGH_REGISTRATION) as (result, _):
        checks = _checks(result)
        done = _materialized(result)
    for name in (c.NO_TARGET_LEAKAGE, c.MODEL_DOES_NOT_LEAK):
        assert not checks[name].passed and checks[name].severity.value == "WARN"
        assert LEAK in checks[name].description
    assert c.TRAINED_MODEL.path[-1] in done
    assert len(_registered_versions(paths)) == 1


class _LoggedModel(MlflowSession):
    """Stands in for the MLflow store: hands back one fitted model for any model URI."""

    def load_model(self, model_uri: str):
        return _fitted_model()


def _fitted_model():
    from mlcomops_assets.lib import modeling

    policy = parse_policy(default_policy())
    frame = load_arrests(as_frame=True)
    model = modeling.build_pipeline(policy, policy.model.candidates["logistic_regression"])
    return model.fit(modeling.features(frame, policy), modeling.labels(frame, policy))


def _judge(tmp_path, report: dict):
    """The post-training check called directly on a hand-made selection report."""
    home = write_home(tmp_path / "home")
    project = ProjectResource(home=str(home))
    session = _LoggedModel(tracking_uri="sqlite:///unused.db", artifact_root=str(tmp_path / "artifacts"))
    return model_does_not_leak(
        dg.build_asset_check_context(),
        model_selection_report=report,
        holdout=load_arrests(as_frame=True),
        project=project,
        mlflow_session=session,
    )


def test_report_without_a_candidate_is_not_evaluated(tmp_path):
    result = _judge(tmp_path, {"metric": "roc_auc", "chosen": None, "candidates": []})
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.description.startswith("not evaluated: the selection report names no candidate")


def test_importance_of_another_metric_is_measured_as_roc_auc_drop(tmp_path):
    """The report's importance is an accuracy drop: the check measures the ROC AUC drop itself."""
    candidate = {
        "name": "logistic_regression",
        "model_uri": "models:/m-1",
        "deployable": True,
        "holdout": {"roc_auc": 0.7},
        "importance": [{"column": "checks", "importance": 0.9}],  # an accuracy drop: must not be read
    }
    result = _judge(tmp_path, {"metric": "accuracy", "chosen": "logistic_regression", "candidates": [candidate]})
    assert result.passed, result.description
    assert _value(result, "importance_source").startswith("measured by this check")
    policy = parse_policy(default_policy())
    frame = load_arrests(as_frame=True)
    expected = auc_drop_importance(
        _fitted_model(),
        modeling.features(frame, policy),
        modeling.labels(frame, policy),
        policy.seed,
        policy.explainability.sample_size,
    )
    assert _value(result, "logistic_regression/largest_importance") == max(expected.values()) > 0.05
