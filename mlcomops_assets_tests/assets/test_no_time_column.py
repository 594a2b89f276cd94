"""Data without a time column, end to end on the real stack: a stratified split of all rows, no production
period from the data (so no period to report drift on), batches from the inbox only, each monitored for
drift like any batch."""

import json

import dagster as dg
import pandas as pd
import pytest

from mlcomops_assets import constants as c
from mlcomops_assets.automation import inbox_sensor
from mlcomops_assets.definitions import ALL_ASSETS, build_defs
from mlcomops_assets.lib.batches import DATA_SOURCE_KEY, source_identity
from mlcomops_assets.policy import load_policy
from mlcomops_assets.resources import ProjectResource
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets.summary import render
from mlcomops_assets_tests.conftest import default_policy, materialize, monitor_batch, write_home

pytestmark = pytest.mark.e2e

SOURCE = "data/source/arrests_untimed.csv"
BATCH = "week-1"
DRIFT_LINE = (
    "drift               per production batch (batch_monitoring, in the monitored batch lines): inbox files only, "
    "the data has no production period of its own"
)


def untimed_policy() -> dict:
    """The default policy for the arrests data read from a CSV without its year column."""
    policy = default_policy()
    data = policy["data"]
    data["name"] = "arrests_untimed"
    data["source"] = {"kind": "file", "path": SOURCE}
    del data["time_column"], data["training_cutoff"], data["columns"]["year"]
    return policy


@pytest.fixture(scope="module")
def untimed_home(tmp_path_factory):
    """The whole graph on the untimed data; then a batch file dropped into the inbox, picked up by the
    inbox sensor and monitored as the run it requests would."""
    from sklego.datasets import load_arrests

    home = write_home(tmp_path_factory.mktemp("untimed"), untimed_policy())
    frame = load_arrests(as_frame=True).drop(columns="year")
    (home / SOURCE).parent.mkdir(parents=True)
    frame.to_csv(home / SOURCE, index=False)
    with materialize(home) as (result, instance):
        graph = {
            "success": result.success,
            "failures": [e.event_specific_data.error.message for e in result.get_step_failure_events()],
            "materialized": {e.asset_key for e in result.get_asset_materialization_events()},
            "checks": {e.check_name: e for e in result.get_asset_check_evaluations()},
            "partitions": instance.get_dynamic_partitions(c.PRODUCTION_BATCHES.name),
        }
    inbox = home / "data/inbox"
    inbox.mkdir(parents=True)
    frame.sample(300, random_state=1).to_csv(inbox / f"{BATCH}.csv", index=False)
    defs, project = build_defs(home), ProjectResource(home=str(home))
    with (
        dg.instance_for_test(temp_dir=str(home / ".dagster_home")) as instance,
        dg.build_sensor_context(instance=instance, resources={"project": project}, definitions=defs) as context,
    ):
        tick = inbox_sensor(context)
    with monitor_batch(home, BATCH) as (result, instance):
        batch_event = instance.get_latest_materialization_event(c.PRODUCTION_BATCH)
        monitored = {
            "success": result.success,
            "failures": [e.event_specific_data.error.message for e in result.get_step_failure_events()],
            "checks": {e.check_name: e for e in result.get_asset_check_evaluations()},
            "batch_metadata": {k: v.value for k, v in batch_event.asset_materialization.metadata.items()},
            "summary": render(ProjectPaths(home), instance),
        }
    return home, graph, tick, monitored


