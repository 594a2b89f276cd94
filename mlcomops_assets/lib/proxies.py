"""Proxy detection: how strongly the model's features predict each protected attribute.

A feature that predicts a protected attribute can reintroduce what purpose binding removed. Two
measures per attribute: normalized mutual information of each single feature, and the cross-validated
ROC AUC of a simple classifier that uses all features together.
"""

from __future__ import annotations

import pandas as pd

from mlcomops_assets.lib.fairness import group_labels
from mlcomops_assets.policy import Policy

QUANTILE_BINS = 10
MAX_ROWS = 50_000  # enough for stable estimates; keeps the check cheap on large data


def _discrete(values: pd.Series, numeric: bool) -> pd.Series:
    if numeric:
        return pd.qcut(values.rank(method="first"), q=min(QUANTILE_BINS, values.nunique()), labels=False).astype(str)
    return values.astype(str)


def _combined_auc(features: pd.DataFrame, groups: pd.Series, seed: int) -> float | None:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    counts = groups.value_counts()
    if len(counts) < 2 or counts.min() < 3:
        return None
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    categorical = [c for c in features.columns if c not in numeric]
    model = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("num", Pipeline([("imp", SimpleImputer()), ("sc", StandardScaler())]), numeric),
                        (
                            "cat",
                            Pipeline(
                                [
                                    ("imp", SimpleImputer(strategy="most_frequent")),
                                    ("oh", OneHotEncoder(handle_unknown="ignore")),
                                ]
                            ),
                            categorical,
                        ),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=1000, random_state=seed)),
        ]
    )
    folds = int(min(3, counts.min()))
    proba = cross_val_predict(model, features, groups, cv=folds, method="predict_proba")
    if len(counts) == 2:
        positive = sorted(counts.index)[1]
        return float(roc_auc_score((groups == positive).to_numpy(), proba[:, 1]))
    return float(roc_auc_score(groups, proba, multi_class="ovr", labels=sorted(counts.index)))


def proxy_strength(frame: pd.DataFrame, policy: Policy) -> list[dict]:
    """One record per (protected attribute, feature) plus one per attribute for all features together."""
    from sklearn.metrics import normalized_mutual_info_score

    spec = policy.data
    gate = policy.gates.proxy
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=policy.seed)
    records = []
    for attribute in spec.protected_attributes:
        groups = group_labels(frame, attribute, policy).astype(str)
        features = [f for f in spec.feature_columns if f != attribute]
        for feature in features:
            nmi = float(
                normalized_mutual_info_score(groups, _discrete(frame[feature], spec.columns[feature].is_numeric))
            )
            records.append(
                {
                    "protected_attribute": attribute,
                    "feature": feature,
                    "measure": "normalized_mutual_information",
                    "value": round(nmi, 4),
                    "limit": gate.max_normalized_mutual_information,
                    "flagged": bool(nmi > gate.max_normalized_mutual_information),
                }
            )
        if features:
            auc = _combined_auc(frame[features], groups, policy.seed)
            records.append(
                {
                    "protected_attribute": attribute,
                    "feature": "(all features)",
                    "measure": "cross_validated_auc",
                    "value": None if auc is None else round(auc, 4),
                    "limit": gate.max_auc,
                    "flagged": bool(auc is not None and auc > gate.max_auc),
                }
            )
    return records
