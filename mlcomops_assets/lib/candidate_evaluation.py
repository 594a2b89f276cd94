"""Candidates side by side on the holdout: the evidence the selection rule (``lib/selection.py``) decides on.

Every candidate gets the same measurements: holdout performance with intervals, calibration, fairness
gaps with intervals, its gate outcome and permutation importance. A less explainable candidate is
compared with the best interpretable one by a paired interval of the ROC AUC difference. When the
candidate the rule prefers on performance alone fails a fairness gate, a fairlearn-mitigated version
of it is evaluated too, with its cost, and marked not deployable.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.evaluation import performance
from mlcomops_assets.lib.fairness import fairness_report
from mlcomops_assets.lib.gates import FAIRNESS_METRICS, GateOutcome, assess, largest_gap
from mlcomops_assets.lib.selection import preferred
from mlcomops_assets.lib.uncertainty import auc_difference, performance_intervals
from mlcomops_assets.policy import Policy

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

HOLDOUT_KEYS = (
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
IMPORTANCE_REPEATS = 5


def evaluate(
    name: str,
    y: np.ndarray,
    scores: np.ndarray,
    decisions: np.ndarray,
    holdout: pd.DataFrame,
    policy: Policy,
    on: dt.date,
) -> tuple[dict[str, Any], GateOutcome]:
    """Holdout performance with intervals, calibration, fairness with intervals, and the gate outcome."""
    perf = performance(y, scores, decisions)
    intervals = performance_intervals(y, scores, decisions, policy)
    fairness = fairness_report(holdout, y, decisions, policy)
    outcome = assess(policy, on, evaluation=perf, fairness=fairness)
    result = {
        "name": name,
        "holdout": {k: round(float(perf[k]), 5) for k in HOLDOUT_KEYS},
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


def permutation_ranking(model: Pipeline, holdout: pd.DataFrame, y: np.ndarray, policy: Policy) -> list[dict[str, Any]]:
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
        n_repeats=IMPORTANCE_REPEATS,
        random_state=policy.seed,
        n_jobs=1,
    )
    ranked = sorted(zip(x.columns, found.importances_mean, strict=True), key=lambda t: -t[1])
    return [{"column": c, "importance": round(float(v), 5)} for c, v in ranked]


def compare_with_interpretable(
    results: list[dict[str, Any]], y: np.ndarray, scores_by: dict[str, np.ndarray], policy: Policy
) -> None:
    """Add to each less explainable result the paired interval of its ROC AUC gain over the interpretable
    candidate the rule would prefer (DeLong on the same holdout rows); only when the rule's metric is ROC AUC."""
    interpretable = preferred([r for r in results if r["interpretable"]], policy, gated=False).chosen
    if policy.model.selection.metric != "roc_auc" or not interpretable:
        return
    level = policy.model.selection.confidence_level
    for r in results:
        if not r["interpretable"]:
            diff = auc_difference(y, scores_by[r["name"]], scores_by[interpretable], level)
            r["difference_to_interpretable"] = {"versus": interpretable, **diff.as_dict()}


def unfair_favourite(
    results: list[dict[str, Any]], outcomes: dict[str, GateOutcome], policy: Policy
) -> tuple[str, str] | None:
    """(candidate, attribute) when the candidate the rule prefers on performance alone is stopped by a
    fairness gate: the one worth mitigating, on the first attribute that stops it; else None."""
    favourite = preferred(results, policy, gated=False).chosen
    unfair = [v for v in outcomes[favourite].blocking if v.gate == "fairness"] if favourite else []
    return (favourite, unfair[0].attribute) if unfair else None


def mitigated_result(
    base: dict[str, Any],
    model: Pipeline,
    attribute: str,
    training: pd.DataFrame,
    holdout: pd.DataFrame,
    y: np.ndarray,
    policy: Policy,
    on: dt.date,
) -> dict[str, Any]:
    """The ``base`` candidate post-processed by fairlearn on ``attribute``, evaluated like every candidate,
    with its cost against the base, and not deployable (it needs the attribute at decision time)."""
    from mlcomops_assets.lib.mitigation import threshold_optimized

    mitigated = threshold_optimized(model, training, holdout, attribute, policy)
    name = f"{base['name']}+{policy.model.mitigation.method}"
    result, _ = evaluate(name, y, mitigated.scores, mitigated.decisions, holdout, policy, on)
    result.update(
        interpretable=base["interpretable"],
        deployable=False,
        not_deployable_because=f"it needs '{attribute}' at decision time (special-category data for every "
        "decision, GDPR Art. 9) and randomizes some decisions",
        size=base["size"],
        mitigation={
            "base": base["name"],
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
    return result


def selection_report(
    candidates: dict[str, Any],
    models: dict[str, Pipeline],
    training: pd.DataFrame,
    holdout: pd.DataFrame,
    policy: Policy,
    on: dt.date,
) -> dict[str, Any]:
    """Every candidate of the ``candidates`` record (``models``: its fitted model by name) evaluated on the
    holdout, a mitigated candidate when a fairness gate stops the favourite, and the policy's choice with
    its rule and justification."""
    y = modeling.labels(holdout, policy)
    results: list[dict[str, Any]] = []
    outcomes: dict[str, GateOutcome] = {}
    scores_by: dict[str, np.ndarray] = {}
    for entry in candidates["candidates"]:
        model = models[entry["name"]]
        scores = modeling.positive_scores(model, holdout, policy)
        result, outcome = evaluate(entry["name"], y, scores, modeling.decisions(scores, policy), holdout, policy, on)
        result.update(
            interpretable=entry["interpretable"],
            deployable=True,
            size=entry["size"],
            model_uri=entry["model_uri"],
            run_id=entry["run_id"],
            params={**entry["fixed_params"], **entry["best_params"]},
            importance=permutation_ranking(model, holdout, y, policy),
        )
        results.append(result)
        outcomes[entry["name"]] = outcome
        scores_by[entry["name"]] = scores

    compare_with_interpretable(results, y, scores_by, policy)
    # Mitigate the candidate the rule prefers on performance alone, if a fairness gate stops it.
    target = unfair_favourite(results, outcomes, policy)
    if target:
        favourite, attribute = target
        base = next(r for r in results if r["name"] == favourite)
        results.append(mitigated_result(base, models[favourite], attribute, training, holdout, y, policy, on))

    choice = preferred(results, policy)
    chosen = next((r for r in results if r["name"] == choice.chosen), None)
    return {
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


def candidate_metrics(result: dict[str, Any]) -> dict[str, float]:
    """A candidate's holdout figures, their intervals and its fairness figures, as MLflow metric names."""
    metrics = {f"holdout_{k}": v for k, v in result["holdout"].items()}
    for key, interval in result["intervals"].items():
        metrics[f"holdout_{key}_ci_low"], metrics[f"holdout_{key}_ci_high"] = interval["low"], interval["high"]
    for analysis, figures in result["fairness"].items():
        if figures.get("evaluable"):
            for m in FAIRNESS_METRICS:
                metrics[f"fairness.{m}.{analysis.replace(' x ', '_x_')}"] = figures[m]
    return metrics


def selection_markdown(report: dict[str, Any], policy: Policy) -> str:
    """The selection report as the page published for reviewers."""
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
