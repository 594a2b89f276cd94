"""Data drift with Evidently: training reference against one production batch, methods pinned."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlcomops_assets.lib.gates import DRIFT_SHARE, exceeds
from mlcomops_assets.policy import Policy


def monitored_columns(policy: Policy) -> tuple[list[str], list[str]]:
    """(numerical, categorical) columns watched for drift: features and protected attributes."""
    spec = policy.data
    watched = list(dict.fromkeys(spec.feature_columns + spec.protected_attributes))
    numerical = [c for c in watched if spec.columns[c].is_numeric]
    categorical = [c for c in watched if not spec.columns[c].is_numeric]
    return numerical, categorical


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, policy: Policy, html_target: Path) -> dict:
    """Run the drift preset and write a self-contained HTML report; returns per-column results."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    gate = policy.gates.drift
    numerical, categorical = monitored_columns(policy)
    columns = numerical + categorical
    if len(reference) > gate.reference_sample_size:
        reference = reference.sample(gate.reference_sample_size, random_state=policy.seed)
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    report = Report(
        [
            DataDriftPreset(
                columns=columns,
                num_method=gate.num_method,
                cat_method=gate.cat_method,
                threshold=gate.column_threshold,
                drift_share=gate.drift_share,
            )
        ],
        include_tests=True,
    )
    # Evidently takes the current data first and the reference second.
    snapshot = report.run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    snapshot.save_html(str(html_target))
    payload = snapshot.dict()
    per_column = []
    drifted_count = 0
    for metric in payload["metrics"]:
        config = metric["config"]
        column = config.get("column")
        if column is None or "method" not in config:
            continue
        score = float(metric["value"])
        # Distances (wasserstein, jensenshannon, psi) drift at or above the threshold; p-values below it.
        p_value = config["method"].lower().startswith(("k-s", "chi", "z-test", "ks"))
        drifted = score < config["threshold"] if p_value else score >= config["threshold"]
        drifted_count += int(drifted)
        per_column.append(
            {
                "column": column,
                "method": config["method"],
                "threshold": float(config["threshold"]),
                "score": round(score, 6),
                "drifted": bool(drifted),
            }
        )
    # Decided on the share as reported, by the same rule as batch monitoring's gate (lib/gates.py).
    share = round(drifted_count / len(per_column), 4) if per_column else 0.0
    return {
        "reference_rows": int(len(reference)),
        "current_rows": int(len(current)),
        "drifted_columns": drifted_count,
        "drift_share": share,
        "dataset_drift": exceeds(DRIFT_SHARE, share, gate.drift_share),
        "columns": sorted(per_column, key=lambda c: c["column"]),
    }
