"""The whole graph on the real stack: Dagster instance, GX, MLflow (SQLite), DVC in a git repository."""

import json
import shutil

import dagster as dg
import joblib
import pytest
import yaml

from mlcomops_assets import constants as c
from mlcomops_assets.definitions import ALL_ASSETS
from mlcomops_assets.lib.explain import explain_decision
from mlcomops_assets.lib.files import file_md5
from mlcomops_assets.policy import load_policy
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets.summary import render
from mlcomops_assets_tests.conftest import dvc_executable, materialize, monitor_batch, run
from mlcomops_assets_tests.data_factory import credit_applications, credit_policy

pytestmark = pytest.mark.e2e

ALL_KEYS = {key for asset in ALL_ASSETS for key in asset.keys}
PERIODS = ["2001", "2002"]  # the default data's production periods, after data.training_cutoff=2000


def _materialized(result) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def test_default_graph_materializes_with_every_check_passing(default_run):
    _, result, _ = default_run
    assert result.success
    assert _materialized(result) == ALL_KEYS
    evaluations = result.get_asset_check_evaluations()
    failed = [(e.check_name, e.description) for e in evaluations if not e.passed]
    assert failed == []
    names = {e.check_name for e in evaluations}
    assert {
        c.MODEL_REGISTERED,
        c.MEETS_PERFORMANCE_MINIMUM,
        c.FAIRNESS_WITHIN_THRESHOLDS,
        c.EXPLANATIONS_ARE_FAITHFUL,
        "age__range",
        "columns_match_policy",
    } <= names


def test_mlflow_run_is_finished_and_version_registered(default_run):
    from mlflow.tracking import MlflowClient

    home, result, _ = default_run
    paths = ProjectPaths(home)
    record = json.loads((paths.models_dir / "trained_model.json").read_text())
    client = MlflowClient(tracking_uri=paths.mlflow_tracking_uri, registry_uri=paths.mlflow_tracking_uri)
    mlflow_run = client.get_run(record["run_id"])
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.tags["dagster.run_id"] == result.run_id
    assert mlflow_run.data.tags["data.raw_md5"] == file_md5(paths.raw_file(".csv"))
    assert len(mlflow_run.data.tags["git.commit"]) >= 7
    assert {"holdout_roc_auc", "cv_roc_auc_mean", "train_rows"} <= set(mlflow_run.data.metrics)
    assert any(k.startswith("fairness.demographic_parity_difference") for k in mlflow_run.data.metrics)
    champion = client.get_model_version_by_alias(record["registered_name"], "champion")
    assert str(champion.version) == record["version"] and "promoted" in champion.tags["promotion.verdict"]
    version = client.get_model_version(record["registered_name"], record["version"])
    assert version.run_id == record["run_id"] and version.tags["dagster.run_id"] == result.run_id
    # Artifacts are under the project's pinned location, never the working directory.
    assert mlflow_run.info.artifact_uri.startswith(str(paths.mlflow_artifact_root))
    statuses = {r.info.status for r in client.search_runs([record["experiment_id"]])}
    assert statuses == {"FINISHED"}


def test_dagster_data_version_is_the_dvc_md5(default_run):
    home, _, instance = default_run
    raw_event = instance.get_latest_materialization_event(c.RAW_DATA)
    data_version = raw_event.asset_materialization.tags["dagster/data_version"]

    run([dvc_executable(), "add", "-q", "data/raw/source.csv"], home)
    dvc_md5 = yaml.safe_load((home / "data/raw/source.csv.dvc").read_text())["outs"][0]["md5"]
    assert data_version == dvc_md5
    validated_event = instance.get_latest_materialization_event(c.VALIDATED_DATA)
    assert validated_event.asset_materialization.tags["dagster/input_data_version/raw_data"] == dvc_md5


