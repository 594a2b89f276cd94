"""Fairness: group metrics of the registered model on the holdout, per protected attribute and intersection."""

from typing import Any

import dagster as dg

from mlcomops_assets.check_metadata import analysis_key, fairness_figures, outcome, published_record
from mlcomops_assets.constants import EVIDENCE, FAIRNESS_REPORT, FAIRNESS_WITHIN_THRESHOLDS, HOLDOUT_DATA, TRAINED_MODEL
from mlcomops_assets.lib.gates import FAIRNESS_METRICS, assess, today
from mlcomops_assets.metadata import figure, table
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
    holdout,
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
    from mlcomops_assets.lib import modeling
    from mlcomops_assets.lib.fairness import fairness_report as compute_fairness

    policy = project.policy()
    model = mlflow_session.load_model(model_record["model_uri"], model_record.get("artifact_sha256"))
    y_pred = modeling.decisions(modeling.positive_scores(model, holdout, policy), policy)
    report = compute_fairness(holdout, modeling.labels(holdout, policy), y_pred, policy)
    report["model_uri"] = model_record["model_uri"]
    on = today()
    gate_outcome = assess(policy, on, fairness=report)
    report["violations"] = gate_outcome.blocking_texts(on)
    report["waived"] = gate_outcome.short_waived_texts()
    report["gate"] = {
        "status": gate_outcome.status.value,
        "verdict": gate_outcome.verdict(on, "every fairness gap is within the policy's thresholds"),
    }
    report["decided_on"] = on.isoformat()

    gaps = {}
    for name, result in report["attributes"].items():
        if result.get("evaluable"):
            for metric in FAIRNESS_METRICS:
                gaps[f"{metric}/{analysis_key(name)}"] = float(result[metric])
                interval = result["intervals"][metric]
                gaps[f"{metric}/{analysis_key(name)}/ci"] = f"[{interval['low']:.3f}, {interval['high']:.3f}]"
    mlflow_session.log_evidence(
        model_record["run_id"],
        {f"fairness.{k.replace('/', '.')}": v for k, v in gaps.items() if isinstance(v, float)},
        {"fairness/report.json": report},
    )
    metadata: dict[str, Any] = {
        f"groups/{analysis_key(name)}": table(result["groups"], _GROUP_COLUMNS)
        for name, result in report["attributes"].items()
    }
    metadata.update({k: figure(v) if isinstance(v, float) else v for k, v in gaps.items()})
    metadata["model_uri"] = model_record["model_uri"]
    output = dg.Output(report, metadata=metadata)
    check = dg.AssetCheckResult(
        check_name=FAIRNESS_WITHIN_THRESHOLDS,
        passed=gate_outcome.passed,
        description=report["gate"]["verdict"],
        # Each gap of each analysis next to its limit, so the check's plots show the measured gaps.
        metadata={
            **outcome(gate_outcome.status, report["gate"]["verdict"]),
            **fairness_figures(report["attributes"], gate_outcome, policy),
            "min_group_size": policy.gates.fairness.min_group_size,
            "violations": len(report["violations"]),
            "waived": "; ".join(report["waived"]) or "(none)",
            # Only a passing report is published (below); a failed one keeps the last published version.
            **({"report": published_record(project, FAIRNESS_REPORT)} if gate_outcome.passed else {}),
        },
    )
    # Audit before publish: the IO manager writes the record only when the check passed.
    yield from publish_on_pass("the fairness report", [output], [check])
