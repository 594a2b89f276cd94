"""Confidence intervals whose cost does not grow with the number of rows.

ROC AUC uses DeLong's method (exact variance of the Mann-Whitney statistic, O(n log n)), which also
gives the variance of the difference between two models scored on the same rows. Metrics that depend
only on counts (accuracy, selection rates, TPR/FPR per group) are bootstrapped by redrawing the cell
counts of the (group, label, decision) table from a multinomial: that is the same distribution as
resampling rows with replacement, but costs O(samples x cells) instead of O(samples x rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlcomops_assets.policy import Policy


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(getattr(self, k)), 5) for k in ("estimate", "low", "high")}

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def _delong_components(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and the DeLong structural components for k score vectors (rows of ``scores``)."""
    from scipy.stats import rankdata

    positive = y_true == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        raise ValueError("ROC AUC needs both classes in the labels")
    aucs, v10, v01 = [], [], []
    for row in np.atleast_2d(scores):
        pos, neg = row[positive], row[~positive]
        ranks_all = rankdata(np.concatenate([pos, neg]))
        ranks_pos, ranks_neg = rankdata(pos), rankdata(neg)
        aucs.append((ranks_all[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((ranks_all[:m] - ranks_pos) / n)
        v01.append(1.0 - (ranks_all[m:] - ranks_neg) / m)
    return np.array(aucs), np.array(v10), np.array(v01)


def auc_interval(y_true: np.ndarray, scores: np.ndarray, level: float) -> Interval:
    """ROC AUC with DeLong's confidence interval, clipped to [0, 1]."""
    aucs, v10, v01 = _delong_components(np.asarray(y_true), np.asarray(scores, dtype=float))
    m, n = v10.shape[1], v01.shape[1]
    variance = float(np.var(v10[0], ddof=1) / m + np.var(v01[0], ddof=1) / n)
    half = _z(level) * np.sqrt(max(variance, 0.0))
    auc = float(aucs[0])
    return Interval(auc, max(0.0, auc - half), min(1.0, auc + half))


def auc_difference(y_true: np.ndarray, first: np.ndarray, second: np.ndarray, level: float) -> Interval:
    """AUC(first) - AUC(second) on the same rows, with DeLong's paired confidence interval."""
    aucs, v10, v01 = _delong_components(np.asarray(y_true), np.vstack([first, second]).astype(float))
    m, n = v10.shape[1], v01.shape[1]
    cov = np.cov(v10) / m + np.cov(v01) / n
    variance = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    half = _z(level) * np.sqrt(max(variance, 0.0))
    diff = float(aucs[0] - aucs[1])
    return Interval(diff, diff - half, diff + half)


def cell_counts(codes: np.ndarray, n_groups: int, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Counts per (group, label, decision): shape (n_groups, 2, 2)."""
    flat = (np.asarray(codes) * 4 + np.asarray(y_true) * 2 + np.asarray(y_pred)).astype(np.int64)
    return np.bincount(flat, minlength=n_groups * 4).reshape(n_groups, 2, 2).astype(float)


def resampled_cells(cells: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """``samples`` bootstrap replicates of a count table (same total), shape (samples, *cells.shape)."""
    total = int(cells.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, cells.ravel() / total, size=samples)
    return draws.reshape(samples, *cells.shape).astype(float)


def percentile_interval(estimate: float, replicates: np.ndarray, level: float) -> Interval:
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return Interval(estimate, float("nan"), float("nan"))
    low, high = np.quantile(finite, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(estimate, float(low), float(high))


def accuracy_intervals(
    y_true: np.ndarray, y_pred: np.ndarray, level: float, samples: int, seed: int
) -> dict[str, Interval]:
    """Accuracy and balanced accuracy with bootstrap intervals from the confusion table."""
    cells = cell_counts(np.zeros(len(y_true), dtype=int), 1, y_true, y_pred)[0]
    boot = resampled_cells(cells, samples, seed)

    def accuracy(c: np.ndarray) -> np.ndarray:
        return (c[..., 0, 0] + c[..., 1, 1]) / c.sum(axis=(-1, -2))

    def balanced(c: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr = c[..., 1, 1] / c[..., 1, :].sum(axis=-1)
            tnr = c[..., 0, 0] / c[..., 0, :].sum(axis=-1)
        return (tpr + tnr) / 2

    return {
        "accuracy": percentile_interval(float(accuracy(cells)), accuracy(boot), level),
        "balanced_accuracy": percentile_interval(float(balanced(cells)), balanced(boot), level),
    }


def performance_intervals(y_true: np.ndarray, scores: np.ndarray, y_pred: np.ndarray, policy: Policy) -> dict:
    """ROC AUC (DeLong), accuracy and balanced accuracy (bootstrap) at the policy's level, as dicts."""
    settings = policy.model.selection
    found = {"roc_auc": auc_interval(y_true, scores, settings.confidence_level)}
    found.update(accuracy_intervals(y_true, y_pred, settings.confidence_level, settings.bootstrap_samples, policy.seed))
    return {k: v.as_dict() for k, v in found.items()}
