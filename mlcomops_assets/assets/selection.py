"""Model selection: every candidate side by side on the holdout, and the documented choice among them."""

from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from mlcomops_assets.constants import (
    A_CANDIDATE_PASSES_EVERY_GATE,
    HOLDOUT_DATA,
    MODEL_CANDIDATES,
    MODEL_SELECTION_REPORT,
    SELECTION,
    TRAINING_DATA,
)
from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.evaluation import performance
from mlcomops_assets.lib.fairness import fairness_report
from mlcomops_assets.lib.gates import GateOutcome, assess, largest_gap, today
from mlcomops_assets.lib.publication import publish_markdown
from mlcomops_assets.lib.selection import preferred
from mlcomops_assets.lib.stale_runs import process_tags
from mlcomops_assets.lib.uncertainty import auc_difference, performance_intervals
from mlcomops_assets.policy import Policy
from mlcomops_assets.resources import MlflowSession, ProjectResource

_HOLDOUT_KEYS = (
    "roc_auc",
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "brier_score",
    "expected_calibration_error",
    "predicted_positive_rate",
)
_IMPORTANCE_REPEATS = 5


def _evaluate(
    name: str,
    y: np.ndarray,
    scores: np.ndarray,
    decisions: np.ndarray,
    holdout: pd.DataFrame,
    policy: Policy,
    on,
) -> tuple[dict[str, Any], GateOutcome]:
    """Holdout performance with intervals, calibration, fairness with intervals, and the gate outcome."""
    perf = performance(y, scores, decisions)
    intervals = performance_intervals(y, scores, decisions, policy)
    fairness = fairness_report(holdout, y, decisions, policy)
    outcome = assess(policy, on, evaluation=perf, fairness=fairness)
    result = {
        "name": name,
        "holdout": {k: round(float(perf[k]), 5) for k in _HOLDOUT_KEYS},
        "intervals": intervals,
        "calibration": perf["calibration"],
        "fairness": fairness["attributes"],
        "largest_fairness_gap": round(largest_gap(fairness), 5),
        "gates": {
            "passed": outcome.passed,
            "blocking": outcome.failure_texts(on),
            "waived": outcome.short_waived_texts(),
            "status": outcome.status.value,
        },
    }
    return result, outcome


def _importance(model, holdout: pd.DataFrame, y: np.ndarray, policy: Policy) -> list[dict[str, Any]]:
    """Permutation importance per input column (model-agnostic, so candidates compare on one scale),
    on at most ``explainability.sample_size`` holdout rows."""
    from sklearn.inspection import permutation_importance

    x = modeling.features(holdout, policy)
    if len(x) > policy.explainability.sample_size:
        rows = np.random.default_rng(policy.seed).choice(len(x), policy.explainability.sample_size, replace=False)
        x, y = x.iloc[np.sort(rows)], y[np.sort(rows)]
    found = permutation_importance(
        model,
        x,
        y,
        scoring=policy.model.selection.metric,
        n_repeats=_IMPORTANCE_REPEATS,
        random_state=policy.seed,
        n_jobs=1,
    )
    ranked = sorted(zip(x.columns, found.importances_mean, strict=True), key=lambda t: -t[1])
    return [{"column": c, "importance": round(float(v), 5)} for c, v in ranked]


