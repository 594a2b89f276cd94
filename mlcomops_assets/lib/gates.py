"""Gate outcomes: the one place where a gate's verdict is assembled.

A violation names the gate, the metric, the analysed group attribute, the value and the limit. A
waiver from the policy excuses a violation only if it names the same gate and metric (and attribute,
if it gives one), covers the value (``up_to``) and is active on the day of the decision. A matching
waiver that has expired or is not yet active is reported next to the violation, which still blocks.

``assess`` turns evidence (an evaluation report, a fairness report) into a ``GateOutcome`` whose status
is one of passed, waived, failed or not evaluated, and whose ``verdict`` is the text every check, the
selection report, promotion, batch monitoring and the summary show. ``batch_verdicts`` does the same for
the alarms of batch monitoring (data drift, prediction drift, outliers, fairness on labeled rows).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from mlcomops_assets.policy import Policy, Waiver

# Metrics where a larger value is better; the gate sets a minimum for them.
_HIGHER_IS_BETTER = {"roc_auc", "accuracy", "balanced_accuracy", "demographic_parity_ratio"}
# A gate that could not measure: the value is how many groups were large enough, the limit how many are
# needed. It blocks like any violation; only a waiver naming exactly that attribute excuses it.
NOT_EVALUATED = "not_evaluated"
# A holdout ROC AUC this close to 1 is a symptom of target leakage, not of a good model.
SUSPECT_ROC_AUC = "suspect_roc_auc"
# The fairness gaps (larger is worse): gated, compared with the champion's, logged per analysis.
GAP_METRICS = ("demographic_parity_difference", "equalized_odds_difference")
# Every fairness figure a report carries per analysis: the gaps and the selection-rate ratio (smaller is worse).
FAIRNESS_METRICS = (*GAP_METRICS, "demographic_parity_ratio")
# The figures batch monitoring watches (larger is worse), each against a limit of the policy.
DRIFT_SHARE = "drift_share"  # share of watched columns Evidently finds drifted; gates.drift.drift_share
SCORE_KS = "score_ks"  # KS distance of the champion's scores, batch vs holdout; monitoring.max_score_ks
POSITIVE_RATE_CHANGE = "positive_rate_change"  # of the favourable rate; monitoring.max_positive_rate_change
OUTLIER_SHARE = "outlier_share"  # rows the outlier detector flags; monitoring.max_outlier_share
# Evidently calls a dataset drifted when the share of drifted columns reaches the limit, not only above it.
_REACHING_THE_LIMIT_BREAKS = {DRIFT_SHARE}


class Status(StrEnum):
    PASSED = "passed"
    WAIVED = "waived"  # passed only because a waiver in force covers a violation
    FAILED = "failed"
    NOT_EVALUATED = "not evaluated"  # something could not be measured and no waiver names it


@dataclass(frozen=True)
class Violation:
    gate: str
    metric: str
    value: float
    limit: float
    attribute: str | None = None

    @property
    def text(self) -> str:
        subject = f"{self.attribute}: " if self.attribute else ""
        if self.metric == SUSPECT_ROC_AUC:
            return (
                f"holdout roc_auc {self.value:.3f} >= {self.limit:.3f} (gates.leakage.max_holdout_auc): implausibly "
                "good, a feature probably leaks the outcome"
            )
        if self.metric == NOT_EVALUATED:
            return (
                f"{subject}not evaluated: {self.value:.0f} group(s) with at least min_group_size rows, "
                f"{self.limit:.0f} needed"
            )
        sign = "<" if self.metric in _HIGHER_IS_BETTER else ">=" if self.metric in _REACHING_THE_LIMIT_BREAKS else ">"
        return f"{subject}{self.metric} {self.value:.3f} {sign} {self.limit:.3f}"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> Violation:
        return cls(**raw)


def covers(waiver: Waiver, violation: Violation) -> bool:
    """Whether ``waiver`` is written for this violation (regardless of its dates)."""
    if (waiver.gate, waiver.metric) != (violation.gate, violation.metric):
        return False
    if waiver.attribute is not None and waiver.attribute != violation.attribute:
        return False
    if violation.metric == NOT_EVALUATED:
        return waiver.attribute == violation.attribute  # never a blanket waiver for what was not measured
    if waiver.up_to is None:
        return True
    if violation.metric in _HIGHER_IS_BETTER:
        return violation.value >= waiver.up_to
    return violation.value <= waiver.up_to


def describe_waiver(waiver: Waiver) -> str:
    scope = f"{waiver.gate}/{waiver.metric}" + (f"/{waiver.attribute}" if waiver.attribute else "")
    bound = f" up to {waiver.up_to:g}" if waiver.up_to is not None else ""
    return (
        f"{scope}{bound} waived by {waiver.approved_by} on {waiver.approved_on} until {waiver.expires}: {waiver.reason}"
    )


@dataclass
class GateOutcome:
    """What blocks, what a valid waiver excuses, and which waivers were found but are not in force.

    ``blocking`` holds every violation no waiver in force covers, measured or not evaluated."""

    blocking: list[Violation] = field(default_factory=list)
    waived: list[tuple[Violation, Waiver]] = field(default_factory=list)
    lapsed: list[tuple[Violation, Waiver]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.blocking

    @property
    def measured_blocking(self) -> list[Violation]:
        return [v for v in self.blocking if v.metric != NOT_EVALUATED]

    @property
    def unmeasured(self) -> list[Violation]:
        return [v for v in self.blocking if v.metric == NOT_EVALUATED]

    @property
    def status(self) -> Status:
        if self.measured_blocking:
            return Status.FAILED
        if self.unmeasured:
            return Status.NOT_EVALUATED
        return Status.WAIVED if self.waived else Status.PASSED

    def verdict(self, on: dt.date, passed_text: str) -> str:
        """The one wording of a gate's result: what failed or was not evaluated (figure and limit), or
        ``passed_text``, followed by each waiver the result depends on ("waived by <who> until <date>")."""
        if self.blocking:  # a not-evaluated text says so itself
            head = "failed: " if self.measured_blocking else ""
            return head + "; ".join(self.blocking_texts(on))
        if not self.waived:
            return f"passed: {passed_text}"
        return f"passed only under waivers: {passed_text} except " + "; ".join(self.short_waived_texts())

    def short_waived_texts(self) -> list[str]:
        return [f"{v.text} waived by {w.approved_by} until {w.expires}" for v, w in self.waived]

    def blocking_texts(self, on: dt.date) -> list[str]:
        texts = []
        for violation in self.blocking:
            notes = [
                f"waiver by {w.approved_by} "
                + (f"expired on {w.expires}" if on > w.expires else f"not active before {w.approved_on}")
                for v, w in self.lapsed
                if v == violation
            ]
            texts.append(violation.text + (f" ({'; '.join(notes)})" if notes else ""))
        return texts

    def failure_texts(self, on: dt.date) -> list[str]:
        """Each blocking violation prefixed with its gate, as verdicts show them."""
        return [f"{v.gate} gate: {t}" for v, t in zip(self.blocking, self.blocking_texts(on), strict=True)]

    def waived_texts(self) -> list[str]:
        return [f"{v.text}: {describe_waiver(w)}" for v, w in self.waived]


def apply_waivers(violations: list[Violation], policy: Policy, on: dt.date) -> GateOutcome:
    outcome = GateOutcome()
    for violation in violations:
        matching = [w for w in policy.waivers if covers(w, violation)]
        active = [w for w in matching if w.is_active(on)]
        if active:
            outcome.waived.append((violation, active[0]))
        else:
            outcome.blocking.append(violation)
            outcome.lapsed.extend((violation, w) for w in matching)
    return outcome


def fairness_violations(report: dict, policy: Policy) -> list[Violation]:
    """Every analysis whose gap breaks the policy's thresholds, and every analysis that could not be
    evaluated (fewer than two groups of ``min_group_size`` rows): what was not measured never passes."""
    gate = policy.gates.fairness
    maximums = {
        "demographic_parity_difference": gate.max_demographic_parity_difference,
        "equalized_odds_difference": gate.max_equalized_odds_difference,
    }
    problems = []
    for name, result in report["attributes"].items():
        if not result.get("evaluable"):
            large = sum(1 for g in result.get("groups", []) if not g.get("too_small"))
            problems.append(Violation("fairness", NOT_EVALUATED, float(large), 2.0, name))
            continue
        for metric in GAP_METRICS:
            if not result[metric] <= maximums[metric]:
                problems.append(Violation("fairness", metric, float(result[metric]), maximums[metric], name))
        ratio = result["demographic_parity_ratio"]
        if not ratio >= gate.min_demographic_parity_ratio:
            problems.append(
                Violation("fairness", "demographic_parity_ratio", float(ratio), gate.min_demographic_parity_ratio, name)
            )
    return problems


def largest_gap(report: dict) -> float:
    """The largest fairness gap (``GAP_METRICS``) over every evaluable analysis."""
    gaps = [result[m] for result in report["attributes"].values() if result.get("evaluable") for m in GAP_METRICS]
    return max(gaps, default=0.0)


def assess(policy: Policy, on: dt.date, *, evaluation: dict | None = None, fairness: dict | None = None) -> GateOutcome:
    """The gate outcome of the given evidence under the policy in force on ``on``: re-derived from the
    evidence's numbers (never read from check state), with the waivers that apply that day."""
    violations: list[Violation] = []
    if evaluation is not None:
        violations += evaluation_violations(evaluation, policy) + leakage_violations(evaluation, policy)
    if fairness is not None:
        violations += fairness_violations(fairness, policy)
    return apply_waivers(violations, policy, on)


