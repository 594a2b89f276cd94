"""MLflow runs left RUNNING are ended FAILED with the reason, but only when provably orphaned."""

import subprocess
import sys

import pytest

from mlcomops_assets.lib.processes import ProcessId
from mlcomops_assets.lib.stale_runs import TAG_PREFIX, process_tags
from mlcomops_assets.stale_runs import ENDED_BY_TAG, end_orphaned_runs


@pytest.fixture
def client(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment("exp", artifact_location=str(tmp_path / "artifacts"))
    return client


def _open_run(client, tags):
    experiment = client.get_experiment_by_name("exp").experiment_id
    return client.create_run(experiment, tags=tags).info.run_id


def test_only_orphaned_runs_are_ended(client):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    dead = ProcessId(ProcessId.current().host, child.pid).as_tags(TAG_PREFIX)
    killed = _open_run(client, {**dead, "dagster.run_id": "d1"})
    live = _open_run(client, {**process_tags(), "dagster.run_id": "d2"})
    of_ended_dagster_run = _open_run(client, {"dagster.run_id": "d3"})
    unknown = _open_run(client, {"dagster.run_id": "d4"})
    finished = {"d3": "FAILURE"}

    ended = end_orphaned_runs(client.tracking_uri, lambda run_id: finished.get(run_id))

    assert {e.run_id for e in ended} == {killed, of_ended_dagster_run}
    for run_id, reason in ((killed, f"pid {child.pid}"), (of_ended_dagster_run, "Dagster run d3 has ended (FAILURE)")):
        run = client.get_run(run_id)
        assert run.info.status == "FAILED" and run.info.end_time
        assert reason in run.data.tags[ENDED_BY_TAG]
    for run_id in (live, unknown):
        assert client.get_run(run_id).info.status == "RUNNING"
    assert end_orphaned_runs(client.tracking_uri) == []  # idempotent
