"""Confidence intervals: DeLong against sklearn and a row bootstrap; count-table bootstrap against rows."""

import numpy as np
import pandas as pd
from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference
from sklearn.metrics import roc_auc_score

from mlcomops_assets.lib.fairness import gaps_from_cells
from mlcomops_assets.lib.uncertainty import (
    accuracy_intervals,
    auc_difference,
    auc_interval,
    cell_counts,
    resampled_cells,
)


def _scored(n: int, seed: int, signal: float = 1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, y * signal + rng.normal(size=n)


def test_delong_auc_and_interval_agree_with_sklearn_and_a_row_bootstrap():
    y, scores = _scored(2000, 1)
    interval = auc_interval(y, scores, 0.95)
    assert abs(interval.estimate - roc_auc_score(y, scores)) < 1e-12
    rng = np.random.default_rng(2)
    boot = []
    for _ in range(400):
        rows = rng.integers(0, len(y), len(y))
        boot.append(roc_auc_score(y[rows], scores[rows]))
    low, high = np.quantile(boot, [0.025, 0.975])
    # Same width to within 15%, and the bootstrap interval's ends near DeLong's.
    assert abs((interval.high - interval.low) - (high - low)) < 0.15 * (high - low)
    assert abs(interval.low - low) < 0.01 and abs(interval.high - high) < 0.01


def test_paired_difference_detects_a_better_model_and_not_an_identical_one():
    y, strong = _scored(3000, 3, signal=1.5)
    weak = strong + np.random.default_rng(4).normal(scale=2.0, size=len(y))
    gain = auc_difference(y, strong, weak, 0.95)
    assert np.isclose(gain.estimate, roc_auc_score(y, strong) - roc_auc_score(y, weak), rtol=0, atol=1e-12)
    assert gain.low > 0
    same = auc_difference(y, strong, strong, 0.95)
    assert same.estimate == 0 and same.low == same.high == 0


def test_count_bootstrap_matches_a_row_bootstrap_for_accuracy():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 1500)
    pred = np.where(rng.random(1500) < 0.8, y, 1 - y)
    fast = accuracy_intervals(y, pred, 0.9, 2000, 6)["accuracy"]
    rows = rng.integers(0, len(y), (2000, len(y)))
    slow = np.quantile((pred[rows] == y[rows]).mean(axis=1), [0.05, 0.95])
    assert abs(fast.estimate - np.mean(pred == y)) < 1e-12
    assert abs(fast.low - slow[0]) < 0.004 and abs(fast.high - slow[1]) < 0.004


def test_gaps_from_counts_equal_fairlearn():
    rng = np.random.default_rng(7)
    groups = pd.Series(rng.choice(["a", "b", "c"], 900, p=[0.5, 0.3, 0.2]))
    y = rng.integers(0, 2, 900)
    pred = (rng.random(900) < np.where(groups == "a", 0.8, 0.6)).astype(int)
    codes, uniques = pd.factorize(groups)
    gaps = gaps_from_cells(cell_counts(codes, len(uniques), y, pred))
    assert np.isclose(
        gaps["demographic_parity_difference"], demographic_parity_difference(y, pred, sensitive_features=groups)
    )
    assert np.isclose(gaps["demographic_parity_ratio"], demographic_parity_ratio(y, pred, sensitive_features=groups))
    assert np.isclose(gaps["equalized_odds_difference"], equalized_odds_difference(y, pred, sensitive_features=groups))


def test_resampled_counts_keep_the_total_and_depend_only_on_the_seed():
    cells = np.array([[[10.0, 5.0], [3.0, 40.0]]])
    first = resampled_cells(cells, 100, seed=1)
    assert first.shape == (100, 1, 2, 2)
    assert np.all(first.sum(axis=(1, 2, 3)) == cells.sum())
    np.testing.assert_array_equal(first, resampled_cells(cells, 100, seed=1))
    assert not np.array_equal(first, resampled_cells(cells, 100, seed=2))
