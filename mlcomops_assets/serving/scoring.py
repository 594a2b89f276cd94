"""Deciding on validated applications with the champion: score, decision, exact reasons, outlier flags.

Only the policy's feature columns reach the model; pseudonymized identifiers and the protected
attributes accepted for monitoring travel beside them into the decision log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcomops_assets.policy import Policy
from mlcomops_assets.serving.explanations import attribution_records, reasons
from mlcomops_assets.serving.schema import ApplicationSchema

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import BaseModel

    from mlcomops_assets.serving.champion import Champion


def application_frame(inputs: list[dict[str, Any]], policy: Policy) -> pd.DataFrame:
    """The model inputs as the pipeline holds them: one row per application, the feature columns in the
    policy's order, numbers as float (a missing value as NaN), categories as text."""
    import numpy as np
    import pandas as pd

    spec = policy.data
    frame = pd.DataFrame([{name: row.get(name) for name in spec.feature_columns} for row in inputs])
    for name in spec.feature_columns:
        if spec.columns[name].is_numeric:
            frame[name] = pd.to_numeric(frame[name], errors="raise").astype("float64")
        else:
            frame[name] = frame[name].astype("object").where(frame[name].notna(), np.nan)
    return frame


def negative_label(policy: Policy) -> str:
    labels = policy.data.columns[policy.data.target].allowed_values or []
    return next(label for label in labels if label != policy.data.positive_label)


def decide(
    champion: Champion,
    applications: list[BaseModel],
    schema: ApplicationSchema,
    policy: Policy,
    input_key: bytes,
) -> tuple[list[dict], list[bool] | None]:
    """One decision-log entry per application (``DecisionLog.append`` keywords), in order, and the
    outlier flags (None when the outlier watch is off). The whole request is scored, explained and
    screened at once (``serving.fastpath``: the champion's checked fast path, or the pipeline itself)."""
    import pandas as pd

    from mlcomops_assets.lib.modeling import decisions
    from mlcomops_assets.lib.pseudonyms import pseudonymize
    from mlcomops_assets.serving.fastpath import Scorer

    split = [schema.split(application) for application in applications]
    scorer = champion.scorer or Scorer(champion.model, champion.explainer, champion.outliers, policy)
    scored = scorer.score([s[0] for s in split])
    favourable = decisions(scored.scores, policy)
    explained = attribution_records(champion.explainer, scored.outputs, scored.contributions, policy)
    # Identifiers: one keyed pseudonym per value, column by column (in name order, as stored).
    pseudonyms: list[dict[str, Any]] = [{} for _ in split]
    for name in sorted({n for _, identifiers, _ in split for n in identifiers}):
        having = [i for i, (_, identifiers, _) in enumerate(split) if name in identifiers]
        values = pd.Series([split[i][1][name] for i in having])
        for i, pseudonym in zip(having, pseudonymize(values, input_key).tolist(), strict=True):
            pseudonyms[i][name] = pseudonym
    adverse = negative_label(policy)
    threshold = float(policy.model.decision_threshold)
    entries = []
    for i, (features, _, protected) in enumerate(split):
        good = bool(favourable[i])
        entries.append(
            {
                "model_name": champion.name,
                "model_version": champion.version,
                "artifact_sha256": champion.artifact_sha256,
                "inputs": features,
                "identifiers": pseudonyms[i],
                "protected": protected,
                "score": float(scored.scores[i]),
                "decision": policy.data.positive_label if good else adverse,
                "favourable": good,
                "threshold": threshold,
                "reasons": reasons(explained[i], policy),
                "attribution": explained[i],
                "explanation": None if good else policy.serving.explanation_text,
                "retention_days": policy.serving.retention_days,
            }
        )
    return entries, scored.flags


def warm_up_row(policy: Policy) -> dict[str, Any]:
    """A plausible application (first allowed value, middle of the range) to try a new champion on before
    it is swapped in."""
    row: dict[str, Any] = {}
    for name in policy.data.feature_columns:
        column = policy.data.columns[name]
        if column.allowed_values:
            row[name] = column.allowed_values[0]
        elif column.is_numeric:
            low = column.min if column.min is not None else 0.0
            high = column.max if column.max is not None else low
            row[name] = (low + high) / 2
        else:
            row[name] = ""
    return row