def _markdown(report: dict[str, Any], policy: Policy) -> str:
    metric = report["metric"]

    def ci(r: dict, key: str) -> str:
        i = r["intervals"].get(key)
        return f"{r['holdout'][key]:.3f} [{i['low']:.3f}, {i['high']:.3f}]" if i else f"{r['holdout'][key]:.3f}"

    lines = [
        f"# Model selection: {policy.model.registered_name}",
        "",
        f"Decided on {report['decided_on']} for raw data `{report['raw_data_md5']}` and policy "
        f"`{report['policy_fingerprint']}`. Intervals: {policy.model.selection.confidence_level:.0%} "
        "(ROC AUC: DeLong; accuracy and fairness gaps: bootstrap).",
        "",
        "| candidate | interpretable | deployable | parameters | ROC AUC | accuracy | balanced accuracy | Brier | ECE "
        "| largest fairness gap | gates |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["candidates"]:
        gates = "pass" if r["gates"]["passed"] else "FAIL: " + "; ".join(r["gates"]["blocking"])
        if r["gates"]["waived"]:
            gates += " (waived: " + "; ".join(r["gates"]["waived"]) + ")"
        lines.append(
            f"| {r['name']} | {r['interpretable']} | {r['deployable']} | {r['size']['parameters']} "
            f"| {ci(r, 'roc_auc')} "
            f"| {ci(r, 'accuracy')} | {ci(r, 'balanced_accuracy')} | {r['holdout']['brier_score']:.4f} "
            f"| {r['holdout']['expected_calibration_error']:.4f} | {r['largest_fairness_gap']:.3f} | {gates} |"
        )
    lines += ["", f"**Chosen:** {report['chosen'] or 'none'}", "", f"**Rule:** {report['rule']}", ""]
    lines += [f"**Justification:** {report['justification']}", ""]
    for r in report["candidates"]:
        if r.get("importance"):
            top = ", ".join(f"{i['column']} {i['importance']:.3f}" for i in r["importance"][:5])
            lines.append(f"- {r['name']}: permutation importance ({metric} drop) {top}")
        if r.get("mitigation"):
            m = r["mitigation"]
            lines.append(
                f"- {r['name']}: fairlearn {m['method']} ({m['constraint']}) on {m['attribute']} of {m['base']}; "
                f"accuracy cost {m['accuracy_cost']:+.3f}, balanced accuracy cost {m['balanced_accuracy_cost']:+.3f}; "
                f"not deployable: {r['not_deployable_because']}"
            )
    return "\n".join(lines) + "\n"


@dg.asset(
    key=MODEL_SELECTION_REPORT,
    ins={
        "candidates": dg.AssetIn(key=MODEL_CANDIDATES),
        "holdout": dg.AssetIn(key=HOLDOUT_DATA),
        "training": dg.AssetIn(key=TRAINING_DATA),
    },
    group_name=SELECTION,
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
    holdout: pd.DataFrame,
    training: pd.DataFrame,
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
    from mlcomops_assets.lib.mitigation import threshold_optimized

    policy = project.policy()
    on = today()
    level = policy.model.selection.confidence_level
    y = modeling.labels(holdout, policy)
    results: list[dict[str, Any]] = []
    outcomes: dict[str, GateOutcome] = {}
    models, scores_by = {}, {}
    for entry in candidates["candidates"]:
        model = mlflow_session.load_model(entry["model_uri"])
        scores = modeling.positive_scores(model, holdout, policy)
        result, outcome = _evaluate(entry["name"], y, scores, modeling.decisions(scores, policy), holdout, policy, on)
        result.update(
            interpretable=entry["interpretable"],
            deployable=True,
            size=entry["size"],
            model_uri=entry["model_uri"],
            run_id=entry["run_id"],
            params={**entry["fixed_params"], **entry["best_params"]},
            importance=_importance(model, holdout, y, policy),
        )
        results.append(result)
        outcomes[entry["name"]] = outcome
        models[entry["name"]], scores_by[entry["name"]] = model, scores

    interpretable = preferred([r for r in results if r["interpretable"]], policy, gated=False).chosen
    if policy.model.selection.metric == "roc_auc" and interpretable:
        for r in results:
            if not r["interpretable"]:
                diff = auc_difference(y, scores_by[r["name"]], scores_by[interpretable], level)
                r["difference_to_interpretable"] = {"versus": interpretable, **diff.as_dict()}

    # Mitigate the candidate the rule prefers on performance alone, if a fairness gate stops it.
    favourite = preferred(results, policy, gated=False).chosen
    unfair = [v for v in outcomes[favourite].blocking if v.gate == "fairness"] if favourite else []
    if unfair:
        attribute = unfair[0].attribute
        base = next(r for r in results if r["name"] == favourite)
        mitigated = threshold_optimized(models[favourite], training, holdout, attribute, policy)
        name = f"{favourite}+{policy.model.mitigation.method}"
        result, _ = _evaluate(name, y, mitigated.scores, mitigated.decisions, holdout, policy, on)
        result.update(
            interpretable=base["interpretable"],
            deployable=False,
            not_deployable_because=f"it needs '{attribute}' at decision time (special-category data for every "
            "decision, GDPR Art. 9) and randomizes some decisions",
            size=base["size"],
            mitigation={
                "base": favourite,
                "method": policy.model.mitigation.method,
                "constraint": policy.model.mitigation.constraint,
                "attribute": attribute,
                "accuracy_cost": round(base["holdout"]["accuracy"] - result["holdout"]["accuracy"], 5),
                "balanced_accuracy_cost": round(
                    base["holdout"]["balanced_accuracy"] - result["holdout"]["balanced_accuracy"], 5
                ),
                "roc_auc_cost": round(base["holdout"]["roc_auc"] - result["holdout"]["roc_auc"], 5),
            },
        )
        results.append(result)

    choice = preferred(results, policy)
    chosen = next((r for r in results if r["name"] == choice.chosen), None)
    report = {
        "decided_on": on.isoformat(),
        "metric": policy.model.selection.metric,
        "chosen": choice.chosen,
        "chosen_model_uri": chosen["model_uri"] if chosen else None,
        "chosen_run_id": chosen["run_id"] if chosen else None,
        "rule": choice.rule,
        "justification": choice.justification,
        "raw_data_md5": candidates["raw_data_md5"],
        "policy_fingerprint": policy.fingerprint,
        # The model_candidates materialization compared here; registration refuses any other.
        "candidates_run_id": candidates.get("dagster_run_id"),
        "candidates": results,
    }

    markdown = _markdown(report, policy)
    path = project.paths.selection_dir / "model_selection.md"
    page = publish_markdown(markdown, path, "Model selection report")
    _log_to_mlflow(mlflow_session, policy, report, context.run.run_id)

    yield dg.Output(
        report,
        metadata={
            "chosen": choice.chosen or "(none)",
            "justification": choice.justification,
            "rule": choice.rule,
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
        passed=choice.chosen is not None,
        description=choice.justification,
        metadata={
            "chosen": choice.chosen or "(none)",
            "candidates": len(results),
            "passing": sum(r["gates"]["passed"] and r["deployable"] for r in results),
            "waived": "; ".join(w for r in results for w in r["gates"]["waived"]) or "(none)",
        },
    )


def _log_to_mlflow(mlflow_session: MlflowSession, policy: Policy, report: dict[str, Any], dagster_run_id: str) -> None:
    """Holdout and fairness evidence on each candidate's run; the mitigated candidate gets a run of its own."""
    import mlflow

    client = mlflow_session.client()
    for r in report["candidates"]:
        metrics = {f"holdout_{k}": v for k, v in r["holdout"].items()}
        for key, interval in r["intervals"].items():
            metrics[f"holdout_{key}_ci_low"], metrics[f"holdout_{key}_ci_high"] = interval["low"], interval["high"]
        for analysis, result in r["fairness"].items():
            if result.get("evaluable"):
                for m in ("demographic_parity_difference", "equalized_odds_difference", "demographic_parity_ratio"):
                    metrics[f"fairness.{m}.{analysis.replace(' x ', '_x_')}"] = result[m]
        if r.get("run_id") is None:
            tags = {
                "dagster.run_id": dagster_run_id,
                "candidate.name": r["name"],
                "mitigation.base": r["mitigation"]["base"],
                "deployable": "false",
                **process_tags(),
            }
            with mlflow_session.start_run(policy.model.experiment_name, r["name"], tags) as run:
                mlflow.log_params({k: v for k, v in r["mitigation"].items() if isinstance(v, str)})
                r["run_id"] = run.info.run_id
        mlflow_session.log_evidence(r["run_id"], metrics, {"selection/report.json": report})
        client.set_tag(r["run_id"], "selection.chosen", str(r["name"] == report["chosen"]).lower())
        client.set_tag(r["run_id"], "selection.gates", "pass" if r["gates"]["passed"] else "fail")
        for i, waived in enumerate(r["gates"]["waived"]):
            client.set_tag(r["run_id"], f"waiver.{i}", waived[:5000])
