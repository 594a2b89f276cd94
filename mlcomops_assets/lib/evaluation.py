"""Holdout performance: discrimination, threshold metrics and calibration."""

from __future__ import annotations

import numpy as np


def performance(y_true: np.ndarray, scores: np.ndarray, y_pred: np.ndarray, n_bins: int = 10) -> dict:
    """Accuracy, balanced accuracy, ROC AUC, precision, recall, Brier score and a reliability table."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        brier_score_loss,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    both_classes = len(np.unique(y_true)) == 2
    prob_true, prob_pred = calibration_curve(y_true, scores, n_bins=n_bins, strategy="quantile")
    # Expected calibration error over quantile bins (equal counts), so every bin weighs the same.
    ece = float(np.mean(np.abs(prob_true - prob_pred))) if len(prob_true) else float("nan")
    return {
        "rows": int(len(y_true)),
        "positive_rate": float(np.mean(y_true)),
        "predicted_positive_rate": float(np.mean(y_pred)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "roc_auc": float(roc_auc_score(y_true, scores)) if both_classes else float("nan"),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "brier_score": float(brier_score_loss(y_true, scores)),
        "expected_calibration_error": ece,
        "majority_class_accuracy": float(max(np.mean(y_true), 1 - np.mean(y_true))),
        "calibration": [
            {"mean_predicted": round(float(p), 4), "observed_rate": round(float(t), 4)}
            for p, t in zip(prob_pred, prob_true, strict=True)
        ],
    }
