"""Sensors on a real Dagster instance: new inbox files become batches; alarms request retraining once."""

import json
from contextlib import ExitStack

import dagster as dg
import pytest

from mlcomops_assets.automation import audit_sensor, inbox_sensor, retraining_sensor
from mlcomops_assets.constants import BATCH_MONITORING, BATCH_TAG, PRODUCTION_BATCHES, TRIGGER_TAG
from mlcomops_assets.resources import ProjectResource
from mlcomops_assets_tests.conftest import default_policy, write_home


@pytest.fixture
def home(tmp_path):
    policy = default_policy()
    policy["monitoring"]["retrain_cooldown_hours"] = 24
    return write_home(tmp_path / "home", policy)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst, ExitStack() as contexts:
        _OPEN.append(contexts)
        yield inst
        _OPEN.remove(contexts)


_OPEN: list[ExitStack] = []


def _context(instance, home, cursor=None):
    # Entered, as the daemon enters it: ProjectResource has a run lifecycle (the project lock), which
    # Dagster only lets a sensor use inside the context's scope; closed with the instance fixture.
    return _OPEN[-1].enter_context(
        dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"project": ProjectResource(home=str(home))}
        )
    )


def test_new_inbox_file_becomes_a_batch_run_once(home, instance):
    assert isinstance(inbox_sensor(_context(instance, home)), dg.SkipReason)
    inbox = home / "data/inbox"
    inbox.mkdir(parents=True)
    (inbox / "week-47.csv").write_text("released,colour\nYes,White\n")
    (inbox / "notes.txt").write_text("not a batch")
    (inbox / ".week-48.csv.partial").write_text("still uploading")
    first = inbox_sensor(_context(instance, home))
    (request,) = first.run_requests
    assert request.partition_key == "week-47"
    assert request.tags[TRIGGER_TAG] == "inbox_sensor" and request.tags[BATCH_TAG] == "week-47"
    (added,) = first.dynamic_partitions_requests
    assert added.partition_keys == ["week-47"] and added.partitions_def_name == PRODUCTION_BATCHES.name
    again = inbox_sensor(_context(instance, home, first.cursor))
    assert isinstance(again, dg.SkipReason)
    (inbox / "week-47.csv").write_text("released,colour\nNo,Black\n")  # replaced content: processed again
    changed = inbox_sensor(_context(instance, home, first.cursor))
    assert [r.partition_key for r in changed.run_requests] == ["week-47"]
    assert changed.run_requests[0].run_key != request.run_key


def _monitored(instance, batch: str, alarms: str) -> None:
    # A real materialization event in the instance, as batch_monitoring records it.
    instance.add_dynamic_partitions(PRODUCTION_BATCHES.name, [batch])
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=BATCH_MONITORING, partition=batch, metadata={"alarms": alarms})
    )


def test_alarm_requests_retraining_once_per_cooldown(home, instance):
    assert isinstance(retraining_sensor(_context(instance, home)), dg.SkipReason)
    _monitored(instance, "2001", "(none)")
    stable = retraining_sensor(_context(instance, home))
    assert not stable.run_requests and "no retraining alarm" in stable.skip_reason.skip_message

    _monitored(instance, "drifted-1", "data_drift, outliers")
    drifted = retraining_sensor(_context(instance, home, stable.cursor))
    (request,) = drifted.run_requests
    assert request.tags[TRIGGER_TAG] == "check:batch_no_data_drift" and request.tags[BATCH_TAG] == "drifted-1"

    _monitored(instance, "drifted-2", "data_drift")
    cooled = retraining_sensor(_context(instance, home, drifted.cursor))
    assert not cooled.run_requests and "cooldown 24 h" in cooled.skip_reason.skip_message

    _monitored(instance, "odd-1", "outliers")  # not in monitoring.retrain_on
    state = json.loads(cooled.cursor)
    state["last_request"] = None
    assert not retraining_sensor(_context(instance, home, json.dumps(state))).run_requests


def test_fairness_alarm_after_the_cooldown_requests_again(home, instance):
    _monitored(instance, "b1", "fairness")
    first = retraining_sensor(_context(instance, home))
    assert first.run_requests[0].tags[TRIGGER_TAG] == "check:batch_fairness_within_thresholds"
    state = json.loads(first.cursor)
    state["last_request"] = "2000-01-01T00:00:00+00:00"  # long ago
    _monitored(instance, "b2", "fairness")
    assert len(retraining_sensor(_context(instance, home, json.dumps(state))).run_requests) == 1


def _ended_run(instance, job_name: str, succeeds: bool) -> str:
    """A real run of a job with this name, ended as given, recorded in the instance."""

    @dg.op
    def step():
        if not succeeds:
            raise dg.Failure(description="blocked, as a gate would")

    @dg.job(name=job_name)
    def job():
        step()

    return job.execute_in_process(instance=instance, raise_on_error=False).run_id


def test_an_ended_graph_or_batch_run_requests_one_audit_failed_ones_included(instance):
    assert isinstance(audit_sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
    blocked = _ended_run(instance, "end_to_end", succeeds=False)
    first = audit_sensor(dg.build_sensor_context(instance=instance))
    (request,) = first.run_requests
    assert request.run_key == f"audit:{blocked}" and request.tags[TRIGGER_TAG] == f"run:{blocked}"
    assert isinstance(audit_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor)), dg.SkipReason)
    # An audit run (or any other job) does not request another audit: no loop.
    _ended_run(instance, "audit", succeeds=True)
    assert isinstance(audit_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor)), dg.SkipReason)
    batch = _ended_run(instance, "monitor_batch", succeeds=True)
    second = audit_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert [r.run_key for r in second.run_requests] == [f"audit:{batch}"]
