"""What a production batch's labels tell: holdout-style performance and the fairness gates on its labeled rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.evaluation import performance
from mlcomops_assets.lib.fairness import fairness_report
from mlcomops_assets.lib.gates import GateOutcome, assess, largest_gap
from mlcomops_assets.policy import Policy

_PERFORMANCE_KEYS = ("roc_auc", "accuracy", "balanced_accuracy")


def labeled_quality(
    labeled: pd.DataFrame, scores: np.ndarray, decisions: np.ndarray, policy: Policy, on: dt.date
) -> tuple[dict[str, Any], GateOutcome | None]:
    """Performance (when both classes occur) and fairness of the decisions on a batch's labeled rows, and
    the fairness gates' outcome (None without labels). ``scores`` and ``decisions`` cover the whole batch;
    ``labeled`` keeps the batch's row positions as its index."""
    quality: dict[str, Any] = {"labeled_rows": len(labeled)}
    if not len(labeled):
        return quality, None
    rows = labeled.index.to_numpy()
    y = modeling.labels(labeled, policy)
    decided = decisions[rows]
    if len(np.unique(y)) == 2:
        perf = performance(y, scores[rows], decided)
        quality.update({k: perf[k] for k in _PERFORMANCE_KEYS})
    fairness = fairness_report(labeled, y, decided, policy)
    outcome = assess(policy, on, fairness=fairness)
    quality["largest_fairness_gap"] = largest_gap(fairness)
    quality["fairness_not_evaluated"] = len(outcome.unmeasured)
    quality["fairness_status"] = outcome.status.value
    quality["fairness"] = fairness["attributes"]
    return quality, outcome