def test_the_graph_succeeds_without_a_time_column(untimed_home):
    _, graph, _, _ = untimed_home
    assert graph["success"], graph["failures"]
    assert graph["materialized"] == {key for asset in ALL_ASSETS for key in asset.keys}
    blocking_failed = [
        (e.check_name, e.description)
        for e in graph["checks"].values()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert blocking_failed == []


def test_training_and_holdout_are_a_stratified_split_of_all_rows(untimed_home):
    home, graph, _, _ = untimed_home
    prepared = ProjectPaths(home).prepared_dir
    training = pd.read_parquet(prepared / "training_data.parquet")
    holdout = pd.read_parquet(prepared / "holdout_data.parquet")
    assert len(training) + len(holdout) == 5226
    assert abs(len(holdout) - 0.25 * 5226) <= 1
    check = graph["checks"][c.NO_TIME_LEAKAGE]
    assert check.passed
    # It says what it verified, and claims no time-based verification it did not do.
    assert check.description.startswith("no time column, so no time-based check was possible; verified instead:")
    assert "are disjoint and cover all 5226 validated rows, stratified by released" in check.description
    assert "cutoff" not in check.description
    assert check.metadata["rows_in_training_and_holdout"].value == 0


def test_production_data_is_empty_with_the_right_columns(untimed_home):
    home, graph, _, _ = untimed_home
    paths = ProjectPaths(home)
    production = pd.read_parquet(paths.prepared_dir / "production_data.parquet")
    validated = pd.read_parquet(paths.validated_dir / "validated_data.parquet")
    assert len(production) == 0
    assert list(production.columns) == list(validated.columns) + ["batch"]
    assert graph["partitions"] == []  # no production period is registered from the data


def test_no_period_report_exists_and_the_inbox_batch_has_its_drift(untimed_home):
    """Without a time column there is no period to report drift on: the graph writes no drift report, and
    the inbox batch's monitoring holds the one drift verdict, with its HTML."""
    home, _, _, monitored = untimed_home
    paths = ProjectPaths(home)
    assert not (paths.reports_dir / "drift").exists() and not (paths.reports_dir / "drift_report.json").exists()
    assert [p.name for p in paths.batch_reports_dir.glob("drift-*.html")] == [f"drift-{BATCH}.html"]
    report = json.loads((paths.monitoring_dir / f"batch_monitoring/{BATCH}.json").read_text())
    assert report["data_drift"]["html_path"] == f"data/published/batch_reports/drift-{BATCH}.html"
    assert report["data_drift"]["current_rows"] == 300 and report["data_drift"]["columns"]
    check = monitored["checks"][c.BATCH_NO_DATA_DRIFT]  # a sample of the same rows: evaluated, and no drift
    assert check.passed and "drift_share" in check.description


def test_mlflow_records_no_training_cutoff(untimed_home):
    from mlflow.tracking import MlflowClient

    home, _, _, _ = untimed_home
    paths = ProjectPaths(home)
    record = json.loads((paths.models_dir / "model_candidates.json").read_text())
    client = MlflowClient(tracking_uri=paths.mlflow_tracking_uri)
    for candidate in record["candidates"]:
        assert client.get_run(candidate["run_id"]).data.params["training_cutoff"] == "none (no time column)"


def test_an_inbox_batch_is_picked_up_and_monitored(untimed_home):
    home, _, tick, monitored = untimed_home
    (request,) = tick.run_requests
    assert request.partition_key == BATCH and request.tags[c.TRIGGER_TAG] == "inbox_sensor"
    assert monitored["success"], monitored["failures"]
    assert set(monitored["checks"]) == {
        c.BATCH_NO_DATA_DRIFT,
        c.BATCH_NO_PREDICTION_DRIFT,
        c.BATCH_OUTLIERS_WITHIN_LIMIT,
        c.BATCH_FAIRNESS_WITHIN_THRESHOLDS,
    }
    metadata = monitored["batch_metadata"]
    assert metadata["source"] == f"inbox/{BATCH}.csv" and metadata["dagster/row_count"] == 300
    assert metadata[DATA_SOURCE_KEY] == source_identity(load_policy(ProjectPaths(home).policy_file).data)
    report = json.loads((ProjectPaths(home).monitoring_dir / f"batch_monitoring/{BATCH}.json").read_text())
    assert report["rows"] == 300 and report["labeled_rows"] == 300


def test_the_summary_says_batches_come_from_the_inbox(untimed_home):
    _, _, _, monitored = untimed_home
    text = monitored["summary"]
    assert "production batches  from the inbox only (data/inbox): the data has no time column" in text
    assert DRIFT_LINE in text and "drift (periods)" not in text
    assert f"monitored batch     {BATCH}" in text and "not listed" not in text
