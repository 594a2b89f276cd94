"""Target leakage: checks before training (on ``training_data``) and before registration (on the selection report).

A feature recorded after the outcome makes a model look excellent on historical data and useless, or
harmful, at decision time. ``no_target_leakage`` stops training when one feature alone predicts the
label implausibly well; ``model_does_not_leak`` stops registration when the chosen model's holdout ROC
AUC is implausibly high or rests on one feature. Severity follows ``gates.leakage.severity``: ERROR
(blocking) for "block", WARN for "warn". Nothing unmeasured passes: a figure that could not be computed
fails the check as "not evaluated". Results carry column names, figures and limits, never a cell value.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from mlcomops_assets.constants import (
    HOLDOUT_DATA,
    MODEL_DOES_NOT_LEAK,
    MODEL_SELECTION_REPORT,
    NO_CONSTANT_FEATURES,
    NO_TARGET_LEAKAGE,
    TRAINING_DATA,
)
from mlcomops_assets.metadata import table
from mlcomops_assets.policy import LeakageGate, Policy
from mlcomops_assets.resources import MlflowSession, ProjectResource

if TYPE_CHECKING:
    import pandas as pd

    from mlcomops_assets.lib.leakage import Finding


def _severity(gate: LeakageGate) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if gate.severity == "block" else dg.AssetCheckSeverity.WARN


def _verdict(
    context: dg.AssetCheckExecutionContext,
    findings: "list[Finding]",
    passed_text: str,
    severity: dg.AssetCheckSeverity,
    metadata: dict[str, Any],
) -> dg.AssetCheckResult:
    for finding in findings:
        (context.log.error if severity == dg.AssetCheckSeverity.ERROR else context.log.warning)(finding.message)
    return dg.AssetCheckResult(
        passed=not findings,
        severity=severity,
        description="; ".join(f.message for f in findings) or passed_text,
        metadata={
            **metadata,
            "flagged_columns": ", ".join(dict.fromkeys(f.column for f in findings)) or "(none)",
            "findings": len(findings),
        },
    )


def _not_evaluated(
    context: dg.AssetCheckExecutionContext,
    reason: str,
    severity: dg.AssetCheckSeverity,
    metadata: dict[str, Any],
) -> dg.AssetCheckResult:
    message = f"not evaluated: {reason}; a figure that cannot be computed never passes"
    (context.log.error if severity == dg.AssetCheckSeverity.ERROR else context.log.warning)(message)
    return dg.AssetCheckResult(
        passed=False, severity=severity, description=message, metadata={**metadata, "evaluated": False}
    )


@dg.asset_check(asset=TRAINING_DATA, name=NO_TARGET_LEAKAGE, blocking=True)
def no_target_leakage(
    context: dg.AssetCheckExecutionContext, training_data, project: ProjectResource
) -> dg.AssetCheckResult:
    """No feature alone predicts the label implausibly well (target leakage), checked before any model is
    trained. Each feature is scored by the cross-validated ROC AUC of a one-feature model (a shallow tree
    on its values, categories target-encoded inside the folds, plus whether it is missing, so a column
    that is only filled in after the outcome is caught too) on a stratified, seeded sample of at most
    gates.leakage.sample_rows training rows. Above gates.leakage.max_single_feature_auc the column is
    named with its figure: declare it role: ignored in governance.yaml, or raise the limit. With
    gates.leakage.severity "block" a finding stops training (ERROR); with "warn" it is reported only."""
    from mlcomops_assets.lib.leakage import FOLDS, LeakageNotEvaluated, auc_findings, single_feature_aucs

    policy = project.policy()
    gate = policy.gates.leakage
    severity = _severity(gate)
    limits: dict[str, Any] = {
        "max_single_feature_auc": gate.max_single_feature_auc,
        "severity_policy": gate.severity,
        "rows_used": min(len(training_data), gate.sample_rows),
        "folds": FOLDS,
    }
    try:
        aucs = single_feature_aucs(training_data, policy.data, gate, policy.seed)
    except LeakageNotEvaluated as exc:
        return _not_evaluated(context, str(exc), severity, limits)
    findings = auc_findings(aucs, policy.data, gate)
    flagged = {f.column for f in findings}
    records = [
        {"column": c, "cv_roc_auc": a, "limit": gate.max_single_feature_auc, "flagged": c in flagged}
        for c, a in sorted(aucs.items(), key=lambda item: -item[1])
    ]
    strongest = records[0]
    return _verdict(
        context,
        findings,
        f"no feature alone predicts '{policy.data.target}' above cross-validated ROC AUC "
        f"{gate.max_single_feature_auc}: the strongest is '{strongest['column']}' at {strongest['cv_roc_auc']:.3f} "
        f"({len(records)} features)",
        severity,
        {
            **limits,
            "single_feature_auc": table(records),
            "single_feature_auc_by_column": dg.MetadataValue.json(aucs),
            "highest_single_feature_auc": float(strongest["cv_roc_auc"]),
        },
    )


@dg.asset_check(asset=TRAINING_DATA, name=NO_CONSTANT_FEATURES, blocking=False)
def no_constant_features(
    context: dg.AssetCheckExecutionContext, training_data, project: ProjectResource
) -> dg.AssetCheckResult:
    """Warns about constant and near-constant features in the training data: the share of rows holding a
    feature's most frequent value (a missing value counts as a value) is 1 (constant: it carries no
    information) or above gates.leakage.max_dominant_value_share (near-constant: the few other rows may
    be noise or a leak). Only the share is reported, never the value. Never blocks."""
    from mlcomops_assets.lib.leakage import LeakageNotEvaluated, constant_findings, dominant_value_shares

    policy = project.policy()
    gate = policy.gates.leakage
    severity = dg.AssetCheckSeverity.WARN
    limits: dict[str, Any] = {"max_dominant_value_share": gate.max_dominant_value_share, "rows": len(training_data)}
    try:
        shares = dominant_value_shares(training_data, policy.data.feature_columns)
    except (LeakageNotEvaluated, KeyError) as exc:
        return _not_evaluated(context, str(exc), severity, limits)
    findings = constant_findings(shares, policy.data, gate)
    flagged = {f.column for f in findings}
    records = [
        {"column": c, "dominant_value_share": s, "limit": gate.max_dominant_value_share, "flagged": c in flagged}
        for c, s in sorted(shares.items(), key=lambda item: -item[1])
    ]
    return _verdict(
        context,
        findings,
        f"no feature is constant or near-constant: the most frequent value of any feature covers at most "
        f"{records[0]['dominant_value_share']:.2%} of the rows ('{records[0]['column']}'), limit "
        f"{gate.max_dominant_value_share:.2%}",
        severity,
        {
            **limits,
            "dominant_value_share": table(records),
            "highest_dominant_value_share": float(records[0]["dominant_value_share"]),
        },
    )


def _importances(
    candidate: dict, metric: str, holdout: "pd.DataFrame", policy: Policy, mlflow_session: MlflowSession
) -> tuple[dict[str, float], str]:
    """The candidate's holdout ROC AUC drop per permuted feature: the selection report's own figures when
    its metric is ROC AUC, else measured here on the candidate's logged model (same rows, seed, repeats)."""
    if metric == "roc_auc" and candidate.get("importance"):
        return {i["column"]: float(i["importance"]) for i in candidate["importance"]}, "model_selection_report"
    from mlcomops_assets.lib import modeling
    from mlcomops_assets.lib.leakage import LeakageNotEvaluated, auc_drop_importance

    if not candidate.get("model_uri"):
        raise LeakageNotEvaluated(f"candidate '{candidate['name']}' has no logged model to measure")
    model = mlflow_session.load_model(candidate["model_uri"])
    found = auc_drop_importance(
        model,
        modeling.features(holdout, policy),
        modeling.labels(holdout, policy),
        policy.seed,
        policy.explainability.sample_size,
    )
    return found, f"measured by this check (the report's importance is a {metric} drop)"


