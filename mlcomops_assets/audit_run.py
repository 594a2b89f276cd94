"""Run the `audit` job on the project's instance: the compliance matrix and the registered version's
evidence bundle. `make run` calls it after the graph and the batches, whatever their outcome, so a
blocked version is bundled too; the audit sensor does the same for runs launched in the UI."""

from __future__ import annotations

import argparse
import sys

import dagster as dg

from mlcomops_assets.constants import AUDIT_BUNDLE, AUDIT_JOB, TRIGGER_TAG
from mlcomops_assets.pipeline_run import finish
from mlcomops_assets.policy import PolicyError, report_policy_error
from mlcomops_assets.settings import ProjectPaths, default_home


def run(trigger: str = "make run") -> bool:
    """Materialize the audit assets; print where the bundle is and how to verify it."""
    from mlcomops_assets.definitions import build_defs

    paths = ProjectPaths(default_home())
    instance = dg.DagsterInstance.get()
    result = (
        build_defs(paths.home)
        .resolve_job_def(AUDIT_JOB)
        .execute_in_process(instance=instance, tags={TRIGGER_TAG: trigger}, raise_on_error=False)
    )
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == AUDIT_BUNDLE:
            command = materialization.metadata["verify_with"].value
            print(f"audit bundle: {materialization.metadata['bundle'].value}\nverify it with: {command}")
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(f"audit step {event.step_key} failed: {event.event_specific_data.error.message}", file=sys.stderr)
    return result.success


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trigger", default="make run", help="recorded in the run's mlcomops/trigger tag")
    args = parser.parse_args()
    try:
        ok = run(args.trigger)
    except PolicyError as exc:
        finish(report_policy_error(exc))
    finish(0 if ok else 1)


if __name__ == "__main__":
    main()
