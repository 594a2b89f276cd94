"""Model families: each declared once, with everything the rest of the project needs to know about it.

A family is what a policy candidate names in ``estimator``. Its entry says how the estimator is built
(the scikit-learn class, its defaults, the seed), which parameters a policy may fix or tune, which SHAP
explainer explains it exactly and on which scale, how its size is measured for the selection report,
and whether it is inherently interpretable. The policy validates against this table; building
(``lib/modeling.py``), explaining (``lib/explain.py``) and measuring (``lib/candidates.py``) dispatch
through it. Adding a family is adding one entry here, plus its tests (``lib/test_families.py``).

The policy imports this module to validate a file, so nothing here imports scikit-learn or numpy at
import time: classes are named by their import path and loaded only when a model is built or inspected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Literal

# How a family is explained exactly without keeping a row of the training data in the explainer:
# - tree_path_dependent: SHAP TreeExplainer on the node statistics of the fitted trees (no sample);
# - linear_mean_background: SHAP LinearExplainer with the mean transformed row as its background.
ExplainerKind = Literal["tree_path_dependent", "linear_mean_background"]
# What base value + SHAP values add up to: the log-odds (decision_function) or the probability
# (predict_proba) of the favourable outcome. A single tree's leaves hold class fractions, so its exact
# SHAP values are in probability; a pure leaf has infinite log-odds.
OutputScale = Literal["log_odds", "probability"]
ModelSize = dict[str, int]


@dataclass(frozen=True)
class Family:
    """One model family: the only place that knows how it is built, explained and measured."""

    name: str
    estimator: str  # import path of the scikit-learn classifier
    params: frozenset[str]  # the keys a policy may fix (params) or tune (grid)
    explainer: ExplainerKind
    output_scale: OutputScale
    size: Callable[[Any], ModelSize] = field(repr=False)  # what a reader must read, for the selection report
    interpretable: bool  # inherently interpretable by default; informative, the policy's flag decides
    defaults: Mapping[str, Any] = field(default_factory=dict)  # before the policy's params
    scale_numeric: bool = False  # standardize numeric inputs before the estimator

    def estimator_type(self) -> type:
        module, _, name = self.estimator.rpartition(".")
        return getattr(import_module(module), name)

    def build(self, params: Mapping[str, Any], seed: int) -> Any:
        """The unfitted estimator: the family's defaults, then ``params``, seeded with ``seed``.

        The seed is set last, so it is always the policy's: tuning a candidate without a grid searches
        ``random_state: [seed]`` and reports it back among the best parameters.
        """
        return self.estimator_type()(**{**self.defaults, **params, "random_state": seed})


def _coefficients(estimator: Any) -> ModelSize:
    """One coefficient per encoded feature plus the intercept: all a reader of a linear model reads."""
    n = int(estimator.coef_.size + estimator.intercept_.size)
    return {"parameters": n, "trees": 0, "tree_nodes": 0}


def _nodes(trees: list) -> ModelSize:
    nodes = int(sum(t.tree_.node_count for t in trees))
    return {"parameters": nodes, "trees": len(trees), "tree_nodes": nodes}


def _ensemble_nodes(estimator: Any) -> ModelSize:
    """Every node of every tree of a boosted ensemble (``estimators_`` is one tree per stage and class)."""
    return _nodes(list(estimator.estimators_.ravel()))


def _tree_nodes(estimator: Any) -> ModelSize:
    """The nodes of one tree: each is a question or an answer a reader follows."""
    return _nodes([estimator])


_DECLARED = (
    Family(
        name="logistic_regression",
        estimator="sklearn.linear_model.LogisticRegression",
        params=frozenset({"C", "max_iter", "class_weight", "l1_ratio", "solver"}),
        explainer="linear_mean_background",
        output_scale="log_odds",
        size=_coefficients,
        interpretable=True,
        defaults={"max_iter": 1000},
        # Comparable coefficients and a well-conditioned solver need numbers on one scale.
        scale_numeric=True,
    ),
    Family(
        name="gradient_boosting",
        estimator="sklearn.ensemble.GradientBoostingClassifier",
        params=frozenset(
            {"n_estimators", "learning_rate", "max_depth", "subsample", "min_samples_leaf", "max_features"}
        ),
        explainer="tree_path_dependent",
        output_scale="log_odds",
        size=_ensemble_nodes,
        interpretable=False,
    ),
    Family(
        name="decision_tree",
        estimator="sklearn.tree.DecisionTreeClassifier",
        params=frozenset(
            {
                "max_depth",
                "min_samples_leaf",
                "min_samples_split",
                "max_leaf_nodes",
                "criterion",
                "class_weight",
                "ccp_alpha",
            }
        ),
        explainer="tree_path_dependent",
        output_scale="probability",
        size=_tree_nodes,
        interpretable=True,
        # Shallow unless the policy says otherwise: a tree a reader can follow from root to leaf.
        defaults={"max_depth": 4},
        # Unscaled numbers keep the split thresholds in the data's own units (age in years).
    ),
)

FAMILIES: Mapping[str, Family] = {f.name: f for f in _DECLARED}


def family(name: str) -> Family:
    """The family a policy candidate names; the error lists the registered ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; registered: {sorted(FAMILIES)}") from None


def family_of(estimator: Any) -> Family:
    """The family of a fitted (or loaded) estimator, by its exact class."""
    for candidate in FAMILIES.values():
        if type(estimator) is candidate.estimator_type():
            return candidate
    raise LookupError(
        f"{type(estimator).__module__}.{type(estimator).__qualname__} is no registered model family; "
        f"registered: {', '.join(f'{f.name} ({f.estimator})' for f in FAMILIES.values())}"
    )
