"""Drift at training time: the training reference against each production period of the data."""

from typing import Any

import dagster as dg
import pandas as pd

from mlcomops_assets.constants import DRIFT_REPORT, EVIDENCE, NO_DATASET_DRIFT, PRODUCTION_DATA, TRAINING_DATA
from mlcomops_assets.lib.drift import drift_report as compute_drift
from mlcomops_assets.lib.drift import no_production_reason
from mlcomops_assets.lib.files import atomic_path
from mlcomops_assets.lib.splitting import BATCH_COLUMN
from mlcomops_assets.metadata import table
from mlcomops_assets.resources import ProjectResource


@dg.asset(
    key=DRIFT_REPORT,
    ins={"reference": dg.AssetIn(key=TRAINING_DATA), "production": dg.AssetIn(key=PRODUCTION_DATA)},
    group_name=EVIDENCE,
    kinds={"evidently", "html"},
    code_version="1",
    tags={"compliance/personal_data": "aggregated", "compliance/control": "post-market-monitoring"},
    check_specs=[
        dg.AssetCheckSpec(
            NO_DATASET_DRIFT,
            asset=DRIFT_REPORT,
            blocking=False,
            description="No production batch shows dataset drift (share of drifted columns below the policy's).",
        )
    ],
)
def drift_report(
    context: dg.AssetExecutionContext, reference: pd.DataFrame, production: pd.DataFrame, project: ProjectResource
):
    """Evidently data drift between the training data (reference) and each production period of the
    data, with the statistical methods pinned by the policy. One self-contained HTML report per period,
    a per-column table and a dataset-drift verdict per period. Without production rows (no time column,
    or nothing after the cutoff) drift is reported as not evaluated, never as absent: inbox batches are
    then compared with the reference one by one in batch_monitoring."""
    policy = project.policy()
    folder = project.paths.reports_dir / "drift"
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for batch, current in production.groupby(BATCH_COLUMN, sort=True):
        target = folder / f"batch-{batch}.html"
        with atomic_path(target) as tmp:  # Evidently writes by path only
            result = compute_drift(reference, current, policy, tmp)
        result["html_path"] = str(target.relative_to(project.paths.home))
        batches[str(batch)] = result
        context.log.info(
            f"batch {batch}: {result['drifted_columns']} drifted column(s), dataset drift={result['dataset_drift']}"
        )

    current_files = {folder / f"batch-{b}.html" for b in batches}
    for stale in folder.glob("batch-*.html"):
        if stale not in current_files:
            stale.unlink()  # a batch that no longer exists must not look like current evidence

    summary = [
        {
            "batch": b,
            "rows": r["current_rows"],
            "drifted_columns": r["drifted_columns"],
            "drift_share": r["drift_share"],
            "dataset_drift": r["dataset_drift"],
            "report": r["html_path"],
        }
        for b, r in batches.items()
    ]
    latest = max(batches) if batches else None
    not_evaluated = None if batches else no_production_reason(policy)
    metadata: dict[str, Any] = {
        "batches": table(summary) if summary else not_evaluated,
        "reference_rows": len(reference),
        "num_method": policy.gates.drift.num_method,
        "cat_method": policy.gates.drift.cat_method,
    }
    if latest is not None:
        metadata["latest_batch"] = latest
        metadata["latest_batch_columns"] = table(batches[latest]["columns"])
        latest_html = project.paths.home / batches[latest]["html_path"]
        metadata["latest_batch_report"] = dg.MetadataValue.url(project.report_link(latest_html))
        metadata["latest_batch_report_path"] = dg.MetadataValue.path(str(latest_html))
        metadata["dataset_drift"] = bool(batches[latest]["dataset_drift"])
    metadata["evaluated"] = not_evaluated is None
    drifted = [b for b, r in batches.items() if r["dataset_drift"]]
    record = {"batches": batches, "latest_batch": latest, "evaluated": not_evaluated is None}
    if not_evaluated:
        record["not_evaluated"] = not_evaluated
    yield dg.Output(record, metadata=metadata)
    # Nothing to compare is no drift alarm (the check is a warning about the data, and no period exists
    # to warn about), but the description must not read as "no drift": it says what was not evaluated.
    yield dg.AssetCheckResult(
        check_name=NO_DATASET_DRIFT,
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            not_evaluated
            or (
                f"dataset drift in batch(es) {', '.join(drifted)}"
                if drifted
                else f"no dataset drift in {len(batches)} batch(es)"
            )
        ),
        metadata={"batches_checked": len(batches), "batches_drifted": len(drifted), "evaluated": not not_evaluated},
    )