def test_explainer_explains_one_decision_of_the_registered_version(default_run):
    import mlflow.sklearn
    import pandas as pd

    home, _, _ = default_run
    paths = ProjectPaths(home)
    policy = load_policy(paths.policy_file)
    record = json.loads((paths.reports_dir / "shap_explainer.json").read_text())
    assert record["model_uri"].endswith("/1") and record["additivity_error"] < 1e-6
    explainer = joblib.load(home / record["explainer_path"])
    mlflow.set_tracking_uri(paths.mlflow_tracking_uri)
    model = mlflow.sklearn.load_model(record["model_uri"])
    person = pd.read_parquet(paths.prepared_dir / "holdout_data.parquet").iloc[[0]]
    explanation = explain_decision(explainer, model, person, policy)
    assert set(explanation["contributions"]) == set(policy.data.feature_columns)
    assert (home / record["plot_path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_reads_the_instance(default_run):
    home, _, instance = default_run
    text = render(ProjectPaths(home), instance)
    assert "arrests_release_model v1" in text
    assert file_md5(ProjectPaths(home).raw_file(".csv")) in text
    assert "drift               per production batch (batch_monitoring" in text and "fairness verdict" in text
    assert "THIS RUN FAILED" not in text
    failed = render(ProjectPaths(home), instance, failed_step="the graph run (pipeline_run)")
    # After a failure the summary still shows the last good state, and says that it is not this run's.
    assert "THIS RUN FAILED      at the graph run (pipeline_run)" in failed and "arrests_release_model v1" in failed


@pytest.fixture(scope="module")
def monitored_periods(default_run, tmp_path_factory):
    """The default data's production periods monitored after the graph, as `make run` does (monitor_all),
    in a copy of the session's home: the session's home stays as the graph left it for other modules
    (monitored batches would enter a retraining there)."""
    original, _, _ = default_run
    home = tmp_path_factory.mktemp("monitored_periods") / "home"
    shutil.copytree(original, home, symlinks=True)
    checks = {}
    for period in PERIODS:
        with monitor_batch(home, period) as (result, instance):
            assert result.success, [e.event_specific_data.error.message for e in result.get_step_failure_events()]
            checks[period] = {e.check_name: e for e in result.get_asset_check_evaluations()}
            summary = render(ProjectPaths(home), instance)
    return home, checks, summary


def test_each_production_period_has_one_drift_verdict_from_its_batch(default_run, monitored_periods):
    """One drift output per period, the batch's: the graph writes none, monitoring writes one HTML and one
    verdict per period, and the default data's periods show no dataset drift."""
    home, checks, summary = monitored_periods
    paths = ProjectPaths(home)
    assert not (ProjectPaths(default_run[0]).reports_dir / "drift").exists()
    assert sorted(str(p.relative_to(paths.published_dir)) for p in paths.published_dir.rglob("*drift*")) == [
        f"batch_reports/drift-{period}.html" for period in PERIODS
    ]
    for period in PERIODS:
        check = checks[period][c.BATCH_NO_DATA_DRIFT]
        assert check.passed, (period, check.description)
        report = json.loads((paths.monitoring_dir / f"batch_monitoring/{period}.json").read_text())
        assert report["data_drift"]["dataset_drift"] is False and "data_drift" not in report["alarms"]
        assert report["data_drift"]["html_path"] == f"data/published/batch_reports/drift-{period}.html"
        assert f"monitored batch     {period}" in summary
    assert "drift batch" not in summary and "drift (periods)" not in summary


def _credit_home(home_factory, frame, suffix=".csv"):
    home = home_factory(credit_policy(f"inbox/applications{suffix}"), name=f"credit{suffix}")
    (home / "inbox").mkdir()
    if suffix == ".csv":
        frame.to_csv(home / "inbox/applications.csv", index=False)
    else:
        frame.to_parquet(home / "inbox/applications.parquet", index=False)
    return home


def test_own_csv_with_own_columns_runs_end_to_end(credit_run):
    home, frame, result, instance, _ = credit_run
    assert result.success, [e.event_specific_data.error.message for e in result.get_step_failure_events()]
    assert _materialized(result) == ALL_KEYS
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed <= {c.NO_PROXY_FEATURES}  # a warning at most; every blocking check passed
    validated = __import__("pandas").read_parquet(home / "data/validated/validated_data.parquet")
    dropped = {"full_name", "email", "phone", "national_id"}
    assert dropped.isdisjoint(validated.columns)  # identifiers never reach the validated layer in clear
    assert validated["application_id"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert set(validated["application_id"]).isdisjoint(frame["application_id"])
    # Each production period is a partition of the batch assets, monitored for drift like an inbox file.
    periods = instance.get_dynamic_partitions(c.PRODUCTION_BATCHES.name)
    assert sorted(periods) == ["2023-10", "2023-11", "2023-12"]
    assert not (home / "data/published/reports/drift").exists()


def test_broken_data_stops_at_validation(home_factory):
    frame = credit_applications()
    frame.loc[:11, "employment_years"] = -3
    home = _credit_home(home_factory, frame)
    with materialize(home) as (result, _):
        assert not result.success
        assert _materialized(result) == {c.RAW_DATA}
        failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
        assert set(failed) == {"employment_years__range"}
        evaluation = failed["employment_years__range"]
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.metadata["unexpected_count"].value == 12
        assert evaluation.metadata["column"].value == "employment_years"
        assert "12 of 2,400 rows" in evaluation.description
    assert not (home / "data/validated").exists()


def test_failed_data_is_never_consumed_by_a_subset_run(home_factory):
    """Bad data re-ingested after good data: a run of validated_data alone refuses it; the last good file stays."""
    frame = credit_applications()
    home = _credit_home(home_factory, frame, suffix=".parquet")
    with materialize(home, "raw_data,validated_data") as (result, _):
        assert result.success
    validated = home / "data/validated/validated_data.parquet"
    good = validated.read_bytes()

    frame.loc[:4, "region"] = "atlantis"
    frame.to_parquet(home / "inbox/applications.parquet", index=False)
    with materialize(home, "raw_data") as (result, _):
        assert not result.success  # the blocking contract checks fail in the ingesting run
    with materialize(home, "validated_data") as (result, _):
        assert not result.success
        (failure,) = result.get_step_failure_events()
        message = failure.event_specific_data.error.message
        assert "region__allowed_values" in message and "'region'" in message and "5 of 2,400 rows" in message
    assert validated.read_bytes() == good


def test_contract_verdict_is_tied_to_the_bytes_and_the_policy(tmp_path):
    from mlcomops_assets.assets.validation import passing_verdict, record_verdict
    from mlcomops_assets.lib.gx_validation import Validation
    from mlcomops_assets.policy import parse_policy
    from mlcomops_assets.resources import ProjectResource
    from mlcomops_assets_tests.conftest import default_policy, write_home

    project = ProjectResource(home=str(write_home(tmp_path / "home")))
    policy = parse_policy(default_policy())
    record_verdict(project, "md5-a", policy, Validation([]))
    assert passing_verdict(project, "md5-a", policy)["passed"] is True
    assert passing_verdict(project, "md5-b", policy) is None  # other bytes: the contract runs again
    raw = default_policy()
    raw["data"]["min_class_share"] = 0.2
    assert passing_verdict(project, "md5-a", parse_policy(raw)) is None  # other policy: runs again
