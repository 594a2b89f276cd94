"""fairlearn post-processing of a candidate that fails a fairness gate, evaluated for its accuracy cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.fairness import group_labels
from mlcomops_assets.policy import Policy

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


@dataclass
class Mitigated:
    attribute: str
    scores: np.ndarray
    decisions: np.ndarray


def sensitive_labels(frame: pd.DataFrame, attribute: str, policy: Policy) -> pd.Series:
    """Group labels of one analysis: an attribute, or an intersection written ``a x b``."""
    parts = attribute.split(" x ")
    labels = [group_labels(frame, a, policy).astype(str) for a in parts]
    out = labels[0]
    for more in labels[1:]:
        out = out + " & " + more
    return out.rename(attribute)


def threshold_optimized(
    model: Pipeline, training: pd.DataFrame, holdout: pd.DataFrame, attribute: str, policy: Policy
) -> Mitigated:
    """Group-specific thresholds on the candidate's scores (fairlearn ``ThresholdOptimizer``), fitted on
    the training rows and applied to the holdout with the policy's seed.

    The mitigated model needs the protected attribute at decision time and randomizes between two
    thresholds for some groups; the selection report says so, because using a special category of
    personal data for every decision needs its own legal basis (GDPR Art. 9).
    """
    from fairlearn.postprocessing import ThresholdOptimizer

    settings = policy.model.mitigation
    optimizer = ThresholdOptimizer(
        estimator=model,
        constraints=settings.constraint,
        objective=settings.objective,
        prefit=True,
        predict_method="predict_proba",
    )
    optimizer.fit(
        modeling.features(training, policy),
        modeling.labels(training, policy),
        sensitive_features=sensitive_labels(training, attribute, policy),
    )
    x_holdout = modeling.features(holdout, policy)
    groups = sensitive_labels(holdout, attribute, policy)
    # The probability of a favourable decision under the randomized thresholds serves as the score.
    scores = optimizer._pmf_predict(x_holdout, sensitive_features=groups)[:, 1]
    decisions = optimizer.predict(x_holdout, sensitive_features=groups, random_state=policy.seed)
    return Mitigated(attribute, np.asarray(scores, dtype=float), np.asarray(decisions, dtype=int))