def leakage_violations(report: dict, policy: Policy) -> list[Violation]:
    """A holdout ROC AUC at or above ``gates.leakage.max_holdout_auc``, when the policy blocks on leakage.

    The leakage checks stop training and registration; re-deriving this from the evaluation keeps a
    model that reached the registry by a subset run from becoming champion."""
    gate = policy.gates.leakage
    if gate.severity != "block" or not report["roc_auc"] >= gate.max_holdout_auc:
        return []
    return [Violation("leakage", SUSPECT_ROC_AUC, float(report["roc_auc"]), gate.max_holdout_auc)]


def evaluation_violations(report: dict, policy: Policy) -> list[Violation]:
    """The holdout metrics below the policy's minimums."""
    gate = policy.gates.evaluation
    minimums = {
        "roc_auc": gate.min_roc_auc,
        "accuracy": gate.min_accuracy,
        "balanced_accuracy": gate.min_balanced_accuracy,
    }
    return [
        Violation("evaluation", metric, float(report[metric]), limit)
        for metric, limit in minimums.items()
        if not report[metric] >= limit
    ]


def today() -> dt.date:
    """The decision date for waivers (UTC, so the verdict does not depend on the server's time zone)."""
    return dt.datetime.now(dt.UTC).date()


def exceeds(metric: str, value: float, limit: float) -> bool:
    """Whether a batch-monitoring figure (larger is worse) breaks its limit: the drift share from the
    limit on (Evidently's dataset drift), every other figure above it."""
    return value >= limit if metric in _REACHING_THE_LIMIT_BREAKS else value > limit


