"""Monitor every registered production batch that has no monitoring result yet, on the project's instance.

``make run`` calls this after the end-to-end job, so the data's production periods (registered by
``data_splits`` when the policy names a time column) and the files in the inbox are validated, scored by
the champion and monitored without the daemon. An inbox file whose name is not a partition yet is
registered first, as the inbox sensor would: without a time column the inbox is the only source of
batches, and ``make run`` must not wait for ``make ui`` to see them. With ``make ui`` running, the daily
schedule and the inbox sensor do the same on their own. No batch at all (no time column, empty inbox)
is no failure: there is nothing to monitor yet.
"""

from __future__ import annotations

import argparse
import sys

import dagster as dg

from mlcomops_assets.batch_sources import recorded_source
from mlcomops_assets.constants import (
    BATCH_MONITORING,
    BATCH_TAG,
    MONITOR_BATCH_JOB,
    PRODUCTION_BATCHES,
    PRODUCTION_DATA,
    TRIGGER_TAG,
)
from mlcomops_assets.lib.batches import inbox_files, source_identity
from mlcomops_assets.pipeline_run import finish
from mlcomops_assets.policy import PolicyError, load_policy, report_policy_error
from mlcomops_assets.settings import ProjectPaths, default_home


def _periods(paths: ProjectPaths, policy) -> set[str]:
    """The production periods of the current data (none without a time column)."""
    from mlcomops_assets.io_manager import read_parquet, stored_value
    from mlcomops_assets.lib.splitting import BATCH_COLUMN

    path = stored_value(paths.home, PRODUCTION_DATA.path[-1], ".parquet")  # data/, or the team's object store
    if not policy.data.has_time or not path.is_file():
        return set()
    return set(read_parquet(path, columns=[BATCH_COLUMN])[BATCH_COLUMN].astype(str))


def to_monitor(instance: dg.DagsterInstance, paths: ProjectPaths, policy, keys: list[str]) -> list[str]:
    """The registered batches without a monitoring result, and those monitored for another data source (or
    before sources were recorded) that the current source has too: same key, other rows, and the summary
    would hide their result."""
    done = instance.get_materialized_partitions(BATCH_MONITORING)
    current = source_identity(policy.data)
    available = set(inbox_files(paths.home / policy.monitoring.inbox)) | _periods(paths, policy)
    stale = {k for k in done if k in available and recorded_source(instance, k) != current}
    return [k for k in keys if k not in done or k in stale]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trigger", default="make run", help="recorded in the runs' mlcomops/trigger tag")
    args = parser.parse_args()
    try:
        # Imported here: building the definitions loads the policy, and a broken one is reported
        # as a message with exit code 2, not as an import traceback.
        from mlcomops_assets.definitions import defs

        paths = ProjectPaths(default_home())
        policy = load_policy(paths.policy_file)
    except PolicyError as exc:
        finish(report_policy_error(exc))
    instance = dg.DagsterInstance.get()
    registered = set(instance.get_dynamic_partitions(PRODUCTION_BATCHES.name))
    arrived = [k for k in inbox_files(paths.home / policy.monitoring.inbox) if k not in registered]
    if arrived:
        instance.add_dynamic_partitions(PRODUCTION_BATCHES.name, arrived)
    keys = instance.get_dynamic_partitions(PRODUCTION_BATCHES.name)
    job = defs.resolve_job_def(MONITOR_BATCH_JOB)
    failed = []
    for key in to_monitor(instance, paths, policy, keys):
        result = job.execute_in_process(
            instance=instance,
            partition_key=key,
            tags={TRIGGER_TAG: args.trigger, BATCH_TAG: key},
            raise_on_error=False,
        )
        if not result.success:
            failed.append(key)
    if failed:
        print(f"monitoring failed for batch(es) {', '.join(failed)}: see the runs in the Dagster UI", file=sys.stderr)
    elif not keys:
        print(f"no production batch to monitor: drop CSV or Parquet files into {policy.monitoring.inbox}")
    finish(1 if failed else 0)


if __name__ == "__main__":
    main()
