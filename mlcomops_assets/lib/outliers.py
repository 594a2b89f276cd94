"""Outliers: an IsolationForest fitted on the training reference, calibrated to a known outlier share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlcomops_assets.lib import modeling
from mlcomops_assets.policy import ColumnType, Policy

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def fit_detector(reference: pd.DataFrame, policy: Policy) -> Pipeline:
    """One-hot categories, median-imputed numbers, IsolationForest with ``contamination`` set to the
    policy's reference share: by construction that share of reference rows are outliers, so a batch
    share well above it means rows unlike anything the model was trained on."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import IsolationForest
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    spec = policy.data
    columns = spec.feature_columns
    numeric = [c for c in columns if spec.columns[c].is_numeric]
    categorical = [c for c in columns if spec.columns[c].dtype in (ColumnType.CATEGORY, ColumnType.STRING)]
    detector = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        (
                            "cat",
                            Pipeline(
                                [
                                    ("impute", SimpleImputer(strategy="most_frequent")),
                                    ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                                ]
                            ),
                            categorical,
                        ),
                        ("num", SimpleImputer(strategy="median"), numeric),
                    ]
                ),
            ),
            (
                "forest",
                IsolationForest(
                    n_estimators=100,
                    contamination=policy.monitoring.outlier_reference_share,
                    random_state=policy.seed,
                    n_jobs=1,
                ),
            ),
        ]
    )
    return detector.fit(modeling.features(fit_sample(reference, policy), policy))


def fit_sample(reference: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """The reference rows the detector is fitted on: all of them, or a seeded sample of
    ``monitoring.outlier_fit_sample`` rows."""
    if len(reference) > policy.monitoring.outlier_fit_sample:
        return reference.sample(policy.monitoring.outlier_fit_sample, random_state=policy.seed)
    return reference


def outlier_share(detector: Pipeline, frame: pd.DataFrame, policy: Policy) -> float:
    """Share of rows the detector calls outliers (IsolationForest predicts -1 for them)."""
    if len(frame) == 0:
        return 0.0
    return float(np.mean(detector.predict(modeling.features(frame, policy)) == -1))
