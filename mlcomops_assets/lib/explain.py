"""SHAP explanations: global importance for reviewers, local contributions for one affected person.

Which explainer is exact for a model, and on which scale its values add up (log-odds or probability of
the favourable outcome), is declared by the model's family in ``lib/families.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlcomops_assets.lib.families import family_of
from mlcomops_assets.lib.modeling import features
from mlcomops_assets.policy import Policy

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def source_feature(transformed: str, feature_columns: list[str]) -> str:
    """Map a transformed name (``cat__employed_Yes``, ``num__age``) back to its input column."""
    name = transformed.split("__", 1)[-1]
    matches = [c for c in feature_columns if name == c or name.startswith(f"{c}_")]
    return max(matches, key=len) if matches else name


def aggregate_background(model: Pipeline, frame: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One row: the mean of the transformed features over ``frame``.

    An explainer keeps its background in its masker, and the explainer is stored and logged; a sample of
    training rows there would be personal data in an artifact. For a linear model the interventional
    SHAP values depend on the background only through its mean, so the mean row gives the same values.
    """
    transformed = model[:-1].transform(features(frame, policy))
    return transformed.mean().to_frame().T


def build_explainer(model: Pipeline, background: pd.DataFrame, policy: Policy) -> Any:
    """The exact explainer for the fitted estimator, of the kind its family declares: TreeExplainer for
    trees, LinearExplainer for linear models.

    Neither keeps a row of ``background``: trees use the path-dependent algorithm (node statistics of the
    fitted model, no sample), linear models the mean row of ``aggregate_background``.
    """
    import shap

    estimator = model[-1]
    kind = family_of(estimator).explainer
    if kind == "tree_path_dependent":
        return shap.TreeExplainer(estimator, feature_perturbation="tree_path_dependent")
    if kind == "linear_mean_background":
        return shap.LinearExplainer(estimator, aggregate_background(model, background, policy))
    raise ValueError(f"no explainer for kind {kind!r}")


def output_scale(model: Pipeline) -> str:
    """What base value + SHAP values add up to for this model: ``log_odds`` or ``probability``."""
    return family_of(model[-1]).output_scale


def explained_output(model: Pipeline, frame: pd.DataFrame, policy: Policy) -> np.ndarray:
    """The model output the SHAP values explain, one value per row, on the family's scale: the log-odds
    (``decision_function``) or the probability of the favourable outcome. Faithfulness compares
    base value + sum of SHAP values with this."""
    if output_scale(model) == "log_odds":
        return np.asarray(model[-1].decision_function(model[:-1].transform(features(frame, policy))), dtype=float)
    return model.predict_proba(features(frame, policy))[:, 1]


def shap_values(explainer: Any, model: Pipeline, frame: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """SHAP values per transformed feature, one row per input row, on the model's ``output_scale`` (the
    favourable outcome's log-odds or probability)."""
    transformed = model[:-1].transform(features(frame, policy))
    values = np.asarray(explainer.shap_values(transformed))
    if values.ndim == 3:  # some explainers return one slice per class
        values = values[..., 1]
    return pd.DataFrame(values, columns=list(transformed.columns), index=frame.index)


def global_importance(values: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Mean |SHAP| per transformed feature and per input column, largest first."""
    mean_abs = values.abs().mean()
    table = pd.DataFrame(
        {
            "feature": mean_abs.index,
            "source_column": [source_feature(f, policy.data.feature_columns) for f in mean_abs.index],
            "mean_abs_shap": mean_abs.to_numpy(),
        }
    )
    return table.sort_values("mean_abs_shap", ascending=False).reset_index(drop=True)


def explain_decision(explainer: Any, model: Pipeline, row: pd.DataFrame, policy: Policy) -> dict:
    """Why one decision came out as it did: base value, score, and each input column's contribution.

    The base value and its sum with the contributions are named by the model's output scale:
    ``base_log_odds`` and ``log_odds``, or ``base_probability`` and ``probability`` (a single tree,
    whose exact SHAP values are in probability); ``probability_favourable`` is always the model's score.
    """
    if len(row) != 1:
        raise ValueError(f"explain_decision takes exactly one row, got {len(row)}")
    values = shap_values(explainer, model, row, policy).iloc[0]
    per_column = (
        values.groupby([source_feature(f, policy.data.feature_columns) for f in values.index])
        .sum()
        .sort_values(key=np.abs, ascending=False)
    )
    base = float(np.ravel(explainer.expected_value)[-1])
    score = float(model.predict_proba(features(row, policy))[0, 1])
    scale = output_scale(model)
    return {
        f"base_{scale}": base,
        scale: base + float(values.sum()),
        "probability_favourable": score,
        "contributions": {k: round(float(v), 6) for k, v in per_column.items()},
    }


def plot_importance(table: pd.DataFrame, target: Path, top: int, scale: str = "log_odds") -> None:
    """A horizontal bar chart of the top input columns by mean |SHAP|, saved as PNG; ``scale`` is the
    model's ``output_scale``, named on the axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_column = table.groupby("source_column")["mean_abs_shap"].sum().sort_values().tail(top)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(by_column) + 1.5))
    ax.barh(by_column.index, by_column.to_numpy(), color="#3b6ea5")
    ax.set_xlabel(f"mean |SHAP value| ({scale.replace('_', '-')} of the favourable outcome)")
    ax.set_title("Global feature importance")
    fig.tight_layout()
    fig.savefig(target, format="png", dpi=110)
    plt.close(fig)
