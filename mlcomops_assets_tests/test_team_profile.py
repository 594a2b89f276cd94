"""The team profile on real services: Dagster's instance on PostgreSQL, MLflow on PostgreSQL with its
artifacts and the asset values in object storage (moto's S3 server, the stand-in for a cloud bucket),
every step a Dask task on one of two worker processes (team_services.py). Same graph, same guarantees.
"""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from mlcomops_assets import constants as c
from mlcomops_assets.definitions import ALL_ASSETS
from mlcomops_assets.lib.processes import ProcessId
from mlcomops_assets_tests.team_services import TEST_DB_PASSWORD, team, team_job

# The graph run on the services is the ``team`` fixture (team_services.py: once per session, the
# environment set for each module using it); ``_job`` is how the team's processes load a job.
_job = team_job
__all__ = ["_job", "team"]

pytestmark = pytest.mark.team

ALL_KEYS = {key for asset in ALL_ASSETS for key in asset.keys}
BATCH = "week-team"


def test_instance_is_postgres_and_queued(team):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresRunStorage

    _, instance, _ = team
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 1
    assert instance.run_monitoring_enabled and instance.run_monitoring_max_resume_run_attempts == 0


def test_whole_graph_materializes_on_the_team_services(team):
    services, _, result = team
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == ALL_KEYS
    failed = [(e.check_name, e.description) for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == []

    # Asset values are objects in the bucket (same layout as data/), not files of the home.
    keys = set(services.s3.keys("team/data/"))
    for value in (
        "validated/validated_data.parquet",
        "prepared/training_data.parquet",
        "models/trained_model.json",
        "champion/champion_model.json",
        "monitoring/outlier_detector.json",
    ):
        assert f"team/data/{value}" in keys
    assert not (services.home / "data/prepared/training_data.parquet").exists()

    # Runs and their events are rows of the PostgreSQL instance.
    pg = services.postgres
    ((status,),) = pg.query("dagster", "SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
    assert status == "SUCCESS"
    ((events,),) = pg.query("dagster", "SELECT count(*) FROM event_logs WHERE run_id = %s", (result.run_id,))
    assert events > 100
    # The database password is in every URL the services were given, and in none of the records.
    leaked = pg.query("dagster", "SELECT count(*) FROM event_logs WHERE event LIKE %s", (f"%{TEST_DB_PASSWORD}%",))
    assert leaked == [(0,)]
    assert pg.query("dagster", "SELECT count(*) FROM run_tags WHERE value LIKE %s", (f"%{TEST_DB_PASSWORD}%",)) == [
        (0,)
    ]


def test_mlflow_runs_in_postgres_and_the_model_in_the_bucket(team):
    import json

    services, _, result = team
    record = json.loads(services.s3.read("team/data/models/trained_model.json"))
    pg = services.postgres
    rows = pg.query("mlflow", "SELECT status, artifact_uri FROM runs WHERE run_uuid = %s", (record["run_id"],))
    ((status, artifact_uri),) = rows
    assert status == "FINISHED" and artifact_uri.startswith(services.s3.url("team/mlflow"))
    versions = pg.query("mlflow", "SELECT version FROM model_versions WHERE name = %s", (record["registered_name"],))
    assert (int(record["version"]),) in versions
    assert pg.query("mlflow", "SELECT count(*) FROM runs WHERE status = 'RUNNING'") == [(0,)]
    model_files = [k for k in services.s3.keys("team/mlflow/") if k.endswith("/MLmodel")]
    assert model_files, "the logged model's MLmodel file is not in the bucket"
    tags = dict(pg.query("mlflow", "SELECT key, value FROM tags WHERE run_uuid = %s", (record["run_id"],)))
    assert tags["dagster.run_id"] == result.run_id


def test_steps_ran_on_two_dask_worker_processes(team):
    services, instance, result = team
    starts = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_START)
    pids = {entry.dagster_event.pid for entry in starts}
    workers = services.dask.worker_pids()
    assert len(workers) == 2
    assert pids <= workers and len(pids) == 2, (pids, workers)
    assert os.getpid() not in pids
    # The run's process for the dead-run sweep is its orchestrator (this process), not a worker.
    assert instance.get_run_by_id(result.run_id).tags["mlcomops/pid"] == str(os.getpid())


def test_the_graphs_champion_is_promoted_and_verifiable(team):
    """The promotion step ran on a worker: the registry's champion alias names the version, and the
    signed record verifies against the artifact as stored in the bucket (``mlcomops champion verify``)."""
    import json

    from mlcomops_assets.champion import verify
    from mlcomops_assets.settings import ProjectPaths

    services, instance, result = team
    champion = json.loads(services.s3.read("team/data/champion/champion_model.json"))
    record = json.loads(services.s3.read("team/data/models/trained_model.json"))
    assert str(champion.get("version")) == str(record["version"]), champion
    described = verify(ProjectPaths(services.home))
    assert f"v{record['version']}" in described and "verifies" in described
    promotion = instance.get_latest_materialization_event(c.CHAMPION_MODEL)
    assert promotion.run_id == result.run_id


def test_inbox_batch_goes_through_the_sensor_and_is_monitored(team):
    import pandas as pd

    from mlcomops_assets.automation import inbox_sensor
    from mlcomops_assets.resources import ProjectResource

    services, instance, _ = team
    inbox = services.home / "data/inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    source = pd.read_csv(services.home / "data/raw/source.csv")
    source.tail(300).to_csv(inbox / f"{BATCH}.csv", index=False)
    with dg.build_sensor_context(
        instance=instance, resources={"project": ProjectResource(home=str(services.home))}
    ) as context:
        tick = inbox_sensor(context)
    (request,) = tick.run_requests
    assert request.partition_key == BATCH
    # Applied as the daemon applies a tick: the partition first, then the requested run.
    for added in tick.dynamic_partitions_requests:
        instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys))
    assert BATCH in instance.get_dynamic_partitions(c.PRODUCTION_BATCHES.name)
    result = dg.execute_job(
        _job(c.MONITOR_BATCH_JOB),
        instance=instance,
        tags={**request.tags, "dagster/partition": request.partition_key},
    )
    assert result.success
    monitored = instance.get_latest_materialization_event(c.BATCH_MONITORING)
    assert monitored.run_id == result.run_id and monitored.asset_materialization.partition == BATCH
    assert f"team/data/monitoring/batch_monitoring/{BATCH}.json" in services.s3.keys("team/data/monitoring/")


