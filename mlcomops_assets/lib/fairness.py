"""Group fairness, as fairlearn defines it: per protected attribute and per intersection of attributes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mlcomops_assets.lib.gates import FAIRNESS_METRICS
from mlcomops_assets.lib.uncertainty import cell_counts, percentile_interval, resampled_cells
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


def _codes(groups: pd.Series | pd.DataFrame) -> tuple[np.ndarray, list]:
    """Integer group codes and the group keys (tuples for intersections), in order of first appearance."""
    keys = pd.MultiIndex.from_frame(groups) if isinstance(groups, pd.DataFrame) else groups
    codes, uniques = pd.factorize(keys, sort=True)
    return codes, list(uniques)


def _rate(numerator: float, denominator: float) -> float | None:
    return round(float(numerator / denominator), 4) if denominator else None


def _group_rows(cells: np.ndarray, keys: list, min_size: int) -> list[dict]:
    rows = []
    for key, c in zip(keys, cells, strict=True):
        size = int(c.sum())
        rows.append(
            {
                "group": _group_name(key),
                "count": size,
                "too_small": size < min_size,
                "selection_rate": _rate(c[0, 1] + c[1, 1], size),
                "true_positive_rate": _rate(c[1, 1], c[1].sum()),
                "false_positive_rate": _rate(c[0, 1], c[0].sum()),
                "accuracy": _rate(c[0, 0] + c[1, 1], size),
            }
        )
    return rows


def _disparities(cells: np.ndarray, min_size: int, policy: Policy) -> dict:
    """Gaps between the groups large enough to analyse, with bootstrap intervals; smaller groups are
    reported in the table, not pooled into another group."""
    large = cells[cells.sum(axis=(1, 2)) >= min_size]
    if len(large) < 2:
        return {"evaluable": False, "reason": f"fewer than two groups with at least {min_size} rows"}
    settings = policy.model.selection
    point = gaps_from_cells(large)
    boot = gaps_from_cells(resampled_cells(large, settings.bootstrap_samples, policy.seed))
    return {
        "evaluable": True,
        **{metric: float(point[metric]) for metric in FAIRNESS_METRICS},
        "intervals": {
            metric: percentile_interval(float(point[metric]), boot[metric], settings.confidence_level).as_dict()
            for metric in FAIRNESS_METRICS
        },
    }


def _group_name(key) -> str:
    return " & ".join(str(k) for k in key) if isinstance(key, tuple) else str(key)


def fairness_report(frame: pd.DataFrame, y_true: np.ndarray, y_pred: np.ndarray, policy: Policy) -> dict:
    """Per-group metrics and disparities for every protected attribute and configured intersection.

    Everything is computed from the count table of (group, label, decision), in one pass over the rows.
    The definitions are fairlearn's (``MetricFrame`` with selection rate, TPR, FPR, accuracy;
    ``demographic_parity_difference``/``_ratio``, ``equalized_odds_difference``), and the tests hold
    the results equal to fairlearn's; fairlearn itself loops over groups in Python, which took 25 s for
    one report on a 180,000-row holdout against well under a second here.
    """
    gate = policy.gates.fairness
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
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
        codes, keys = _codes(groups)
        cells = cell_counts(codes, len(keys), y_true, y_pred)
        report["attributes"][name] = {
            "groups": _group_rows(cells, keys, gate.min_group_size),
            **_disparities(cells, gate.min_group_size, policy),
        }
    return report
