"""Candidate models: each family of the policy tuned by cross-validation on the training rows only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.families import family_of
from mlcomops_assets.policy import CandidateSpec, Policy

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


@dataclass
class TunedCandidate:
    """A fitted candidate and the cross-validation evidence for its hyperparameters."""

    name: str
    spec: CandidateSpec
    model: Pipeline
    best_params: dict[str, Any]
    cv_mean: float
    cv_std: float
    cv_results: list[dict[str, Any]] = field(default_factory=list)
    cv_rows: int = 0
    fit_rows: int = 0


def tune(name: str, training: pd.DataFrame, policy: Policy) -> TunedCandidate:
    """Grid search with stratified, shuffled folds seeded from the policy; refit on all training rows.

    Above ``model.selection.cv_max_rows`` rows the search runs on a stratified sample of that size (the
    choice among a few grid points is stable long before that; the cost of the search is folds x grid
    fits), and the chosen configuration is then fitted on every training row, or, above
    ``model.selection.fit_max_rows``, on a stratified, seeded sample of that size (the fit's cost grows
    with the rows; its estimates barely move beyond a million rows).
    ``n_jobs=1``: results must not depend on how many cores the machine has, and on two cores
    parallel folds cost more in process start-up than they save at this size.
    """
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

    spec = policy.model.candidates[name]
    selection = policy.model.selection
    x, y = modeling.features(training, policy), modeling.labels(training, policy)
    pipeline = modeling.build_pipeline(policy, spec)
    grid = {f"classifier__{k}": v for k, v in spec.grid.items()} or {"classifier__random_state": [policy.seed]}
    folds = StratifiedKFold(n_splits=selection.cv_folds, shuffle=True, random_state=policy.seed)
    x_search, y_search = x, y
    if len(x) > selection.cv_max_rows:
        x_search, _, y_search, _ = train_test_split(
            x, y, train_size=selection.cv_max_rows, stratify=y, random_state=policy.seed
        )
    search = GridSearchCV(
        pipeline, grid, scoring=_scorer(selection.metric), cv=folds, n_jobs=1, refit=False, error_score="raise"
    )
    search.fit(x_search, y_search)
    x_fit, y_fit = _bounded(x, y, selection.fit_max_rows, policy.seed)
    model = clone(pipeline).set_params(**search.best_params_).fit(x_fit, y_fit)
    best = search.best_index_
    results = search.cv_results_
    rows = [
        {
            "params": {k.removeprefix("classifier__"): _plain(v) for k, v in results["params"][i].items()},
            "mean": round(float(results["mean_test_score"][i]), 5),
            "std": round(float(results["std_test_score"][i]), 5),
            "rank": int(results["rank_test_score"][i]),
        }
        for i in range(len(results["params"]))
    ]
    return TunedCandidate(
        name=name,
        spec=spec,
        model=model,
        best_params={k.removeprefix("classifier__"): _plain(v) for k, v in search.best_params_.items()},
        cv_mean=float(results["mean_test_score"][best]),
        cv_std=float(results["std_test_score"][best]),
        cv_results=rows,
        cv_rows=len(x_search),
        fit_rows=len(x_fit),
    )


def _bounded(x: pd.DataFrame, y: np.ndarray, max_rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """All rows, or a stratified, seeded sample of ``max_rows`` of them (in their original order)."""
    from sklearn.model_selection import train_test_split

    if len(x) <= max_rows:
        return x, y
    kept, _ = train_test_split(np.arange(len(x)), train_size=max_rows, stratify=y, random_state=seed)
    kept.sort()
    return x.iloc[kept], y[kept]


def _scorer(metric: str) -> str:
    return {"roc_auc": "roc_auc", "balanced_accuracy": "balanced_accuracy", "accuracy": "accuracy"}[metric]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def model_size(model: Pipeline) -> dict[str, int]:
    """How much there is to read to understand the fitted estimator: parameters and, for trees, nodes;
    measured as its family (``lib/families.py``) declares."""
    estimator = model[-1]
    return family_of(estimator).size(estimator)


def run_params(tuned: TunedCandidate, policy: Policy) -> dict[str, Any]:
    """What a candidate's MLflow run records as params: how it was chosen and on which columns."""
    return {
        "candidate": tuned.name,
        "estimator": tuned.spec.estimator,
        "interpretable": tuned.spec.interpretable,
        "seed": policy.seed,
        "cv_folds": policy.model.selection.cv_folds,
        "cv_rows": tuned.cv_rows,
        "fit_rows": tuned.fit_rows,
        "cv_metric": policy.model.selection.metric,
        "decision_threshold": policy.model.decision_threshold,
        "feature_columns": ",".join(policy.data.feature_columns),
        "training_cutoff": str(policy.data.training_cutoff) if policy.data.has_time else "none (no time column)",
        **{f"fixed.{k}": v for k, v in tuned.spec.params.items()},
        **{f"tuned.{k}": v for k, v in tuned.best_params.items()},
    }


def run_metrics(
    tuned: TunedCandidate, training: pd.DataFrame, size: dict[str, int], policy: Policy
) -> dict[str, float]:
    """What a candidate's MLflow run records as metrics: its cross-validation score and training rows."""
    metric = policy.model.selection.metric
    return {
        f"cv_{metric}_mean": tuned.cv_mean,
        f"cv_{metric}_std": tuned.cv_std,
        "train_rows": float(len(training)),
        "train_positive_rate": float(np.mean(modeling.labels(training, policy))),
        "model_parameters": float(size["parameters"]),
    }


def candidate_entry(
    tuned: TunedCandidate, size: dict[str, int], trusted: list[str], logged: dict[str, str], policy: Policy
) -> dict[str, Any]:
    """One candidate of the candidates record: the tuned model's evidence and where MLflow logged it
    (``logged``: ``model_uri``, ``run_id`` and ``experiment_id``)."""
    return {
        "name": tuned.name,
        "estimator": tuned.spec.estimator,
        "interpretable": tuned.spec.interpretable,
        "model_uri": logged["model_uri"],
        "run_id": logged["run_id"],
        "experiment_id": logged["experiment_id"],
        "best_params": tuned.best_params,
        "fixed_params": dict(tuned.spec.params),
        "cv_metric": policy.model.selection.metric,
        "cv_mean": round(tuned.cv_mean, 5),
        "cv_std": round(tuned.cv_std, 5),
        "cv_results": tuned.cv_results,
        "size": size,
        "skops_trusted_types": trusted,
    }


def predicts_identically(first: Pipeline, second: Pipeline, x: pd.DataFrame) -> bool:
    """Whether two models give bit-identical probabilities on ``x``: a model reloaded from MLflow must."""
    return bool(np.array_equal(first.predict_proba(x), second.predict_proba(x)))
