"""Per-person explanations: exact SHAP contributions of the verified champion, in the input columns' names.

**Which explainer.** The pipeline saves the champion's explainer as a joblib pickle under
``data/explainers/``, but no signed record carries that file's hash: the signed promotion record hashes
the ``shap_explainer`` *evidence* (``data/published/reports/shap_explainer.json``: the explainer's type,
its base value, the model it explains), not the pickle. Unpickling a file nobody vouches for would run
whatever code it holds, so the service never loads it. It rebuilds the explainer in-process, from the
model whose artifact hash it has just verified, with ``lib.explain.build_explainer`` exactly as the
``shap_explainer`` asset does:

- trees (TreeExplainer, path-dependent): from the fitted trees alone, no data;
- linear models (LinearExplainer): with the pipeline's background, the mean transformed row of the
  holdout sample the asset explained (``data/prepared/holdout_data.parquet``, sampled with the policy's
  seed and ``explainability.sample_size``).

When the evidence file on disk is still the one the version's promotion record signed (same SHA-256)
and names this version, the rebuilt explainer must reproduce its type and base value, or the version is
refused. A later training run replaces that file; then the comparison is skipped and ``/ready`` says so.
Either way the contributions are exact for the served model: every decision checks that base value plus
contributions equals the model's explained output (log-odds, or probability for a single tree) within
``gates.explainability.max_additivity_error``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlcomops_assets.lib.files import file_sha256
from mlcomops_assets.lib.promotion_record import ChampionIntegrityError, PromotionRecord
from mlcomops_assets.policy import Policy
from mlcomops_assets.settings import ProjectPaths

if TYPE_CHECKING:
    import pandas as pd

EVIDENCE_NAME = "shap_explainer.json"
# Base values are computed by the same code on the same rows: they agree to the last bits.
_BASE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ServedExplainer:
    explainer: Any
    scale: str  # "log_odds" or "probability": what base value + contributions add up to
    base_value: float
    provenance: dict = field(default_factory=dict)


def signed_evidence(paths: ProjectPaths, record: PromotionRecord) -> tuple[dict | None, str]:
    """The ``shap_explainer`` evidence the promotion record signed, if the file on disk is still it and
    names this version; else None and why not."""
    key = next((k for k in record.evidence_sha256 if k.endswith("/" + EVIDENCE_NAME)), None)
    if key is None:
        return None, "the promotion record lists no shap_explainer evidence"
    path = paths.home / key
    if not path.is_file():
        return None, f"{key} is missing"
    if file_sha256(path) != record.evidence_sha256[key]:
        return None, f"{key} is no longer the file signed at promotion (a later training run replaced it)"
    evidence = json.loads(path.read_text(encoding="utf-8"))
    wanted = f"models:/{record.registered_name}/{record.version}"
    if evidence.get("model_uri") != wanted:
        return None, f"{key} describes {evidence.get('model_uri')}, not {wanted}"
    return evidence, f"{key} (SHA-256 {record.evidence_sha256[key][:12]}..., signed in the promotion record)"


def _background(model: Any, paths: ProjectPaths, policy: Policy) -> tuple[pd.DataFrame, str]:
    """The rows the ``shap_explainer`` asset explained (and a linear explainer averages)."""
    from mlcomops_assets.io_manager import read_parquet, stored_value

    holdout = stored_value(paths.home, "holdout_data", ".parquet")  # data/, or the team's object store
    if not holdout.is_file():
        raise ChampionIntegrityError(
            f"cannot rebuild the linear explainer: its background, the holdout ({holdout}), is missing"
        )
    frame = read_parquet(holdout)
    if len(frame) > policy.explainability.sample_size:
        frame = frame.sample(policy.explainability.sample_size, random_state=policy.seed)
    return frame, f"the mean transformed row of {len(frame)} holdout rows (as the shap_explainer asset)"


def rebuild_explainer(model: Any, paths: ProjectPaths, policy: Policy, record: PromotionRecord) -> ServedExplainer:
    """The exact SHAP explainer of the verified ``model``, checked against the signed evidence when it is
    still on disk. Raises ``ChampionIntegrityError`` when it cannot be rebuilt or does not match."""
    import numpy as np

    from mlcomops_assets.lib import explain
    from mlcomops_assets.lib.families import family_of

    kind = family_of(model[-1]).explainer
    if kind == "tree_path_dependent":
        background, how = None, "none: the fitted trees' node statistics (path-dependent TreeExplainer)"
    else:
        background, how = _background(model, paths, policy)
    explainer = explain.build_explainer(model, background, policy)
    scale = explain.output_scale(model)
    base = float(np.ravel(explainer.expected_value)[-1])
    evidence, note = signed_evidence(paths, record)
    where = f"{record.registered_name} v{record.version}"
    provenance = {
        "source": "rebuilt in the service from the verified model (the saved explainer file is never unpickled: "
        "no signed record carries its hash)",
        "explainer_type": type(explainer).__name__,
        "scale": scale,
        "base_value": base,
        "background": how,
        "signed_evidence": note,
        "matches_signed_evidence": None,
    }
    if evidence is not None:
        recorded = evidence.get(f"base_{scale}")
        if evidence.get("explainer_type") != type(explainer).__name__:
            raise ChampionIntegrityError(
                f"{where}: the rebuilt explainer is a {type(explainer).__name__}, the signed evidence names "
                f"a {evidence.get('explainer_type')}"
            )
        if not isinstance(recorded, int | float) or abs(float(recorded) - base) > _BASE_TOLERANCE:
            raise ChampionIntegrityError(
                f"{where}: the explainer rebuilt from the verified model has base value {base!r}, the signed "
                f"evidence records {recorded!r}: its background (the holdout) is not the one the pipeline used"
            )
        provenance["matches_signed_evidence"] = True
    return ServedExplainer(explainer, scale, base, provenance)


def attributions(served: ServedExplainer, model: Any, frame: pd.DataFrame, policy: Policy) -> list[dict]:
    """Per row: the base value, the explained output and the exact contribution of every input column
    (the transformed features' SHAP values summed back to their column, ``lib.explain.source_feature``).
    Raises ``ValueError`` if base + contributions do not add up to the output within the policy's bound."""
    import numpy as np

    from mlcomops_assets.lib import explain

    values = explain.shap_values(served.explainer, model, frame, policy)
    columns = policy.data.feature_columns
    sources = [explain.source_feature(name, columns) for name in values.columns]
    by_column = values.T.groupby(sources, sort=False).sum().T
    outputs = np.asarray(explain.explained_output(model, frame, policy), dtype=float)
    limit = policy.gates.explainability.max_additivity_error
    out = []
    for i, (_, row) in enumerate(by_column.iterrows()):
        contributions = {name: float(row[name]) if name in row.index else 0.0 for name in columns}
        error = abs(served.base_value + sum(contributions.values()) - float(outputs[i]))
        if not error <= limit:
            raise ValueError(f"explanation not faithful: |base + sum - output| = {error:.3g} > {limit:g}")
        out.append(
            {
                "scale": served.scale,
                "base_value": served.base_value,
                "value": float(outputs[i]),
                "contributions": contributions,
            }
        )
    return out


def attribution_records(served: ServedExplainer, outputs: Any, contributions: Any, policy: Policy) -> list[dict]:
    """``attributions`` from arrays computed for a whole request at once (``serving.fastpath.Scored``):
    ``outputs`` one explained output per row, ``contributions`` one row per application and one column per
    input column (the policy's order). The additivity check runs for every row at once, with the same
    arithmetic as ``attributions``; ``ValueError`` if any row is off by more than the policy's bound."""
    import numpy as np

    columns = policy.data.feature_columns
    outputs = np.asarray(outputs, dtype=float)
    contributions = np.asarray(contributions, dtype=float)
    total = np.zeros(len(outputs))
    for k in range(len(columns)):  # summed column by column, in order, as sum() over a row's values
        total = total + contributions[:, k]
    errors = np.abs(served.base_value + total - outputs)
    limit = policy.gates.explainability.max_additivity_error
    if not np.all(errors <= limit):
        worst = float(np.max(np.where(np.isnan(errors), np.inf, errors)))
        raise ValueError(f"explanation not faithful: |base + sum - output| = {worst:.3g} > {limit:g}")
    return [
        {
            "scale": served.scale,
            "base_value": served.base_value,
            "value": value,
            "contributions": dict(zip(columns, row, strict=True)),
        }
        for value, row in zip(outputs.tolist(), contributions.tolist(), strict=True)
    ]


def reasons(attribution: dict, policy: Policy) -> list[dict]:
    """The ``serving.top_reasons`` largest contributions (by absolute value), each with the direction it
    pushed the decision: towards the favourable outcome or away from it. No input value is repeated."""
    ranked = sorted(
        ((name, value) for name, value in attribution["contributions"].items() if value != 0.0),
        key=lambda item: abs(item[1]),
        reverse=True,
    )
    columns = policy.data.columns
    return [
        {
            "feature": name,
            "description": columns[name].description,
            "contribution": value,
            "direction": "favourable" if value > 0 else "unfavourable",
        }
        for name, value in ranked[: policy.serving.top_reasons]
    ]
