"""Monitor every registered production batch that has no monitoring result yet, on the project's instance.

``make run`` calls this after the end-to-end job, so the default data's production periods are
validated, scored by the champion and monitored without the daemon. With ``make ui`` running, the
daily schedule and the inbox sensor do the same on their own.
"""

from __future__ import annotations

import argparse
import sys

import dagster as dg

from mlcomops_assets.constants import BATCH_MONITORING, BATCH_TAG, MONITOR_BATCH_JOB, PRODUCTION_BATCHES, TRIGGER_TAG
from mlcomops_assets.pipeline_run import finish
from mlcomops_assets.policy import PolicyError, report_policy_error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trigger", default="make run", help="recorded in the runs' mlcomops/trigger tag")
    args = parser.parse_args()
    try:
        # Imported here: building the definitions loads the policy, and a broken one is reported
        # as a message with exit code 2, not as an import traceback.
        from mlcomops_assets.definitions import defs
    except PolicyError as exc:
        finish(report_policy_error(exc))
    instance = dg.DagsterInstance.get()
    keys = instance.get_dynamic_partitions(PRODUCTION_BATCHES.name)
    done = instance.get_materialized_partitions(BATCH_MONITORING)
    job = defs.resolve_job_def(MONITOR_BATCH_JOB)
    failed = []
    for key in [k for k in keys if k not in done]:
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
    finish(1 if failed else 0)


if __name__ == "__main__":
    main()
