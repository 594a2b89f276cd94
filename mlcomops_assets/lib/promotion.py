"""The promotion decision: a model becomes champion only if every gate passed and it does not fall
behind the current champion beyond the policy's tolerance, on performance or on fairness."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from mlcomops_assets.lib.gates import assess
from mlcomops_assets.policy import Policy

__all__ = ["Standing", "Verdict", "decide", "gate_failures"]


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


def gate_failures(
    evaluation: dict, fairness: dict, explainer: dict, policy: Policy, tolerance: float, on: dt.date
) -> tuple[list[str], list[str]]:
    """Every gate the candidate breaks (with its numbers), and every violation a valid waiver excuses."""
    outcome = assess(policy, on, evaluation=evaluation, fairness=fairness)
    failures = outcome.failure_texts(on)
    if not explainer["additivity_error"] <= tolerance:
        failures.append(f"explainability gate: SHAP additivity error {explainer['additivity_error']:.2e}")
    return failures, outcome.short_waived_texts()


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
