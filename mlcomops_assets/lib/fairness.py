"""Group fairness with fairlearn: per protected attribute and per intersection of attributes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlcomops_assets.policy import Policy


def group_labels(frame: pd.DataFrame, attribute: str, policy: Policy) -> pd.Series:
    """Groups of one protected attribute; numeric attributes are binned by the policy's edges."""
    spec = policy.data.columns[attribute]
    values = frame[attribute]
    if spec.fairness_bins:
        edges = spec.fairness_bins
        names = [f"{edges[i]:g}-{edges[i + 1]:g}" for i in range(len(edges) - 1)]
        binned = pd.cut(values, bins=edges, labels=names, right=False, include_lowest=True)
        return binned.astype("object").fillna("outside bins").rename(attribute)
    return values.astype("object").fillna("missing").rename(attribute)


def _frame_for(y_true, y_pred, groups: pd.DataFrame | pd.Series):
    from fairlearn.metrics import (
        MetricFrame,
        count,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    return MetricFrame(
        metrics={
            "count": count,
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "accuracy": accuracy_score,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )


def _disparities(y_true, y_pred, groups, counts: pd.Series, min_size: int) -> dict:
    """Gaps between groups large enough to analyse; smaller groups are reported, not pooled."""
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    large = counts[counts >= min_size].index
    if isinstance(groups, pd.DataFrame):
        keys = pd.MultiIndex.from_frame(groups)
        mask = keys.isin(large)
        sensitive = groups.loc[mask]
    else:
        mask = groups.isin(large).to_numpy()
        sensitive = groups.loc[mask]
    if len(large) < 2:
        return {"evaluable": False, "reason": f"fewer than two groups with at least {min_size} rows"}
    yt, yp = y_true[mask], y_pred[mask]
    return {
        "evaluable": True,
        "demographic_parity_difference": float(demographic_parity_difference(yt, yp, sensitive_features=sensitive)),
        "demographic_parity_ratio": float(demographic_parity_ratio(yt, yp, sensitive_features=sensitive)),
        "equalized_odds_difference": float(equalized_odds_difference(yt, yp, sensitive_features=sensitive)),
    }


def _group_name(key) -> str:
    return " & ".join(str(k) for k in key) if isinstance(key, tuple) else str(key)


def fairness_report(frame: pd.DataFrame, y_true: np.ndarray, y_pred: np.ndarray, policy: Policy) -> dict:
    """Per-group metrics and disparities for every protected attribute and configured intersection."""
    gate = policy.gates.fairness
    analyses: list[tuple[str, pd.Series | pd.DataFrame]] = [
        (attr, group_labels(frame, attr, policy)) for attr in policy.data.protected_attributes
    ]
    for combo in gate.intersections:
        analyses.append((" x ".join(combo), pd.concat([group_labels(frame, a, policy) for a in combo], axis=1)))

    report: dict = {"min_group_size": gate.min_group_size, "attributes": {}}
    for name, groups in analyses:
        mf = _frame_for(y_true, y_pred, groups)
        by_group = mf.by_group
        counts = by_group["count"]
        rows = []
        for key, values in by_group.iterrows():
            size = int(values["count"])
            rows.append(
                {
                    "group": _group_name(key),
                    "count": size,
                    "too_small": size < gate.min_group_size,
                    **{
                        m: (None if pd.isna(values[m]) else round(float(values[m]), 4))
                        for m in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
                    },
                }
            )
        report["attributes"][name] = {
            "groups": rows,
            **_disparities(y_true, y_pred, groups, counts, gate.min_group_size),
        }
    return report


def gate_violations(report: dict, policy: Policy) -> list[str]:
    """Readable reasons why the report breaks the policy's fairness thresholds (empty when it passes)."""
    gate = policy.gates.fairness
    limits = {
        "demographic_parity_difference": gate.max_demographic_parity_difference,
        "equalized_odds_difference": gate.max_equalized_odds_difference,
    }
    problems = []
    for name, result in report["attributes"].items():
        if not result.get("evaluable"):
            continue
        for metric, limit in limits.items():
            if result[metric] > limit:
                problems.append(f"{name}: {metric} {result[metric]:.3f} > {limit:.3f}")
    return problems
