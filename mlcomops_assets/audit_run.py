"""Run the `audit` job on the project's instance: the compliance matrix and the registered version's
evidence bundle. `make run` calls it after the graph and the batches, whatever their outcome, so a
blocked version is bundled too; the audit sensor does the same for runs launched in the UI.

When nothing the audit reads changed since the last successful audit (no Dagster run since, the same
files under ``data/`` and the MLflow store, the same code, policy, signing key and day), it would rebuild
the same matrix and keep the same bundle: it is skipped and says so (``--force`` runs anyway). That is
the case after a ``make run`` that found the graph up to date and no batch to monitor. On the team
profile the audit always runs (its stores are not files this process can list).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from mlcomops_assets.constants import AUDIT_BUNDLE, AUDIT_JOB, TRIGGER_TAG
from mlcomops_assets.pipeline_run import _code_hash, finish
from mlcomops_assets.policy import PolicyError, report_policy_error
from mlcomops_assets.settings import ProjectPaths, default_home

AUDIT_INPUTS_TAG = "mlcomops/audit_inputs"


def _tree_listing(root: Path, skip: tuple[Path, ...]) -> str:
    """Every file below ``root`` (outside ``skip``) with its size and modification time, as a hash."""
    digest = hashlib.sha256()
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file() and not any(path.is_relative_to(s) for s in skip):
                stat = path.stat()
                digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"


def audit_inputs(paths: ProjectPaths, instance: dg.DagsterInstance) -> dict[str, str]:
    """What the audit reads, each part readable: the newest other Dagster run (the matrix observes the
    instance), the files under data/ but its own outputs, the MLflow store, code, policy, signing key
    and the day (a waiver can expire)."""
    from mlcomops_assets.lib.promotion_record import default_key_file

    newest = next((r for r in instance.get_runs(limit=50) if r.job_name != AUDIT_JOB), None)
    run = "none" if newest is None else f"{newest.run_id}:{newest.status.value}"
    if newest is not None:
        record = instance.get_run_record_by_id(newest.run_id)
        run += f":{record.update_timestamp.isoformat() if record and record.update_timestamp else ''}"
    return {
        "run": run,
        "data": _tree_listing(paths.data_dir, (paths.audit_dir, paths.published_audit_dir)),
        "mlflow": _file_hash(paths.mlflow_dir / "mlflow.db") + ":" + _tree_listing(paths.mlflow_artifact_root, ()),
        "code": _code_hash() + ":" + _file_hash(paths.requirements_file),
        "policy": _file_hash(paths.policy_file) + ":" + _file_hash(paths.params_file),
        "signing_key": _file_hash(default_key_file()),
        "day": datetime.now(UTC).date().isoformat(),
    }


def up_to_date_audit(paths: ProjectPaths, instance: dg.DagsterInstance, digest: str) -> dg.DagsterRun | None:
    """The last successful audit run, if it read the same inputs and its matrix is still there."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=AUDIT_JOB, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)
    if not runs or runs[0].tags.get(AUDIT_INPUTS_TAG) != digest:
        return None
    return runs[0] if (paths.published_audit_dir / "compliance_matrix.json").is_file() else None


def run(trigger: str = "make run", force: bool = False) -> bool:
    """Materialize the audit assets unless nothing they read changed; print where the bundle is and how
    to verify it."""
    from mlcomops_assets.definitions import build_defs
    from mlcomops_assets.profile import load_profile

    paths = ProjectPaths(default_home())
    instance = dg.DagsterInstance.get()
    digest = hashlib.sha256(json.dumps(audit_inputs(paths, instance), sort_keys=True).encode()).hexdigest()[:16]
    # The team profile keeps MLflow and the asset values in shared services the listing above does not
    # see (another user can change an alias there): its audit always runs.
    previous = None if force or load_profile().is_team else up_to_date_audit(paths, instance, digest)
    if previous is not None:
        print(
            f"audit up to date: no run, data, MLflow, code, policy or key change since audit run {previous.run_id} "
            f"(inputs {digest}); the compliance matrix and the bundle are kept. Use --force to run anyway."
        )
        return True
    result = (
        build_defs(paths.home)
        .resolve_job_def(AUDIT_JOB)
        .execute_in_process(
            instance=instance, tags={TRIGGER_TAG: trigger, AUDIT_INPUTS_TAG: digest}, raise_on_error=False
        )
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
    parser.add_argument("--force", action="store_true", help="run even when nothing the audit reads changed")
    args = parser.parse_args()
    try:
        ok = run(args.trigger, args.force)
    except PolicyError as exc:
        finish(report_policy_error(exc))
    finish(0 if ok else 1)


if __name__ == "__main__":
    main()
