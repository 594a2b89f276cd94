"""Which MLflow runs left RUNNING can no longer finish (the decision only; free of Dagster and MLflow).

A SIGKILL skips every ``finally``, so the MLflow run of a killed training stays RUNNING forever. A
RUNNING run is orphaned when the process recorded in its tags (``mlcomops.host``/``pid``) is provably
dead, or when the caller says the Dagster run it belongs to has ended. Runs of live processes, of
other hosts, or without either record are left alone: ending a live run would corrupt it. Ending the
orphans in the MLflow store is ``mlcomops_assets.stale_runs``.
"""

from __future__ import annotations

from collections.abc import Callable

from mlcomops_assets.lib.processes import ProcessId

TAG_PREFIX = "mlcomops."
DAGSTER_RUN_TAG = "dagster.run_id"


def process_tags() -> dict[str, str]:
    """Tags naming the current process, for every MLflow run it opens."""
    return ProcessId.current().as_tags(TAG_PREFIX)


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
