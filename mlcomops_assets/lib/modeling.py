"""The model: a scikit-learn pipeline built from the policy, and the label encoding it is trained on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlcomops_assets.lib.families import family
from mlcomops_assets.policy import CandidateSpec, ColumnType, Policy

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def labels(frame: pd.DataFrame, policy: Policy) -> np.ndarray:
    """1 for the favourable (positive) outcome, 0 otherwise."""
    return (frame[policy.data.target] == policy.data.positive_label).to_numpy(dtype=int)


def features(frame: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """The model input: the policy's feature columns, numbers as float so missing values fit the signature."""
    spec = policy.data
    out = frame[spec.feature_columns].copy()
    for name in spec.feature_columns:
        if spec.columns[name].is_numeric:
            out[name] = out[name].astype("float64")
        else:
            out[name] = out[name].astype("object")
    return out


def build_pipeline(policy: Policy, candidate: CandidateSpec, **params) -> Pipeline:
    """Preprocessing + the candidate's estimator with its fixed ``params`` (plus any given, e.g. tuned
    ones), seeded from the policy; outputs pandas so feature names survive. The family (``lib/families.py``)
    builds the estimator and says whether numeric inputs are standardized."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    spec = policy.data
    chosen = family(candidate.estimator)
    numeric = [c for c in spec.feature_columns if spec.columns[c].is_numeric]
    categorical = [c for c in spec.feature_columns if spec.columns[c].dtype in (ColumnType.CATEGORY, ColumnType.STRING)]
    numeric_steps: list = [("impute", SimpleImputer(strategy="median"))]
    if chosen.scale_numeric:
        numeric_steps.append(("scale", StandardScaler()))
    preprocess = ColumnTransformer(
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
            ("num", Pipeline(numeric_steps), numeric),
        ],
        verbose_feature_names_out=True,
    )
    estimator = chosen.build({**candidate.params, **params}, policy.seed)
    return Pipeline([("preprocess", preprocess), ("classifier", estimator)]).set_output(transform="pandas")


def positive_scores(model: Pipeline, frame: pd.DataFrame, policy: Policy) -> np.ndarray:
    return model.predict_proba(features(frame, policy))[:, 1]


def decisions(scores: np.ndarray, policy: Policy) -> np.ndarray:
    return (scores >= policy.model.decision_threshold).astype(int)
