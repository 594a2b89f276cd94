"""Target leakage: features that predict the label implausibly well, and features that carry nothing.

A column recorded after the outcome (a call's duration, a closing date, a status set by the decision)
predicts the label almost perfectly in the historical data and not at all at decision time. Before
training, every feature is scored alone: the cross-validated ROC AUC of a small tree on its values and
on whether it is missing, so a column whose mere presence gives the label away is caught as well.
After training, the chosen model's holdout ROC AUC and the ROC AUC drop when one feature is permuted
are held against the policy's limits. Constant and near-constant features are named too.

Only column names, figures and limits leave this module: never a cell value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlcomops_assets.policy import ColumnRole, DataSpec, LeakageGate

FOLDS = 5
MAX_DEPTH = 4
MIN_SAMPLES_LEAF = 20
IMPORTANCE_REPEATS = 5  # as the selection report's permutation importance
_MISSING = "\0missing"  # the category of a missing value (never a real label: it starts with NUL)


class LeakageNotEvaluated(ValueError):
    """The figures could not be computed: the check must fail as not evaluated, never pass."""


@dataclass(frozen=True)
class Finding:
    """One figure beyond its limit: which column, how far, which policy key, and what to do."""

    column: str
    measure: str
    figure: float
    limit: float
    policy_key: str
    message: str

    def as_record(self) -> dict[str, str | float]:
        return {
            "column": self.column,
            "measure": self.measure,
            "figure": self.figure,
            "limit": self.limit,
            "policy_key": self.policy_key,
        }


def _limit(value: float) -> str:
    """A limit as written in the policy: 0.90 for 0.9, 0.995 in full."""
    return f"{value:.2f}" if round(value, 2) == value else f"{value:g}"


def _fix(column: str, spec: DataSpec) -> str:
    """How to take a column out of the model in governance.yaml, for its role."""
    declared = spec.columns.get(column)
    if declared is not None and declared.role == ColumnRole.PROTECTED:
        return f"set data.columns.{column}.use_as_feature: false in governance.yaml"
    return f"declare the column role: ignored in governance.yaml (data.columns.{column}.role)"


def _labels(frame: pd.DataFrame, spec: DataSpec) -> np.ndarray:
    return (frame[spec.target] == spec.positive_label).to_numpy(dtype=int)


def _sample(frame: pd.DataFrame, y: np.ndarray, rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """At most ``rows`` rows, stratified by label and seeded, so both classes keep their shares."""
    if len(frame) <= rows:
        return frame, y
    from sklearn.model_selection import train_test_split

    kept, _, y_kept, _ = train_test_split(frame, y, train_size=rows, stratify=y, random_state=seed)
    return kept, y_kept


def _one_feature_model(values: pd.Series, numeric: bool, seed: int, inner_folds: int):
    """The inputs and model for one feature: its values (numbers as they are, categories target-encoded
    inside each training fold) and a missing indicator, into a shallow tree."""
    from sklearn.compose import ColumnTransformer
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import TargetEncoder
    from sklearn.tree import DecisionTreeClassifier

    missing = values.isna().to_numpy(dtype=float)
    tree = DecisionTreeClassifier(max_depth=MAX_DEPTH, min_samples_leaf=MIN_SAMPLES_LEAF, random_state=seed)
    if numeric:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        fill = numbers.median() if numbers.notna().any() else 0.0
        x = pd.DataFrame({"value": numbers.fillna(fill).to_numpy(), "missing": missing})
        return x, tree
    # Ordinal codes would let a shallow tree see only ranges of an arbitrary order; the target encoding
    # is fitted within each training fold (and cross-fitted inside it), so it cannot see the held-out fold.
    x = pd.DataFrame({"value": values.astype("object").where(values.notna(), _MISSING).astype(str).to_numpy()})
    x["missing"] = missing
    inner = StratifiedKFold(n_splits=inner_folds, shuffle=True, random_state=seed)
    encode = ColumnTransformer(
        [
            ("value", TargetEncoder(target_type="binary", cv=inner), ["value"]),
            ("missing", "passthrough", ["missing"]),
        ]
    )
    return x, Pipeline([("encode", encode), ("tree", tree)])


def single_feature_aucs(frame: pd.DataFrame, spec: DataSpec, gate: LeakageGate, seed: int) -> dict[str, float]:
    """Per feature of ``spec``, the mean ROC AUC over stratified folds of a one-feature model predicting
    the label, on a stratified, seeded sample of at most ``gate.sample_rows`` rows. A tree learns the
    direction itself, so the figure is the cross-validated ROC AUC as measured (about 0.5: no signal).

    Raises ``LeakageNotEvaluated`` when the label cannot be cross-validated (fewer than two rows of a class).
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if spec.target not in frame.columns:
        raise LeakageNotEvaluated(f"the target column '{spec.target}' is not in the data")
    missing = [c for c in spec.feature_columns if c not in frame.columns]
    if missing:
        raise LeakageNotEvaluated(f"feature column(s) {', '.join(missing)} are not in the data")
    y = _labels(frame, spec)
    rarer = int(min(y.sum(), len(y) - y.sum()))
    if rarer >= 2:
        sample, y = _sample(frame, y, gate.sample_rows, seed)
        rarer = int(min(y.sum(), len(y) - y.sum()))
    if rarer < 2:
        raise LeakageNotEvaluated(
            f"the label has {rarer} row(s) of its rarer class among {len(y)} (at most gates.leakage.sample_rows "
            f"{gate.sample_rows}); at least 2 are needed to cross-validate"
        )
    n_folds = min(FOLDS, rarer)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    # The target encoder cross-fits inside each training fold, which holds fewer rows of the rarer class.
    inner_folds = max(2, min(FOLDS, rarer * (n_folds - 1) // n_folds))
    aucs: dict[str, float] = {}
    for column in spec.feature_columns:
        x, model = _one_feature_model(sample[column], spec.columns[column].is_numeric, seed, inner_folds)
        scores = cross_val_score(model, x, y, cv=folds, scoring="roc_auc", error_score="raise")
        aucs[column] = round(float(np.mean(scores)), 4)
    return aucs


def auc_findings(aucs: dict[str, float], spec: DataSpec, gate: LeakageGate) -> list[Finding]:
    """The features whose one-feature model predicts the label above ``max_single_feature_auc``."""
    limit = gate.max_single_feature_auc
    return [
        Finding(
            column=column,
            measure="single_feature_auc",
            figure=auc,
            limit=limit,
            policy_key="gates.leakage.max_single_feature_auc",
            message=f"'{column}' alone predicts '{spec.target}' with cross-validated ROC AUC {auc:.3f} > "
            f"gates.leakage.max_single_feature_auc {_limit(limit)}: a value recorded after the outcome leaks it; "
            f"if so {_fix(column, spec)}, else raise the limit",
        )
        for column, auc in sorted(aucs.items(), key=lambda item: -item[1])
        if auc > limit
    ]


def dominant_value_shares(frame: pd.DataFrame, features: list[str]) -> dict[str, float]:
    """Per feature, the share of rows holding its most frequent value (a missing value counts as a value).
    Only the share is returned, never the value itself."""
    if frame.empty:
        raise LeakageNotEvaluated("the data has no rows")
    return {
        column: round(float(frame[column].value_counts(dropna=False, normalize=True).iloc[0]), 4) for column in features
    }


def constant_findings(shares: dict[str, float], spec: DataSpec, gate: LeakageGate) -> list[Finding]:
    """Constant features (one value in every row) and near-constant ones (above ``max_dominant_value_share``)."""
    limit = gate.max_dominant_value_share
    findings = []
    for column, share in sorted(shares.items(), key=lambda item: -item[1]):
        if share >= 1.0:
            what = f"'{column}' is constant (one value in every row): it carries no information; "
        elif share > limit:
            what = (
                f"'{column}' is near-constant: its most frequent value covers {share:.2%} of the rows > "
                f"gates.leakage.max_dominant_value_share {limit:.2%}; the rare rows may be noise or a leak; "
            )
        else:
            continue
        findings.append(
            Finding(
                column=column,
                measure="dominant_value_share",
                figure=share,
                limit=limit,
                policy_key="gates.leakage.max_dominant_value_share",
                message=what + f"{_fix(column, spec)}, or raise the limit",
            )
        )
    return findings


def auc_drop_importance(model, x: pd.DataFrame, y: np.ndarray, seed: int, max_rows: int) -> dict[str, float]:
    """Per input column, the mean holdout ROC AUC drop when that column is permuted, on at most
    ``max_rows`` rows drawn as the selection report draws them (same seed, same repeats)."""
    from sklearn.inspection import permutation_importance

    if len(x) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(x), max_rows, replace=False))
        x, y = x.iloc[rows], y[rows]
    if len(np.unique(y)) < 2:
        raise LeakageNotEvaluated("the holdout rows hold one label class only; ROC AUC is undefined")
    found = permutation_importance(
        model, x, y, scoring="roc_auc", n_repeats=IMPORTANCE_REPEATS, random_state=seed, n_jobs=1
    )
    return {c: round(float(v), 5) for c, v in zip(x.columns, found.importances_mean, strict=True)}


