"""Fairness: group metrics of the registered model on the holdout, per protected attribute and intersection."""

from typing import Any

import dagster as dg
import pandas as pd

from mlcomops_assets.constants import EVIDENCE, FAIRNESS_REPORT, FAIRNESS_WITHIN_THRESHOLDS, HOLDOUT_DATA, TRAINED_MODEL
from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.fairness import fairness_report as compute_fairness
from mlcomops_assets.lib.gates import FAIRNESS_METRICS, assess, today
from mlcomops_assets.metadata import table
from mlcomops_assets.publish_gate import publish_on_pass
from mlcomops_assets.resources import MlflowSession, ProjectResource

_GROUP_COLUMNS = [
    "group",
    "count",
    "too_small",
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "accuracy",
]


def _metric_key(name: str) -> str:
    return name.replace(" x ", "_x_").replace(" ", "_")


def _extremes(report: dict) -> dict[str, float]:
    """The measured figures next to their limits, so the check's plot over time shows the gaps themselves."""
    measured = [r for r in report["attributes"].values() if r.get("evaluable")]
    if not measured:
        return {}
    return {
        "largest_demographic_parity_difference": max(float(r["demographic_parity_difference"]) for r in measured),
        "largest_equalized_odds_difference": max(float(r["equalized_odds_difference"]) for r in measured),
        "smallest_demographic_parity_ratio": min(float(r["demographic_parity_ratio"]) for r in measured),
    }


@dg.asset(
    key=FAIRNESS_REPORT,
    ins={"model_record": dg.AssetIn(key=TRAINED_MODEL), "holdout": dg.AssetIn(key=HOLDOUT_DATA)},
    group_name=EVIDENCE,
    kinds={"numpy", "mlflow"},
    code_version="3",
    tags={"compliance/personal_data": "aggregated", "compliance/control": "non-discrimination"},
    check_specs=[
        dg.AssetCheckSpec(
            FAIRNESS_WITHIN_THRESHOLDS,
            asset=FAIRNESS_REPORT,
            blocking=True,
            description="Demographic parity difference, equalized odds difference and selection-rate ratio stay "
            "within the policy's limits for every protected attribute and intersection (groups below the "
            "minimum size excluded), or a waiver in force covers the violation.",
        )
    ],
)
def fairness_report(
    context: dg.AssetExecutionContext,
    model_record: dict,
    holdout: pd.DataFrame,
    project: ProjectResource,
    mlflow_session: MlflowSession,
):
    """Group fairness of the registered model on the holdout: selection rate, TPR, FPR, accuracy and group
    counts per protected attribute and configured intersection, with demographic parity and equalized odds
    differences and the ratio of selection rates, each with a bootstrap confidence interval. Computed with
    fairlearn's definitions from (group, label, decision) count tables, held equal to fairlearn's
    MetricFrame in a test.
    Groups below the policy's minimum size are flagged, not pooled. A violation passes only under a
    waiver of the policy that is in force today; the waiver is listed in the check's result."""
    policy = project.policy()
    model = mlflow_session.load_model(model_record["model_uri"])
    y_pred = modeling.decisions(modeling.positive_scores(model, holdout, policy), policy)
    report = compute_fairness(holdout, modeling.labels(holdout, policy), y_pred, policy)
    report["model_uri"] = model_record["model_uri"]
    on = today()
    outcome = assess(policy, on, fairness=report)
    report["violations"] = outcome.blocking_texts(on)
    report["waived"] = outcome.short_waived_texts()
    report["gate"] = {
        "status": outcome.status.value,
        "verdict": outcome.verdict(on, "every fairness gap is within the policy's thresholds"),
    }
    report["decided_on"] = on.isoformat()

    gaps = {}
    for name, result in report["attributes"].items():
        if result.get("evaluable"):
            for metric in FAIRNESS_METRICS:
                gaps[f"{metric}/{_metric_key(name)}"] = float(result[metric])
                interval = result["intervals"][metric]
                gaps[f"{metric}/{_metric_key(name)}/ci"] = f"[{interval['low']:.3f}, {interval['high']:.3f}]"
    mlflow_session.log_evidence(
        model_record["run_id"],
        {f"fairness.{k.replace('/', '.')}": v for k, v in gaps.items() if isinstance(v, float)},
        {"fairness/report.json": report},
    )
    metadata: dict[str, Any] = {
        f"groups/{_metric_key(name)}": table(result["groups"], _GROUP_COLUMNS)
        for name, result in report["attributes"].items()
    }
    metadata.update(gaps)
    metadata["model_uri"] = model_record["model_uri"]
    gate = policy.gates.fairness
    output = dg.Output(report, metadata=metadata)
    check = dg.AssetCheckResult(
        check_name=FAIRNESS_WITHIN_THRESHOLDS,
        passed=outcome.passed,
        description=report["gate"]["verdict"],
        metadata={
            "max_demographic_parity_difference": gate.max_demographic_parity_difference,
            "max_equalized_odds_difference": gate.max_equalized_odds_difference,
            "min_demographic_parity_ratio": gate.min_demographic_parity_ratio,
            "min_group_size": gate.min_group_size,
            **_extremes(report),
            "status": outcome.status.value,
            "violations": len(report["violations"]),
            "waived": "; ".join(report["waived"]) or "(none)",
        },
    )
    # Audit before publish: the IO manager writes the record only when the check passed.
    yield from publish_on_pass("the fairness report", [output], [check])