def test_dead_run_is_failed_and_frees_the_project_lease(team):
    """A STARTED run whose process died holds the project lease; the next run's first step sweeps it
    (marked failed on the PostgreSQL instance, with the reason) and takes the lease."""
    from mlcomops_assets.run_guard import PROCESS_TAG_PREFIX, exclusive_run
    from mlcomops_assets.settings import ProjectPaths

    services, instance, _ = team
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    dead = ProcessId(ProcessId.current().host, child.pid).as_tags(PROCESS_TAG_PREFIX)
    paths = ProjectPaths(services.home)
    crashed = instance.create_run_for_job(dg.GraphDefinition(name="crashed").to_job(), tags=dead)
    instance.handle_run_event(crashed.run_id, _event(crashed, dg.DagsterEventType.RUN_START))
    with exclusive_run(paths, instance, crashed, 1.0, scope="run"):
        pass  # the crashed run held the lease before it died
    waiting = instance.create_run_for_job(dg.GraphDefinition(name="waiting").to_job())
    instance.handle_run_event(waiting.run_id, _event(waiting, dg.DagsterEventType.RUN_START))
    with exclusive_run(paths, instance, waiting, 10.0, scope="run"):
        assert instance.get_run_by_id(crashed.run_id).status == dg.DagsterRunStatus.FAILURE
    instance.report_run_failed(waiting, "ended by the test")  # frees the lease for the next test
    ((status,),) = services.postgres.query("dagster", "SELECT status FROM runs WHERE run_id = %s", (crashed.run_id,))
    assert status == "FAILURE"
    failure = instance.all_logs(crashed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert "is gone" in failure[-1].message


def test_a_live_run_keeps_the_lease_and_reenters_it(team):
    """Steps of the run holding the lease re-enter it; another run is refused, naming the holder."""
    from mlcomops_assets.run_guard import exclusive_run
    from mlcomops_assets.settings import ProjectPaths

    services, instance, _ = team
    paths = ProjectPaths(services.home)
    holder = instance.create_run_for_job(dg.GraphDefinition(name="holder").to_job())
    instance.handle_run_event(holder.run_id, _event(holder, dg.DagsterEventType.RUN_START))
    other = instance.create_run_for_job(dg.GraphDefinition(name="other").to_job())
    with exclusive_run(paths, instance, holder, 1.0, scope="run"):
        pass  # first step: takes the lease and keeps it after the step
    with exclusive_run(paths, instance, holder, 1.0, scope="run"):
        pass  # another step of the same run (another worker process in a real run)
    with (
        pytest.raises(dg.Failure, match=f"Dagster run {holder.run_id}"),
        exclusive_run(paths, instance, other, 1.5, scope="run"),
    ):
        pass
    instance.report_run_failed(holder, "ended by the test")
    with exclusive_run(paths, instance, other, 1.0, scope="run"):
        pass  # the holder ended: the lease is free
    instance.report_run_failed(other, "ended by the test")  # frees the lease for later tests


def _event(run: dg.DagsterRun, kind: dg.DagsterEventType) -> dg.DagsterEvent:
    return dg.DagsterEvent(event_type_value=kind.value, job_name=run.job_name, message="test")
