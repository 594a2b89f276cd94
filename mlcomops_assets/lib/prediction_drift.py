"""Prediction drift: the champion's scores and decisions on a batch against the same model on the holdout."""

from __future__ import annotations

import numpy as np

from mlcomops_assets.lib.gates import POSITIVE_RATE_CHANGE, SCORE_KS, exceeds
from mlcomops_assets.policy import Policy


def prediction_drift(reference_scores: np.ndarray, batch_scores: np.ndarray, policy: Policy) -> dict:
    """Kolmogorov-Smirnov distance between the score distributions and the change of the favourable
    decision rate; drifted when either exceeds the policy's limit."""
    from scipy.stats import ks_2samp

    threshold = policy.model.decision_threshold
    ks = float(ks_2samp(reference_scores, batch_scores).statistic) if len(batch_scores) else 0.0
    reference_rate = float(np.mean(reference_scores >= threshold))
    batch_rate = float(np.mean(batch_scores >= threshold)) if len(batch_scores) else reference_rate
    # Decided on the figures as reported, by the same rule as batch monitoring's gate (lib/gates.py).
    ks, change = round(ks, 5), round(abs(batch_rate - reference_rate), 5)
    limits = policy.monitoring
    return {
        "score_ks": ks,
        "reference_positive_rate": round(reference_rate, 5),
        "batch_positive_rate": round(batch_rate, 5),
        "positive_rate_change": change,
        "reference_mean_score": round(float(np.mean(reference_scores)), 5),
        "batch_mean_score": round(float(np.mean(batch_scores)), 5) if len(batch_scores) else None,
        "drifted": exceeds(SCORE_KS, ks, limits.max_score_ks)
        or exceeds(POSITIVE_RATE_CHANGE, change, limits.max_positive_rate_change),
    }
