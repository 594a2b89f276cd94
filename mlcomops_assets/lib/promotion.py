"""The promotion decision: a model becomes champion only if every gate passed and it does not fall
behind the current champion beyond the policy's tolerance, on performance or on fairness."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlcomops_assets.policy import Policy

GAP_METRICS = ("demographic_parity_difference", "equalized_odds_difference")


@dataclass(frozen=True)
class Standing:
    """What a model is compared on: holdout ROC AUC and its largest fairness gap."""

    roc_auc: float
    largest_gap: float


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        head = "promoted" if self.promote else "NOT promoted"
        return f"{head}: " + "; ".join(self.reasons)


def largest_gap(fairness: dict) -> float:
    """The largest demographic parity or equalized odds difference over every evaluable analysis."""
    gaps = [result[m] for result in fairness["attributes"].values() if result.get("evaluable") for m in GAP_METRICS]
    return max(gaps, default=0.0)


def gate_failures(evaluation: dict, fairness: dict, explainer: dict, policy: Policy, tolerance: float) -> list[str]:
    """Every gate the candidate breaks, re-derived from its evidence (not from check state)."""
    gate = policy.gates.evaluation
    minimums = {
        "roc_auc": gate.min_roc_auc,
        "accuracy": gate.min_accuracy,
        "balanced_accuracy": gate.min_balanced_accuracy,
    }
    failures = [
        f"evaluation gate: {m} {evaluation[m]:.3f} < {limit:.3f}"
        for m, limit in minimums.items()
        if not evaluation[m] >= limit
    ]
    failures += [f"fairness gate: {v}" for v in fairness.get("violations", [])]
    if not explainer["additivity_error"] <= tolerance:
        failures.append(f"explainability gate: SHAP additivity error {explainer['additivity_error']:.2e}")
    return failures


def decide(candidate: Standing, champion: Standing | None, failures: list[str], policy: Policy) -> Verdict:
    if failures:
        return Verdict(False, failures)
    if champion is None:
        return Verdict(True, ["every gate passed; there is no current champion"])
    gate = policy.gates.promotion
    reasons = []
    auc_drop = champion.roc_auc - candidate.roc_auc
    gap_rise = candidate.largest_gap - champion.largest_gap
    if auc_drop > gate.max_roc_auc_drop:
        reasons.append(
            f"ROC AUC {candidate.roc_auc:.3f} is {auc_drop:.3f} below the champion's {champion.roc_auc:.3f} "
            f"(tolerance {gate.max_roc_auc_drop:.3f})"
        )
    if gap_rise > gate.max_fairness_gap_increase:
        reasons.append(
            f"largest fairness gap {candidate.largest_gap:.3f} is {gap_rise:.3f} above the champion's "
            f"{champion.largest_gap:.3f} (tolerance {gate.max_fairness_gap_increase:.3f})"
        )
    if reasons:
        return Verdict(False, reasons)
    return Verdict(
        True,
        [
            f"every gate passed; ROC AUC {candidate.roc_auc:.3f} vs champion {champion.roc_auc:.3f}, "
            f"largest fairness gap {candidate.largest_gap:.3f} vs {champion.largest_gap:.3f}"
        ],
    )
