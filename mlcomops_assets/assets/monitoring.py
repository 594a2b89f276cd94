"""Monitoring: drift, prediction drift, outliers, performance and fairness of every production batch."""

from typing import Any

import dagster as dg
import pandas as pd

from mlcomops_assets.constants import (
    ALARM_OF_CHECK,
    BATCH_FAIRNESS_WITHIN_THRESHOLDS,
    BATCH_MONITORING,
    BATCH_NO_DATA_DRIFT,
    BATCH_NO_PREDICTION_DRIFT,
    BATCH_OUTLIERS_WITHIN_LIMIT,
    BATCH_PREDICTIONS,
    DRIFT_REPORT,
    HOLDOUT_DATA,
    MONITORING,
    NO_DATASET_DRIFT,
    OUTLIER_DETECTOR,
    PRODUCTION_BATCH,
    PRODUCTION_BATCHES,
    PRODUCTION_DATA,
    TRAINING_DATA,
)
from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.batches import labeled_rows
from mlcomops_assets.lib.drift import drift_report as compute_drift
from mlcomops_assets.lib.files import atomic_path, write_atomic
from mlcomops_assets.lib.splitting import BATCH_COLUMN
from mlcomops_assets.metadata import table
from mlcomops_assets.resources import MlflowSession, ProjectResource