@dg.asset_check(
    asset=MODEL_SELECTION_REPORT,
    name=MODEL_DOES_NOT_LEAK,
    blocking=True,
    additional_ins={"holdout": dg.AssetIn(key=HOLDOUT_DATA)},
)
def model_does_not_leak(
    context: dg.AssetCheckExecutionContext,
    model_selection_report: dict,
    holdout,
    project: ProjectResource,
    mlflow_session: MlflowSession,
) -> dg.AssetCheckResult:
    """The chosen model does not look like it learned a leak, checked before it is registered: its holdout
    ROC AUC stays below gates.leakage.max_holdout_auc, and permuting any one feature drops that ROC AUC by
    at most gates.leakage.max_feature_importance (the selection report's permutation importance; when no
    candidate was chosen, every deployable candidate is judged). A finding names the column and its
    figure: declare the column role: ignored in governance.yaml, or raise the limit. With
    gates.leakage.severity "block" it stops registration and promotion (ERROR); with "warn" it is
    reported only."""
    from mlcomops_assets.lib.leakage import LeakageNotEvaluated, model_findings

    policy = project.policy()
    gate = policy.gates.leakage
    severity = _severity(gate)
    report = model_selection_report
    limits: dict[str, Any] = {
        "max_holdout_auc": gate.max_holdout_auc,
        "max_feature_importance": gate.max_feature_importance,
        "severity_policy": gate.severity,
    }
    chosen = report.get("chosen")
    candidates = report.get("candidates", [])
    if chosen:
        judged = [r for r in candidates if r["name"] == chosen]
    else:
        judged = [r for r in candidates if r.get("deployable") and r.get("model_uri")]
    if not judged:
        return _not_evaluated(context, "the selection report names no candidate to judge", severity, limits)
    findings: list[Finding] = []
    records: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    sources = set()
    try:
        for candidate in judged:
            importances, source = _importances(candidate, report.get("metric", ""), holdout, policy, mlflow_session)
            sources.add(source)
            auc = candidate.get("holdout", {}).get("roc_auc")
            found = model_findings(candidate["name"], auc, importances, policy.data, gate)
            findings += found
            flagged = {f.column for f in found}
            records += [
                {
                    "candidate": candidate["name"],
                    "column": column,
                    "roc_auc_drop": drop,
                    "limit": gate.max_feature_importance,
                    "flagged": column in flagged,
                }
                for column, drop in sorted(importances.items(), key=lambda item: -item[1])
            ]
            top = max(importances, key=importances.__getitem__)
            summary[candidate["name"]] = (float(auc), top, importances[top])
    except LeakageNotEvaluated as exc:
        return _not_evaluated(context, str(exc), severity, limits)
    passed_text = "; ".join(
        f"candidate '{name}': holdout ROC AUC {auc:.3f} < {gate.max_holdout_auc}, largest permutation importance "
        f"(ROC AUC drop) {drop:.3f} ('{top}') <= {gate.max_feature_importance}"
        for name, (auc, top, drop) in summary.items()
    )
    return _verdict(
        context,
        findings,
        passed_text,
        severity,
        {
            **limits,
            "judged": ", ".join(summary),
            **{f"{name}/holdout_roc_auc": auc for name, (auc, _, _) in summary.items()},
            **{f"{name}/largest_importance": drop for name, (_, _, drop) in summary.items()},
            "permutation_importance": table(records),
            "importance_source": ", ".join(sorted(sources)),
        },
    )
