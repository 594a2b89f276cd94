"""Group fairness with fairlearn: per protected attribute and per intersection of attributes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mlcomops_assets.lib.gates import Violation
from mlcomops_assets.lib.uncertainty import cell_counts, percentile_interval, resampled_cells
from mlcomops_assets.policy import Policy

GAP_METRICS = ("demographic_parity_difference", "equalized_odds_difference", "demographic_parity_ratio")


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


def gaps_from_cells(cells: np.ndarray) -> dict[str, np.ndarray]:
    """DPD, DPR and EOD from (..., group, label, decision) counts, as fairlearn defines them."""
    # A group without positives (or negatives) has no TPR (FPR); nan-aware reductions skip it.
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        selection = (cells[..., 0, 1] + cells[..., 1, 1]) / cells.sum(axis=(-1, -2))
        tpr = cells[..., 1, 1] / cells[..., 1, :].sum(axis=-1)
        fpr = cells[..., 0, 1] / cells[..., 0, :].sum(axis=-1)

        def spread(rates: np.ndarray) -> np.ndarray:
            return np.nanmax(rates, axis=-1) - np.nanmin(rates, axis=-1)

        return {
            "demographic_parity_difference": spread(selection),
            "demographic_parity_ratio": np.nanmin(selection, axis=-1) / np.nanmax(selection, axis=-1),
            "equalized_odds_difference": np.maximum(spread(tpr), spread(fpr)),
        }


def _gap_intervals(y_true, y_pred, sensitive, policy: Policy) -> dict[str, dict[str, float]]:
    """Bootstrap intervals of the gaps (rows resampled with replacement, via the count table)."""
    keys = pd.MultiIndex.from_frame(sensitive) if isinstance(sensitive, pd.DataFrame) else sensitive
    codes, uniques = pd.factorize(keys)
    cells = cell_counts(codes, len(uniques), y_true, y_pred)
    settings = policy.model.selection
    boot = gaps_from_cells(resampled_cells(cells, settings.bootstrap_samples, policy.seed))
    point = gaps_from_cells(cells)
    return {
        metric: percentile_interval(float(point[metric]), boot[metric], settings.confidence_level).as_dict()
        for metric in GAP_METRICS
    }


def _disparities(y_true, y_pred, groups, counts: pd.Series, min_size: int, policy: Policy) -> dict:
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
        "intervals": _gap_intervals(yt, yp, sensitive, policy),
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

    report: dict = {
        "min_group_size": gate.min_group_size,
        "confidence_level": policy.model.selection.confidence_level,
        "bootstrap_samples": policy.model.selection.bootstrap_samples,
        "attributes": {},
    }
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
            **_disparities(y_true, y_pred, groups, counts, gate.min_group_size, policy),
        }
    return report


def gate_violations(report: dict, policy: Policy) -> list[Violation]:
    """Every evaluable analysis whose gap breaks the policy's thresholds (empty when the report passes)."""
    gate = policy.gates.fairness
    problems = []
    for name, result in report["attributes"].items():
        if not result.get("evaluable"):
            continue
        for metric, limit in (
            ("demographic_parity_difference", gate.max_demographic_parity_difference),
            ("equalized_odds_difference", gate.max_equalized_odds_difference),
        ):
            if result[metric] > limit:
                problems.append(Violation("fairness", metric, float(result[metric]), limit, name))
        ratio = result["demographic_parity_ratio"]
        if ratio < gate.min_demographic_parity_ratio:
            problems.append(
                Violation("fairness", "demographic_parity_ratio", float(ratio), gate.min_demographic_parity_ratio, name)
            )
    return problems


def largest_gap(report: dict) -> float:
    """The largest demographic parity or equalized odds difference over every evaluable analysis."""
    gaps = [
        result[m]
        for result in report["attributes"].values()
        if result.get("evaluable")
        for m in ("demographic_parity_difference", "equalized_odds_difference")
    ]
    return max(gaps, default=0.0)