def model_findings(
    candidate: str, holdout_auc: float, importances: dict[str, float], spec: DataSpec, gate: LeakageGate
) -> list[Finding]:
    """The post-training verdict on one model: a holdout ROC AUC at or above ``max_holdout_auc`` and every
    feature whose permutation drops the holdout ROC AUC by more than ``max_feature_importance``.

    Raises ``LeakageNotEvaluated`` when a figure is missing (no AUC, no importance): nothing unmeasured passes.
    """
    if holdout_auc is None or not np.isfinite(holdout_auc):
        raise LeakageNotEvaluated(f"candidate '{candidate}' has no holdout ROC AUC")
    if not importances or not all(np.isfinite(v) for v in importances.values()):
        raise LeakageNotEvaluated(f"candidate '{candidate}' has no permutation importance for every feature")
    findings = []
    if holdout_auc >= gate.max_holdout_auc:
        strongest = max(importances, key=importances.__getitem__)
        findings.append(
            Finding(
                column="(all features)",
                measure="holdout_roc_auc",
                figure=round(float(holdout_auc), 4),
                limit=gate.max_holdout_auc,
                policy_key="gates.leakage.max_holdout_auc",
                message=f"candidate '{candidate}' reaches holdout ROC AUC {holdout_auc:.3f} >= "
                f"gates.leakage.max_holdout_auc {_limit(gate.max_holdout_auc)}: implausibly good, usually a feature "
                f"recorded after the outcome (the strongest is '{strongest}', AUC drop "
                f"{importances[strongest]:.3f}); if so {_fix(strongest, spec)}, else raise the limit",
            )
        )
    limit = gate.max_feature_importance
    for column, drop in sorted(importances.items(), key=lambda item: -item[1]):
        if drop > limit:
            findings.append(
                Finding(
                    column=column,
                    measure="permutation_importance",
                    figure=round(float(drop), 4),
                    limit=limit,
                    policy_key="gates.leakage.max_feature_importance",
                    message=f"permuting '{column}' drops the holdout ROC AUC of candidate '{candidate}' by "
                    f"{drop:.3f} > gates.leakage.max_feature_importance {_limit(limit)}: the model rests on one "
                    f"column, usually one recorded after the outcome; if so {_fix(column, spec)}, "
                    "else raise the limit",
                )
            )
    return findings