@dg.asset(
    key=DRIFT_REPORT,
    ins={"reference": dg.AssetIn(key=TRAINING_DATA), "production": dg.AssetIn(key=PRODUCTION_DATA)},
    group_name=MONITORING,
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
    not_evaluated = None if batches else _no_production_reason(policy)
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


def _no_production_reason(policy) -> str:
    """Why drift_report compared nothing: the data has no production period."""
    if not policy.data.has_time:
        why = "no production period in the data (no time column)"
    else:
        why = f"no production rows after data.training_cutoff={policy.data.training_cutoff}"
    return f"not evaluated: {why}; batches are monitored from the inbox"


@dg.asset(
    key=OUTLIER_DETECTOR,
    ins={"reference": dg.AssetIn(key=TRAINING_DATA)},
    group_name=MONITORING,
    kinds={"scikitlearn"},
    code_version="1",
    tags={"compliance/personal_data": "none", "compliance/control": "post-market-monitoring"},
    # Refit whenever the training reference changes, never on data whose blocking checks failed.
    automation_condition=dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed(),
)
def outlier_detector(reference: pd.DataFrame, project: ProjectResource):
    """An IsolationForest fitted on the training reference (features only), calibrated so that
    ``monitoring.outlier_reference_share`` of reference rows count as outliers. Each batch's outlier share
    is compared with that; the detector is saved under data/monitoring/."""
    import joblib

    from mlcomops_assets.lib.outliers import fit_detector, outlier_share

    policy = project.policy()
    detector = fit_detector(reference, policy)
    path = write_atomic(project.paths.monitoring_dir / "outlier_detector.joblib", lambda p: joblib.dump(detector, p))
    # The share on the rows it was fitted on checks the calibration; scoring every reference row adds nothing.
    fitted_on = reference
    if len(reference) > policy.monitoring.outlier_fit_sample:
        fitted_on = reference.sample(policy.monitoring.outlier_fit_sample, random_state=policy.seed)
    share = outlier_share(detector, fitted_on, policy)
    record = {
        "path": str(path.relative_to(project.paths.home)),
        "reference_rows": len(reference),
        "reference_outlier_share": round(share, 5),
        "contamination": policy.monitoring.outlier_reference_share,
    }
    return dg.Output(
        record,
        metadata={
            "reference_outlier_share": share,
            "reference_rows": len(reference),
            "detector_path": dg.MetadataValue.path(str(path)),
        },
    )


def _alarm_checks() -> list[dg.AssetCheckSpec]:
    descriptions = {
        BATCH_NO_DATA_DRIFT: "Evidently finds no dataset drift between the batch and the training reference "
        "(methods and thresholds pinned by gates.drift).",
        BATCH_NO_PREDICTION_DRIFT: "The champion's score distribution (KS distance) and favourable-decision rate "
        "on the batch stay within monitoring.max_score_ks and max_positive_rate_change of the holdout.",
        BATCH_OUTLIERS_WITHIN_LIMIT: "The share of rows the outlier detector flags stays within "
        "monitoring.max_outlier_share.",
        BATCH_FAIRNESS_WITHIN_THRESHOLDS: "On the batch's labeled rows, the fairness gaps of the decisions stay within "
        "gates.fairness (waivers apply); skipped as passed with a note when the batch has no labels.",
    }
    return [
        dg.AssetCheckSpec(name, asset=BATCH_MONITORING, blocking=False, description=text)
        for name, text in descriptions.items()
    ]


@dg.asset(
    key=BATCH_MONITORING,
    ins={
        "batch": dg.AssetIn(key=PRODUCTION_BATCH),
        "predictions": dg.AssetIn(key=BATCH_PREDICTIONS),
        "reference": dg.AssetIn(key=TRAINING_DATA),
        "holdout": dg.AssetIn(key=HOLDOUT_DATA),
        "detector": dg.AssetIn(key=OUTLIER_DETECTOR),
    },
    partitions_def=PRODUCTION_BATCHES,
    group_name=MONITORING,
    kinds={"evidently", "scikitlearn", "fairlearn"},
    code_version="2",
    tags={"compliance/personal_data": "aggregated", "compliance/control": "post-market-monitoring"},
    check_specs=_alarm_checks(),
)
def batch_monitoring(
    context: dg.AssetExecutionContext,
    batch: pd.DataFrame,
    predictions: pd.DataFrame,
    reference: pd.DataFrame,
    holdout: pd.DataFrame,
    detector: dict,
    project: ProjectResource,
    mlflow_session: MlflowSession,
):
    """Everything watched on one production batch: Evidently data drift against the training reference
    (self-contained HTML kept and linked), prediction drift of the champion version that scored it
    against the same version on the holdout, the outlier share, and, when the batch has labels,
    holdout-style performance and the fairness gates. Every figure is numeric metadata, so the UI plots
    it across batches; the alarms are asset checks, which the retraining sensor reads."""
    import joblib
    import numpy as np

    from mlcomops_assets.lib.evaluation import performance
    from mlcomops_assets.lib.fairness import fairness_report
    from mlcomops_assets.lib.gates import assess, largest_gap, today
    from mlcomops_assets.lib.outliers import outlier_share
    from mlcomops_assets.lib.prediction_drift import prediction_drift
    from mlcomops_assets.lib.promotion_record import ChampionIntegrityError

    policy = project.policy()
    key = context.partition_key
    folder = project.paths.batch_reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    html = folder / f"drift-{key}.html"
    with atomic_path(html) as tmp:
        drift = compute_drift(reference, batch, policy, tmp)

    version = str(predictions["model_version"].iloc[0]) if len(predictions) else None
    model_uri = f"models:/{policy.model.registered_name}/{version}"
    try:  # the version that scored the batch, with its signed record and artifact checked again
        scoring_model = mlflow_session.verified_version(policy.model.registered_name, version).model
    except ChampionIntegrityError as exc:
        raise dg.Failure(description=f"batch {key} is not monitored: {exc}") from None
    reference_scores = modeling.positive_scores(scoring_model, holdout, policy)
    scores = predictions["score"].to_numpy()
    pred_drift = prediction_drift(reference_scores, scores, policy)

    share = outlier_share(joblib.load(project.paths.home / detector["path"]), batch, policy)
    outliers_ok = share <= policy.monitoring.max_outlier_share

    labeled = labeled_rows(batch, policy)
    quality: dict = {"labeled_rows": len(labeled)}
    fairness_ok, fairness_text = True, "no labels in this batch: fairness on operational data not assessable"
    if len(labeled):
        rows = labeled.index.to_numpy()
        y = modeling.labels(labeled, policy)
        decided = predictions["decision"].to_numpy()[rows]
        if len(np.unique(y)) == 2:
            perf = performance(y, scores[rows], decided)
            quality.update({k: perf[k] for k in ("roc_auc", "accuracy", "balanced_accuracy")})
        fairness = fairness_report(labeled, y, decided, policy)
        outcome = assess(policy, today(), fairness=fairness)
        quality["largest_fairness_gap"] = largest_gap(fairness)
        quality["fairness_not_evaluated"] = len(outcome.unmeasured)
        quality["fairness_status"] = outcome.status.value
        # A batch too small to compare groups is said to be not evaluated, by name; it is no fairness
        # alarm (retraining would not make the batch larger), so only measured gaps decide the check.
        fairness_ok = not outcome.measured_blocking
        fairness_text = outcome.verdict(
            today(), "measured fairness gaps on the labeled rows are within the policy's thresholds"
        )
        quality["fairness"] = fairness["attributes"]

    verdicts = {
        BATCH_NO_DATA_DRIFT: (
            not drift["dataset_drift"],
            f"{drift['drifted_columns']} of {len(drift['columns'])} columns drifted (share {drift['drift_share']:.2f}, "
            f"dataset drift at {policy.gates.drift.drift_share:.2f})",
        ),
        BATCH_NO_PREDICTION_DRIFT: (
            not pred_drift["drifted"],
            f"score KS {pred_drift['score_ks']:.3f} (limit {policy.monitoring.max_score_ks}), favourable rate "
            f"{pred_drift['batch_positive_rate']:.3f} vs {pred_drift['reference_positive_rate']:.3f} on the holdout "
            f"(limit {policy.monitoring.max_positive_rate_change})",
        ),
        BATCH_OUTLIERS_WITHIN_LIMIT: (
            outliers_ok,
            f"{share:.1%} of rows are outliers (limit {policy.monitoring.max_outlier_share:.0%}, reference "
            f"{detector['reference_outlier_share']:.1%})",
        ),
        BATCH_FAIRNESS_WITHIN_THRESHOLDS: (fairness_ok, fairness_text),
    }
    alarms = [ALARM_OF_CHECK[name] for name, (ok, _) in verdicts.items() if not ok]
    report = {
        "batch": key,
        "rows": len(batch),
        "model_uri": model_uri,
        "data_drift": {**drift, "html_path": str(html.relative_to(project.paths.home))},
        "prediction_drift": pred_drift,
        "outlier_share": round(share, 5),
        **quality,
        "alarms": alarms,
        "verdicts": {name: {"passed": ok, "description": text} for name, (ok, text) in verdicts.items()},
    }
    metadata = {
        "rows": len(batch),
        "model_uri": model_uri,
        "data_drift_share": float(drift["drift_share"]),
        "drifted_columns": int(drift["drifted_columns"]),
        "score_ks": float(pred_drift["score_ks"]),
        "positive_rate": float(pred_drift["batch_positive_rate"]),
        "positive_rate_change": float(pred_drift["positive_rate_change"]),
        "outlier_share": float(share),
        "labeled_rows": len(labeled),
        "alarms": ", ".join(alarms) or "(none)",
        "drift_columns": table(drift["columns"]),
        "drift_report": dg.MetadataValue.url(project.report_link(html)),
        "drift_report_path": dg.MetadataValue.path(str(html)),
        **{
            k: float(quality[k])
            for k in ("roc_auc", "accuracy", "balanced_accuracy", "largest_fairness_gap")
            if k in quality
        },
    }
    context.log.info(f"batch {key}: alarms {alarms or 'none'}")
    yield dg.Output(report, metadata=metadata)
    for name, (ok, text) in verdicts.items():
        yield dg.AssetCheckResult(
            check_name=name, passed=bool(ok), severity=dg.AssetCheckSeverity.WARN, description=text
        )
