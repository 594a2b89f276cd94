"""MLflow runs left RUNNING by a dead process are ended FAILED, with the reason recorded (Dagster-free).

Which runs are orphaned is decided by ``lib.stale_runs.orphan_reason``; this module applies the decision
to the MLflow store, so it lives outside ``lib/`` (which imports no MLflow). ``run_guard.sweep`` calls it
with a callback that asks the Dagster instance whether a run has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlcomops_assets.lib.stale_runs import orphan_reason

ENDED_BY_TAG = "mlcomops.ended_by"


@dataclass(frozen=True)
class EndedRun:
    run_id: str
    run_name: str
    reason: str


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
