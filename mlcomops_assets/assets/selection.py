"""Model selection: every candidate side by side on the holdout, and the documented choice among them."""

from typing import Any

import dagster as dg

from mlcomops_assets.constants import (
    A_CANDIDATE_PASSES_EVERY_GATE,
    HOLDOUT_DATA,
    MODEL,
    MODEL_CANDIDATES,
    MODEL_SELECTION_REPORT,
    TRAINING_DATA,
)
from mlcomops_assets.lib.gates import today
from mlcomops_assets.lib.publication import publish_markdown
from mlcomops_assets.lib.stale_runs import process_tags
from mlcomops_assets.resources import MlflowSession, ProjectResource


@dg.asset(
    key=MODEL_SELECTION_REPORT,
    ins={
        "candidates": dg.AssetIn(key=MODEL_CANDIDATES),
        "holdout": dg.AssetIn(key=HOLDOUT_DATA),
        "training": dg.AssetIn(key=TRAINING_DATA),
    },
    group_name=MODEL,
    kinds={"scikitlearn", "fairlearn", "mlflow"},
    code_version="1",
    tags={"compliance/personal_data": "aggregated", "compliance/control": "documented-model-choice"},
    check_specs=[
        dg.AssetCheckSpec(
            A_CANDIDATE_PASSES_EVERY_GATE,
            asset=MODEL_SELECTION_REPORT,
            blocking=True,
            description="A deployable candidate passes every evaluation and fairness gate (or holds a valid "
            "waiver); otherwise nothing is registered and the verdict names each failed gate and its numbers.",
        )
    ],
)
def model_selection_report(
    context: dg.AssetExecutionContext,
    candidates: dict,
    holdout,
    training,
    project: ProjectResource,
    mlflow_session: MlflowSession,
):
    """Every candidate on the same holdout: ROC AUC, accuracy and balanced accuracy with confidence
    intervals, calibration (Brier score, expected calibration error), fairness gaps with bootstrap
    intervals per protected attribute and intersection, model size and permutation importance.

    It records which candidate was chosen, by which rule of the policy (``model.selection``), and why a
    less explainable one won when it did. When the candidate the rule prefers fails a fairness gate, a
    fairlearn-mitigated version of it is evaluated too, with its accuracy cost. Waivers from the policy
    that excuse a violation are listed with approver and expiry.
    """
    from mlcomops_assets.lib.candidate_evaluation import selection_markdown, selection_report

    policy = project.policy()
    models = {e["name"]: mlflow_session.load_model(e["model_uri"]) for e in candidates["candidates"]}
    report = selection_report(candidates, models, training, holdout, policy, today())
    results = report["candidates"]

    markdown = selection_markdown(report, policy)
    path = project.paths.selection_dir / "model_selection.md"
    page = publish_markdown(markdown, path, "Model selection report")
    _log_to_mlflow(mlflow_session, policy.model.experiment_name, report, context.run.run_id)

    yield dg.Output(
        report,
        metadata={
            "chosen": report["chosen"] or "(none)",
            "justification": report["justification"],
            "rule": report["rule"],
            "report": dg.MetadataValue.md(markdown),
            "report_path": dg.MetadataValue.path(str(path)),
            "report_link": dg.MetadataValue.url(project.report_link(page)),
            **{
                f"{r['name']}/{k}": float(r["holdout"][k])
                for r in results
                for k in ("roc_auc", "accuracy", "balanced_accuracy")
            },
            **{f"{r['name']}/largest_fairness_gap": float(r["largest_fairness_gap"]) for r in results},
        },
    )
    yield dg.AssetCheckResult(
        check_name=A_CANDIDATE_PASSES_EVERY_GATE,
        passed=report["chosen"] is not None,
        description=report["justification"],
        metadata={
            "chosen": report["chosen"] or "(none)",
            "candidates": len(results),
            "passing": sum(r["gates"]["passed"] and r["deployable"] for r in results),
            "waived": "; ".join(w for r in results for w in r["gates"]["waived"]) or "(none)",
        },
    )


def _log_to_mlflow(mlflow_session: MlflowSession, experiment: str, report: dict[str, Any], dagster_run_id: str) -> None:
    """Holdout and fairness evidence on each candidate's run; the mitigated candidate gets a run of its own."""
    from mlcomops_assets.lib.candidate_evaluation import candidate_metrics

    for r in report["candidates"]:
        if r.get("run_id") is None:
            tags = {
                "dagster.run_id": dagster_run_id,
                "candidate.name": r["name"],
                "mitigation.base": r["mitigation"]["base"],
                "deployable": "false",
                **process_tags(),
            }
            params = {k: v for k, v in r["mitigation"].items() if isinstance(v, str)}
            r["run_id"] = mlflow_session.record_run(experiment, r["name"], tags, params)
        mlflow_session.log_evidence(r["run_id"], candidate_metrics(r), {"selection/report.json": report})
        tags = {
            "selection.chosen": str(r["name"] == report["chosen"]).lower(),
            "selection.gates": "pass" if r["gates"]["passed"] else "fail",
            **{f"waiver.{i}": waived[:5000] for i, waived in enumerate(r["gates"]["waived"])},
        }
        mlflow_session.set_run_tags(r["run_id"], tags)