def within_text(metric: str, value: float, limit: float) -> str:
    """A figure within its limit, worded like a violation: ``score_ks 0.034 <= 0.200``."""
    sign = "<" if metric in _REACHING_THE_LIMIT_BREAKS else "<="
    return f"{metric} {value:.3f} {sign} {limit:.3f}"


@dataclass(frozen=True)
class BatchVerdict:
    """One alarm of a monitored batch: whether its check passes, the gate status and the check's text."""

    passed: bool
    status: Status
    text: str


def _figures_verdict(
    gate: str, figures: list[tuple[str, float, float]], context: str, policy: Policy, on: dt.date
) -> BatchVerdict:
    """The verdict on (metric, value, limit) figures: every figure that breaks its limit is a violation;
    the text names each figure with its limit, then ``context``."""
    violations = [Violation(gate, m, float(v), float(limit)) for m, v, limit in figures if exceeds(m, v, limit)]
    outcome = apply_waivers(violations, policy, on)
    within = [within_text(m, v, limit) for m, v, limit in figures if not exceeds(m, v, limit)]
    if outcome.blocking:
        # The figures that stayed within their limits are context of a failure.
        return BatchVerdict(False, outcome.status, f"{outcome.verdict(on, '')} ({'; '.join([*within, context])})")
    return BatchVerdict(True, outcome.status, f"{outcome.verdict(on, ', '.join(within))} ({context})")


def batch_verdicts(
    policy: Policy,
    on: dt.date,
    *,
    drift: dict,
    prediction_drift: dict,
    outlier_share: float,
    reference_outlier_share: float,
    fairness: GateOutcome | None,
) -> dict[str, BatchVerdict]:
    """The alarms of one monitored batch, by their names in ``monitoring.retrain_on``: data drift (the
    share of drifted columns), prediction drift (the champion's score KS distance and the change of its
    favourable rate against the holdout), the outlier share, and the fairness gates on the labeled rows
    (``fairness``: their outcome, None without labels)."""
    limits = policy.monitoring
    return {
        "data_drift": _figures_verdict(
            "drift",
            [(DRIFT_SHARE, drift["drift_share"], policy.gates.drift.drift_share)],
            f"{drift['drifted_columns']} of {len(drift['columns'])} columns drifted",
            policy,
            on,
        ),
        "prediction_drift": _figures_verdict(
            "prediction_drift",
            [
                (SCORE_KS, prediction_drift["score_ks"], limits.max_score_ks),
                (POSITIVE_RATE_CHANGE, prediction_drift["positive_rate_change"], limits.max_positive_rate_change),
            ],
            f"favourable rate {prediction_drift['batch_positive_rate']:.3f} on the batch, "
            f"{prediction_drift['reference_positive_rate']:.3f} on the holdout",
            policy,
            on,
        ),
        "outliers": _figures_verdict(
            "outliers",
            [(OUTLIER_SHARE, outlier_share, limits.max_outlier_share)],
            f"training reference {reference_outlier_share:.3f}",
            policy,
            on,
        ),
        "fairness": _batch_fairness(fairness, on),
    }


def _batch_fairness(outcome: GateOutcome | None, on: dt.date) -> BatchVerdict:
    if outcome is None:
        return BatchVerdict(
            True, Status.NOT_EVALUATED, "no labels in this batch: fairness on operational data not assessable"
        )
    # A batch too small to compare groups is said to be not evaluated, by name; it is no fairness alarm
    # (retraining would not make the batch larger), so only measured gaps decide the check.
    return BatchVerdict(
        not outcome.measured_blocking,
        outcome.status,
        outcome.verdict(on, "measured fairness gaps on the labeled rows are within the policy's thresholds"),
    )
