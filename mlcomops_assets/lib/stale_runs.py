"""MLflow runs left RUNNING by a dead process are ended FAILED, with the reason recorded (Dagster-free).

A SIGKILL skips every ``finally``, so the MLflow run of a killed training stays RUNNING forever. A
RUNNING run is orphaned when the process recorded in its tags (``mlcomops.host``/``pid``) is provably
dead, or when the caller says the Dagster run it belongs to has ended. Runs of live processes, of
other hosts, or without either record are left alone: ending a live run would corrupt it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlcomops_assets.lib.processes import ProcessId

TAG_PREFIX = "mlcomops."
ENDED_BY_TAG = "mlcomops.ended_by"
DAGSTER_RUN_TAG = "dagster.run_id"


def process_tags() -> dict[str, str]:
    """Tags naming the current process, for every MLflow run it opens."""
    return ProcessId.current().as_tags(TAG_PREFIX)


@dataclass(frozen=True)
class EndedRun:
    run_id: str
    run_name: str
    reason: str


def orphan_reason(tags: dict[str, str], dagster_run_ended: Callable[[str], str | None]) -> str | None:
    """Why a RUNNING MLflow run can no longer finish, or None when it may still be alive."""
    process = ProcessId.from_tags(tags, TAG_PREFIX)
    if process is not None and process.is_dead():
        return f"its process ({process.describe()}) is gone"
    dagster_run = tags.get(DAGSTER_RUN_TAG)
    ended = dagster_run_ended(dagster_run) if dagster_run else None
    if ended:
        return f"its Dagster run {dagster_run} has ended ({ended})"
    return None


def end_orphaned_runs(
    tracking_uri: str, dagster_run_ended: Callable[[str], str | None] = lambda _: None
) -> list[EndedRun]:
    """End every orphaned RUNNING run of every experiment as FAILED, tagged with ``ENDED_BY_TAG``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    ended = []
    for run in client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'", max_results=1000):
        reason = orphan_reason(run.data.tags, dagster_run_ended)
        if reason is None:
            continue
        text = f"ended FAILED by mlcomops stale-run sweep: {reason}"
        client.set_tag(run.info.run_id, ENDED_BY_TAG, text)
        client.set_terminated(run.info.run_id, status="FAILED")
        ended.append(EndedRun(run.info.run_id, run.info.run_name, reason))
    return ended
