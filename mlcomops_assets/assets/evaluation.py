"""Evaluation: holdout performance of the registered model version, gated by the policy's minimums."""

import dagster as dg

from mlcomops_assets.check_metadata import outcome, published_record, with_limit
from mlcomops_assets.constants import (
    EVIDENCE,
    HOLDOUT_DATA,
    MEETS_PERFORMANCE_MINIMUM,
    MODEL_EVALUATION,
    TRAINED_MODEL,
)
from mlcomops_assets.lib.gates import assess, today
from mlcomops_assets.metadata import figure, table
from mlcomops_assets.publish_gate import publish_on_pass
from mlcomops_assets.resources import MlflowSession, ProjectResource

_GATED = ("roc_auc", "accuracy", "balanced_accuracy")


@dg.asset(
    key=MODEL_EVALUATION,
    ins={"model_record": dg.AssetIn(key=TRAINED_MODEL), "holdout": dg.AssetIn(key=HOLDOUT_DATA)},
    group_name=EVIDENCE,
    kinds={"scikitlearn", "mlflow"},
    code_version="3",
    tags={"compliance/personal_data": "none"},
    check_specs=[
        dg.AssetCheckSpec(
            MEETS_PERFORMANCE_MINIMUM,
            asset=MODEL_EVALUATION,
            blocking=True,
            description="Holdout ROC AUC, accuracy and balanced accuracy reach the policy's minimums.",
        )
    ],
)
def model_evaluation(model_record: dict, holdout, project: ProjectResource, mlflow_session: MlflowSession):
    """Holdout metrics of the exact registered model version: accuracy, balanced accuracy, ROC AUC,
    precision, recall, F1, Brier score and a reliability (calibration) table, logged to its MLflow run.
    ROC AUC carries DeLong's confidence interval, accuracy and balanced accuracy bootstrap intervals."""
    from mlcomops_assets.lib import modeling
    from mlcomops_assets.lib.evaluation import performance
    from mlcomops_assets.lib.uncertainty import performance_intervals

    policy = project.policy()
    model = mlflow_session.load_model(model_record["model_uri"], model_record.get("artifact_sha256"))
    scores = modeling.positive_scores(model, holdout, policy)
    report = performance(modeling.labels(holdout, policy), scores, modeling.decisions(scores, policy))
    report["model_uri"] = model_record["model_uri"]
    y = modeling.labels(holdout, policy)
    report["intervals"] = performance_intervals(y, scores, modeling.decisions(scores, policy), policy)
    scalars = {k: v for k, v in report.items() if isinstance(v, float)}
    mlflow_session.log_evidence(
        model_record["run_id"],
        {f"holdout_{k}": v for k, v in scalars.items()},
        {"evaluation/holdout.json": report},
    )
    gate = policy.gates.evaluation
    minimums = {
        "roc_auc": gate.min_roc_auc,
        "accuracy": gate.min_accuracy,
        "balanced_accuracy": gate.min_balanced_accuracy,
    }
    on = today()
    gate_outcome = assess(policy, on, evaluation=report)
    report["gate"] = {
        "status": gate_outcome.status.value,
        "verdict": gate_outcome.verdict(on, "every gated metric reaches its minimum"),
    }
    report["waived"] = gate_outcome.short_waived_texts()
    output = dg.Output(
        report,
        metadata={
            **{k: figure(v) for k, v in scalars.items()},
            "dagster/row_count": report["rows"],
            "model_uri": model_record["model_uri"],
            **{
                f"{k}/ci": f"{v['estimate']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
                for k, v in report["intervals"].items()
            },
            "calibration": table(report["calibration"]),
            "mlflow_run": dg.MetadataValue.url(
                mlflow_session.run_url(model_record["experiment_id"], model_record["run_id"])
            ),
        },
    )
    figures = {}
    for metric in _GATED:  # each gated metric next to its minimum (the `.limit`)
        figures.update(with_limit(metric, float(report[metric]), minimums[metric]))
    leakage = policy.gates.leakage
    if leakage.severity == "block":  # a holdout ROC AUC from this value on blocks as a symptom of leakage
        figures["roc_auc.leakage_limit"] = figure(leakage.max_holdout_auc)
    check = dg.AssetCheckResult(
        check_name=MEETS_PERFORMANCE_MINIMUM,
        passed=gate_outcome.passed,
        description=report["gate"]["verdict"],
        metadata={
            **outcome(gate_outcome.status, report["gate"]["verdict"]),
            **figures,
            "rows": report["rows"],
            "waived": "; ".join(report["waived"]) or "(none)",
            # Only a passing report is published (below); a failed one keeps the last published version.
            **({"report": published_record(project, MODEL_EVALUATION)} if gate_outcome.passed else {}),
        },
    )
    # Audit before publish: the IO manager writes the record only when the check passed.
    yield from publish_on_pass("the evaluation report", [output], [check])
