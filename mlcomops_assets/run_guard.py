"""Runs that end and do not overlap, however they were launched (UI, CLI, sensor, schedule, ``dvc repro``).

* **Dead runs end.** Every run records its process (run tags ``mlcomops/host``, ``mlcomops/pid``,
  ``mlcomops/pid_started``) before it waits for the lock. A STARTED run whose process is provably dead
  is marked failed through the instance, with the reason; MLflow runs it left RUNNING are ended FAILED
  (``stale_runs``). This sweep runs when any run takes the project lock and every 30 s in the
  daemon (``automation.dead_run_sensor``), because the queue counts a dead STARTED run against
  ``max_concurrent_runs`` and would otherwise never launch the run that could clean it up. Dagster's
  own run monitoring cannot do this for us: the DefaultRunLauncher has no worker health check, and
  runs executed by the CLI or ``execute_in_process`` were never launched by the daemon at all.
* **One writer at a time.** The run holds ``lib.run_lock`` from resource initialization to teardown;
  a second one waits at most ``wait_seconds`` and is then refused with a ``dg.Failure`` naming the
  run that holds the lock.
* **Per-step processes (team profile, Dask).** Every step initializes the resources in its own worker
  process, so no process lives as long as the run and a kernel lock would be dropped between two steps
  of one run. There the lock is a *lease* named by run id (``lib.run_lock.run_lease``, scope ``run``):
  re-entrant for the steps of the run that holds it, refused to every other run until that run has
  ended. The run's process is then its orchestrator (the process that submits the steps), which
  records itself (``record_run_process``) so a dead orchestrator's run is failed and its lease freed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime

import dagster as dg

from mlcomops_assets.lib.processes import ProcessId
from mlcomops_assets.lib.run_lock import ProjectLocked, describe_holder, project_lock, run_lease
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets.stale_runs import end_orphaned_runs

PROCESS_TAG_PREFIX = "mlcomops/"
LOCK_WAIT_ENV = "MLCOMOPS_RUN_LOCK_WAIT_SECONDS"
# Long enough for a whole-graph run (about a minute on the default data) to finish first.
DEFAULT_LOCK_WAIT_SECONDS = 600.0
_ENDED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def lock_wait_seconds(configured: float | None) -> float:
    """The resource's setting, else ``$MLCOMOPS_RUN_LOCK_WAIT_SECONDS``, else the default."""
    if configured is not None:
        return configured
    return float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_SECONDS))


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark every STARTED run whose recorded process is provably dead as failed; say which."""
    done = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        process = ProcessId.from_tags(dict(run.tags), PROCESS_TAG_PREFIX)
        if process is None or not process.is_dead():
            continue  # alive, on another host, or killed before it recorded itself (run monitoring's case)
        message = (
            f"Marked failed by mlcomops: the process executing this run ({process.describe()}) is gone, "
            "most likely killed; nothing it had not renamed into place was published."
        )
        instance.report_run_failed(run, message)
        done.append(f"Dagster run {run.run_id} ({run.job_name}): {process.describe()} is gone")
    return done


def dagster_run_ended(instance: dg.DagsterInstance) -> Callable[[str], str | None]:
    """For ``stale_runs``: the status of a Dagster run that has ended, else None."""

    def ended(run_id: str) -> str | None:
        run = instance.get_run_by_id(run_id)
        return run.status.value if run is not None and run.status in _ENDED else None

    return ended


def sweep(instance: dg.DagsterInstance, paths: ProjectPaths) -> list[str]:
    """End dead Dagster runs first, then the MLflow runs they (or any ended run) left RUNNING."""
    from mlcomops_assets.profile import mlflow_locations

    messages = fail_dead_runs(instance)
    locations = mlflow_locations(paths)
    # A local store that was never created has nothing to end (and must not be created here).
    if not locations.is_sqlite or paths.mlflow_dir.joinpath("mlflow.db").exists():
        ended = end_orphaned_runs(locations.tracking_uri, dagster_run_ended(instance))
        messages += [f"MLflow run {e.run_id} ({e.run_name}): {e.reason}" for e in ended]
    return messages


def _run_started(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    record = instance.get_run_record_by_id(run.run_id)
    stamp = record.start_time if record is not None and record.start_time else None
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds") if stamp else "?"


def record_run_process(instance: dg.DagsterInstance, run: dg.DagsterRun, only_if_unset: bool = False) -> None:
    """Tag ``run`` with the current process (the one whose death means the run is dead)."""
    if only_if_unset:
        stored = instance.get_run_by_id(run.run_id)
        if stored is not None and f"{PROCESS_TAG_PREFIX}pid" in stored.tags:
            return
    instance.add_run_tags(run.run_id, ProcessId.current().as_tags(PROCESS_TAG_PREFIX))


def run_over(instance: dg.DagsterInstance) -> Callable[[str], bool]:
    """For a run lease: has the holding run ended (or is it unknown to this instance)? A STARTED holder
    whose process is provably dead is marked failed first (``fail_dead_runs``), which ends its lease."""

    def over(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        if run is None or run.status in _ENDED:
            return True
        fail_dead_runs(instance)
        run = instance.get_run_by_id(run_id)
        return run is None or run.status in _ENDED

    return over


@contextmanager
def exclusive_run(
    paths: ProjectPaths,
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    wait_seconds: float,
    log: logging.Logger | dg.DagsterLogManager | None = None,
    scope: str = "process",
) -> Iterator[None]:
    """Record this run's process, take the project lock (or fail naming its holder), sweep dead runs.

    ``scope="process"``: a kernel lock held by this process until the body ends (one process runs
    every step). ``scope="run"``: a lease by run id, re-entrant for the run's other steps (``run_lease``);
    the run's process is recorded only if its orchestrator has not recorded itself, and the dead-run
    sweep runs once per run, when the lease is taken."""
    me = ProcessId.current()
    # Before waiting: a sweep elsewhere must see that this waiting run is alive.
    record_run_process(instance, run, only_if_unset=scope == "run")
    holder = {
        "run_id": run.run_id,
        "job": run.job_name,
        "started": _run_started(instance, run),
        "pid": me.pid,
        "host": me.host,
    }
    with ExitStack() as stack:
        try:
            if scope == "run":
                taken = stack.enter_context(run_lease(paths.run_lock_file, holder, wait_seconds, run_over(instance)))
            else:
                stack.enter_context(project_lock(paths.run_lock_file, holder, wait_seconds))
                taken = True
        except ProjectLocked as exc:
            text = (
                f"refused: the project {paths.home} is being written by {describe_holder(exc.holder)}; "
                f"waited {exc.waited:.0f} s (${LOCK_WAIT_ENV}). Only one run may write at a time: start this "
                "one again when that run has ended."
            )
            # Dagster reports a resource failure under a generic headline; this line is the readable reason.
            if log is not None:
                log.error(text)
            raise dg.Failure(
                description=text, metadata={"lock_holder_run_id": str(exc.holder.get("run_id", "?"))}
            ) from None
        try:
            messages = sweep(instance, paths) if taken else []
        except Exception as exc:  # noqa: BLE001 - repairing other runs' records must not stop this run
            messages = [f"the sweep itself failed ({exc!r}); dead runs stay until the next sweep"]
        for message in messages:
            if log is not None:
                log.warning(f"dead-run sweep: {message}")
        yield
