"""Monitoring: the outlier detector, and drift, prediction drift, outliers, performance and fairness of
every production batch."""

import dagster as dg

from mlcomops_assets.check_metadata import fairness_figures, outcome, with_limit
from mlcomops_assets.constants import (
    ALARM_OF_CHECK,
    BATCH_FAIRNESS_WITHIN_THRESHOLDS,
    BATCH_MONITORING,
    BATCH_NO_DATA_DRIFT,
    BATCH_NO_PREDICTION_DRIFT,
    BATCH_OUTLIERS_WITHIN_LIMIT,
    BATCH_PREDICTIONS,
    HOLDOUT_DATA,
    OUTLIER_DETECTOR,
    PRODUCTION,
    PRODUCTION_BATCH,
    PRODUCTION_BATCHES,
    TRAINING_DATA,
)
from mlcomops_assets.lib.batches import labeled_rows
from mlcomops_assets.lib.files import atomic_path, write_atomic
from mlcomops_assets.lib.gates import DRIFT_SHARE, OUTLIER_SHARE, POSITIVE_RATE_CHANGE, SCORE_KS
from mlcomops_assets.metadata import figure, table
from mlcomops_assets.resources import MlflowSession, ProjectResource


@dg.asset(
    key=OUTLIER_DETECTOR,
    ins={"reference": dg.AssetIn(key=TRAINING_DATA)},
    group_name=PRODUCTION,
    kinds={"scikitlearn"},
    code_version="1",
    tags={"compliance/personal_data": "none", "compliance/control": "post-market-monitoring"},
    # Refit whenever the training reference changes, never on data whose blocking checks failed.
    automation_condition=dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed(),
)
def outlier_detector(reference, project: ProjectResource):
    """An IsolationForest fitted on the training reference (features only), calibrated so that
    ``monitoring.outlier_reference_share`` of reference rows count as outliers. Each batch's outlier share
    is compared with that; the detector is saved under data/monitoring/."""
    import joblib

    from mlcomops_assets.lib.outliers import fit_detector, fit_sample, outlier_share

    policy = project.policy()
    detector = fit_detector(reference, policy)
    path = write_atomic(project.paths.monitoring_dir / "outlier_detector.joblib", lambda p: joblib.dump(detector, p))
    # The share on the rows it was fitted on checks the calibration; scoring every reference row adds nothing.
    share = outlier_share(detector, fit_sample(reference, policy), policy)
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
    group_name=PRODUCTION,
    kinds={"evidently", "scikitlearn", "fairlearn"},
    # 3: the verdicts come from lib/gates.py and name each figure with its limit.
    code_version="3",
    tags={"compliance/personal_data": "aggregated", "compliance/control": "post-market-monitoring"},
    check_specs=_alarm_checks(),
)
def batch_monitoring(
    context: dg.AssetExecutionContext,
    batch,
    predictions,
    reference,
    holdout,
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

    from mlcomops_assets.lib import modeling
    from mlcomops_assets.lib.drift import drift_report as compute_drift
    from mlcomops_assets.lib.gates import batch_verdicts, today
    from mlcomops_assets.lib.monitoring import labeled_quality
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

    labeled = labeled_rows(batch, policy)
    on = today()
    quality, fairness = labeled_quality(labeled, scores, predictions["decision"].to_numpy(), policy, on)
    by_alarm = batch_verdicts(
        policy,
        on,
        drift=drift,
        prediction_drift=pred_drift,
        outlier_share=share,
        reference_outlier_share=detector["reference_outlier_share"],
        fairness=fairness,
    )
    verdicts = {check: by_alarm[alarm] for check, alarm in ALARM_OF_CHECK.items()}
    alarms = [ALARM_OF_CHECK[name] for name, verdict in verdicts.items() if not verdict.passed]
    report = {
        "batch": key,
        "rows": len(batch),
        "model_uri": model_uri,
        "data_drift": {**drift, "html_path": str(html.relative_to(project.paths.home))},
        "prediction_drift": pred_drift,
        "outlier_share": round(share, 5),
        **quality,
        "alarms": alarms,
        "verdicts": {name: {"passed": v.passed, "description": v.text} for name, v in verdicts.items()},
    }
    metadata = {
        "rows": len(batch),
        "model_uri": model_uri,
        "data_drift_share": figure(drift["drift_share"]),
        "drifted_columns": int(drift["drifted_columns"]),
        "score_ks": figure(pred_drift["score_ks"]),
        "positive_rate": figure(pred_drift["batch_positive_rate"]),
        "positive_rate_change": figure(pred_drift["positive_rate_change"]),
        "outlier_share": figure(share),
        "labeled_rows": len(labeled),
        "alarms": ", ".join(alarms) or "(none)",
        "drift_columns": table(drift["columns"]),
        "drift_report": dg.MetadataValue.url(project.report_link(html)),
        "drift_report_path": dg.MetadataValue.path(str(html)),
        **{
            k: figure(quality[k])
            for k in ("roc_auc", "accuracy", "balanced_accuracy", "largest_fairness_gap")
            if k in quality
        },
    }
    context.log.info(f"batch {key}: alarms {alarms or 'none'}")
    yield dg.Output(report, metadata=metadata)
    figures = {
        BATCH_NO_DATA_DRIFT: {
            **with_limit(DRIFT_SHARE, drift["drift_share"], policy.gates.drift.drift_share),
            "drifted_columns": int(drift["drifted_columns"]),
            "watched_columns": len(drift["columns"]),
            "drift_report": dg.MetadataValue.url(project.report_link(html)),
        },
        BATCH_NO_PREDICTION_DRIFT: {
            **with_limit(SCORE_KS, pred_drift["score_ks"], policy.monitoring.max_score_ks),
            **with_limit(
                POSITIVE_RATE_CHANGE, pred_drift["positive_rate_change"], policy.monitoring.max_positive_rate_change
            ),
            "positive_rate": figure(pred_drift["batch_positive_rate"]),
            "reference_positive_rate": figure(pred_drift["reference_positive_rate"]),
            "model_uri": model_uri,
        },
        BATCH_OUTLIERS_WITHIN_LIMIT: {
            **with_limit(OUTLIER_SHARE, share, policy.monitoring.max_outlier_share),
            "reference_outlier_share": figure(detector["reference_outlier_share"]),
        },
        BATCH_FAIRNESS_WITHIN_THRESHOLDS: {
            "labeled_rows": len(labeled),
            **(fairness_figures(quality["fairness"], fairness, policy) if fairness is not None else {}),
        },
    }
    for name, verdict in verdicts.items():
        yield dg.AssetCheckResult(
            check_name=name,
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=verdict.text,
            # The batch, each figure next to its limit, the status: plotted across batches in the UI.
            metadata={**outcome(verdict.status, verdict.text, batch=key), **figures[name], "rows": len(batch)},
        )
