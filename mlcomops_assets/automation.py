"""Automation: new batches are monitored as they arrive, alarms trigger retraining, schedules catch up.

Retraining is triggered by a sensor, not by a declarative automation condition, because the sensor
can (a) hold a cooldown across batches, so a week of drifted batches asks for one retraining, not
seven, and (b) tag the run with the check and batch that caused it, which an auditor reads later.
The retraining run is the whole graph (re-validation, candidates, selection, every gate, promotion), so
nothing reaches the `champion` alias unless every gate passed. Every sensor and schedule is running by
default: nobody has to switch automation on in the UI.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from mlcomops_assets.constants import (
    ALARM_OF_CHECK,
    AUDIT_JOB,
    AUDIT_SENSOR,
    BATCH_MONITORING,
    BATCH_TAG,
    DAILY_MONITORING,
    END_TO_END_JOB,
    INBOX_SENSOR,
    MONITOR_BATCH_JOB,
    PRODUCTION_BATCHES,
    RETRAINING_SENSOR,
    TRIGGER_TAG,
    WEEKLY_RETRAINING,
)
from mlcomops_assets.lib.batches import inbox_files
from mlcomops_assets.lib.files import file_md5
from mlcomops_assets.policy import Policy
from mlcomops_assets.resources import ProjectResource
from mlcomops_assets.run_guard import sweep

DEAD_RUN_SENSOR = "dead_run_sensor"
CHECK_OF_ALARM = {alarm: check for check, alarm in ALARM_OF_CHECK.items()}
RUNNING = dg.DefaultSensorStatus.RUNNING
SCHEDULE_RUNNING = dg.DefaultScheduleStatus.RUNNING


@dg.sensor(
    name=INBOX_SENSOR,
    job_name=MONITOR_BATCH_JOB,
    minimum_interval_seconds=30,
    default_status=RUNNING,
    description="Registers every new or changed CSV/Parquet file in the inbox as a production batch and "
    "launches its validation, scoring and monitoring.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, project: ProjectResource):
    """One run per new file content (the run key is the file's MD5, so a re-saved identical file is not
    processed twice); the partition is added in the same tick, before its run is launched."""
    policy = project.policy()
    inbox = project.paths.home / policy.monitoring.inbox
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    fresh = {}
    for key, path in inbox_files(inbox).items():
        md5 = file_md5(path)
        if seen.get(key) != md5:
            fresh[key] = (path, md5)
    if not fresh:
        return dg.SkipReason(f"no new batch file in {policy.monitoring.inbox}")
    known = set(context.instance.get_dynamic_partitions(PRODUCTION_BATCHES.name))
    new_keys = [k for k in fresh if k not in known]
    requests = [
        dg.RunRequest(
            run_key=f"{key}:{md5}",
            partition_key=key,
            tags={TRIGGER_TAG: INBOX_SENSOR, BATCH_TAG: key, "mlcomops/file": path.name, "mlcomops/file_md5": md5},
        )
        for key, (path, md5) in fresh.items()
    ]
    seen.update({key: md5 for key, (_, md5) in fresh.items()})
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[PRODUCTION_BATCHES.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps(seen, sort_keys=True),
    )


@dg.sensor(
    name=DEAD_RUN_SENSOR,
    minimum_interval_seconds=30,
    default_status=RUNNING,
    description="Marks runs whose process is gone (killed) as failed and ends the MLflow runs they left "
    "RUNNING, so a killed run never holds the run queue (max_concurrent_runs counts it as in progress).",
)
def dead_run_sensor(context: dg.SensorEvaluationContext, project: ProjectResource):
    """Launches nothing: it only repairs run records (``run_guard.sweep``), and is safe without the
    project lock because it touches only runs whose process is provably dead or whose run has ended."""
    messages = sweep(context.instance, project.paths)
    return dg.SkipReason("; ".join(messages) if messages else "no dead run")


def _alarms(record) -> list[str]:
    text = record.asset_materialization.metadata["alarms"].value
    return [] if text == "(none)" else [a.strip() for a in text.split(",")]


@dg.sensor(
    name=RETRAINING_SENSOR,
    job_name=END_TO_END_JOB,
    minimum_interval_seconds=60,
    default_status=RUNNING,
    description="Requests a full retraining when a monitored batch raises an alarm listed in "
    "monitoring.retrain_on, at most once per monitoring.retrain_cooldown_hours.",
)
def retraining_sensor(context: dg.SensorEvaluationContext, project: ProjectResource):
    """Reads each new `batch_monitoring` result once (the cursor holds the last event read and the time
    of the last request). The run is tagged with the check and batch that triggered it."""
    policy = project.policy()
    state = json.loads(context.cursor) if context.cursor else {"after": None, "last_request": None}
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=BATCH_MONITORING, after_storage_id=state["after"]), limit=1000, ascending=True
    ).records
    if not records:
        return dg.SkipReason("no new batch monitoring results")
    state["after"] = records[-1].storage_id
    triggers = [
        (record.partition_key, [a for a in _alarms(record) if a in policy.monitoring.retrain_on]) for record in records
    ]
    triggers = [(batch, alarms) for batch, alarms in triggers if alarms]
    if not triggers:
        return dg.SensorResult(
            skip_reason=f"{len(records)} new batch result(s), no retraining alarm", cursor=json.dumps(state)
        )
    now = datetime.now(UTC)
    batch, alarms = triggers[-1]
    last = datetime.fromisoformat(state["last_request"]) if state["last_request"] else None
    cooldown = timedelta(hours=policy.monitoring.retrain_cooldown_hours)
    if last is not None and now - last < cooldown:
        return dg.SensorResult(
            skip_reason=f"batch {batch} raised {', '.join(alarms)}, but retraining was requested at "
            f"{last.isoformat(timespec='seconds')} (cooldown {policy.monitoring.retrain_cooldown_hours:g} h)",
            cursor=json.dumps(state),
        )
    state["last_request"] = now.isoformat()
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"retrain:{now.isoformat()}",
                tags={
                    TRIGGER_TAG: f"check:{CHECK_OF_ALARM[alarms[0]]}",
                    BATCH_TAG: batch,
                    "mlcomops/alarms": ",".join(alarms),
                },
            )
        ],
        cursor=json.dumps(state),
    )


# The runs whose outcome the audit records: a graph run (a registered, promoted or blocked version)
# and a batch run (monitoring evidence of the champion).
AUDITED_JOBS = (END_TO_END_JOB, MONITOR_BATCH_JOB)
_FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]


@dg.sensor(
    name=AUDIT_SENSOR,
    job_name=AUDIT_JOB,
    minimum_interval_seconds=60,
    default_status=RUNNING,
    description="After a graph or batch run ends, successful or not, re-evaluates the compliance matrix and "
    "bundles the registered version's evidence (a blocked version is documented too).",
)
def audit_sensor(context: dg.SensorEvaluationContext):
    """One audit run for all graph and batch runs that ended since the last one: a failed run counts,
    since a blocked promotion or a tripped gate is exactly what an auditor must see."""
    after = float(context.cursor) if context.cursor else None
    ended = [
        run
        for job in AUDITED_JOBS
        for run in context.instance.get_run_records(
            dg.RunsFilter(
                job_name=job, statuses=_FINISHED, updated_after=datetime.fromtimestamp(after, UTC) if after else None
            ),
            limit=100,
        )
    ]
    if not ended:
        return dg.SkipReason("no graph or batch run ended since the last audit")
    newest = max(ended, key=lambda r: r.update_timestamp)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"audit:{newest.dagster_run.run_id}",
                tags={TRIGGER_TAG: f"run:{newest.dagster_run.run_id}"},
            )
        ],
        cursor=str(newest.update_timestamp.timestamp()),
    )


def build_schedules(policy: Policy) -> list[dg.ScheduleDefinition]:
    """Daily monitoring of every batch not yet monitored; weekly full re-validation and retraining."""

    @dg.schedule(
        name=DAILY_MONITORING,
        cron_schedule=policy.monitoring.monitoring_cron,
        job_name=MONITOR_BATCH_JOB,
        default_status=SCHEDULE_RUNNING,
        description="Monitors every registered production batch that has no monitoring result yet.",
    )
    def daily_monitoring(context: dg.ScheduleEvaluationContext):
        """Catches up what the sensor missed (e.g. while the daemon was down) and the data's production
        periods (none when the data has no time column: then every batch is an inbox file)."""
        keys = context.instance.get_dynamic_partitions(PRODUCTION_BATCHES.name)
        done = context.instance.get_materialized_partitions(BATCH_MONITORING)
        todo = [k for k in keys if k not in done]
        if not todo:
            return dg.SkipReason(f"all {len(keys)} batch(es) are monitored")
        day = context.scheduled_execution_time.strftime("%Y-%m-%d") if context.scheduled_execution_time else "now"
        return [
            dg.RunRequest(
                run_key=f"{k}:{day}", partition_key=k, tags={TRIGGER_TAG: f"schedule:{DAILY_MONITORING}", BATCH_TAG: k}
            )
            for k in todo
        ]

    weekly = dg.ScheduleDefinition(
        name=WEEKLY_RETRAINING,
        cron_schedule=policy.monitoring.retraining_cron,
        job_name=END_TO_END_JOB,
        default_status=SCHEDULE_RUNNING,
        tags={TRIGGER_TAG: f"schedule:{WEEKLY_RETRAINING}"},
        description="Full re-validation, retraining, selection and (gated) promotion.",
    )
    return [daily_monitoring, weekly]
