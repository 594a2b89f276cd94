"""A short summary of the latest materializations, read back from the persistent Dagster instance.

``python -m mlcomops_assets.summary`` prints the data version, the registered model version, the key
metrics, the largest fairness gaps, where production batches come from and where their drift is
measured, the monitored batches of the current data source (drift per batch), the compliance matrix's
counts and the version's audit bundle with the command that verifies it, and where to look next.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlcomops_assets.batch_sources import recorded_source
from mlcomops_assets.constants import (
    AUDIT_BUNDLE,
    BATCH_MONITORING,
    CHAMPION_MODEL,
    COMPLIANCE_MATRIX,
    FAIRNESS_REPORT,
    MODEL_EVALUATION,
    RAW_DATA,
    TRAINED_MODEL,
)
from mlcomops_assets.lib.batches import source_identity
from mlcomops_assets.policy import Policy, PolicyError, load_policy
from mlcomops_assets.settings import ProjectPaths, default_home


def _metadata(instance, key) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _report(paths: ProjectPaths, name: str) -> dict[str, Any]:
    from mlcomops_assets.io_manager import stored_value

    path = stored_value(paths.home, name)  # under data/, or in the team profile's object store
    return json.loads(path.read_text()) if path.exists() else {}


def largest_gaps(fairness: dict[str, Any], top: int = 3) -> list[tuple[str, str, float]]:
    gaps = [
        (attribute, metric, result[metric])
        for attribute, result in fairness.get("attributes", {}).items()
        if result.get("evaluable")
        for metric in ("demographic_parity_difference", "equalized_odds_difference")
    ]
    return sorted(gaps, key=lambda g: g[2], reverse=True)[:top]


def _policy(paths: ProjectPaths) -> Policy | None:
    try:
        return load_policy(paths.policy_file)
    except PolicyError:
        return None  # the run reports the policy error itself; the summary still shows the last good state


def batch_origin(policy: Policy) -> str:
    """Where production batches come from: the data's periods after the cutoff, or the inbox only."""
    spec, inbox = policy.data, policy.monitoring.inbox
    if spec.has_time:
        return f"periods of {spec.time_column} after data.training_cutoff={spec.training_cutoff}, and files in {inbox}"
    return (
        f"from the inbox only ({inbox}): the data has no time column, so training and holdout are a stratified "
        "split of all rows and the data itself has no production period"
    )


def drift_scope(policy: Policy) -> str:
    """Where drift is measured: per production batch in batch_monitoring, the only drift verdict; a period
    of the data is monitored as a batch like an inbox file, so there is no separate per-period report."""
    where = "per production batch (batch_monitoring, in the monitored batch lines): "
    if policy.data.has_time:
        return where + "the periods after the cutoff and the inbox files"
    return where + "inbox files only, the data has no production period of its own"


def batch_source(instance, key: str) -> str | None:
    """The data source of the batch that ``key``'s latest monitoring result read: recorded on the
    production_batch materialization just before it (None when none was recorded)."""
    import dagster as dg

    monitored = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=BATCH_MONITORING, asset_partitions=[key]), limit=1
    ).records
    return recorded_source(instance, key, before_storage_id=monitored[0].storage_id) if monitored else None


def render(paths: ProjectPaths, instance, elapsed: float | None = None, failed_step: str | None = None) -> str:
    raw = _metadata(instance, RAW_DATA)
    model = _metadata(instance, TRAINED_MODEL)
    evaluation = _report(paths, MODEL_EVALUATION.path[-1])
    fairness = _report(paths, FAIRNESS_REPORT.path[-1])
    policy = _policy(paths)
    lines = ["", "=== mlcomops_assets: end-to-end summary ==="]
    if failed_step:
        # Printed after a failure too, so the last good state is in view; it must not read as this run's.
        lines.append(
            f"THIS RUN FAILED      at {failed_step} (reasons above); below are the latest results that "
            "passed their checks, which may predate this run"
        )
    if elapsed is not None:
        lines.append(f"wall time           {elapsed:.0f} s")
    lines.append(f"raw data version    {raw.get('dvc_md5', '(not materialized)')}  (DVC md5 of data/raw)")
    if policy is not None:
        lines.append(f"production batches  {batch_origin(policy)}")
    lines.append(
        f"registered model    {model.get('registered_model', '(not materialized)')}  [{model.get('model_uri', '')}]"
    )
    from mlcomops_assets.io_manager import stored_root, stored_value, value_folder

    selection_file = stored_value(paths.home, "model_selection_report")
    if selection_file.exists():
        selection = json.loads(selection_file.read_text())
        for r in selection.get("candidates", []):
            ci = r["intervals"]["roc_auc"]
            lines.append(
                f"candidate           {r['name']:<40} roc_auc={r['holdout']['roc_auc']:.3f} [{ci['low']:.3f}, "
                f"{ci['high']:.3f}]  gates={'pass' if r['gates']['passed'] else 'FAIL'}"
                + ("" if r.get("deployable", True) else "  (not deployable)")
            )
        lines.append(f"model selection     {selection.get('justification', '')}")
    champion = _metadata(instance, CHAMPION_MODEL)
    lines.append(f"champion            {champion.get('champion', '(none)')}  {champion.get('verdict', '')}")
    if evaluation:
        lines.append(
            "holdout metrics     "
            + "  ".join(f"{m}={evaluation[m]:.3f}" for m in ("roc_auc", "accuracy", "balanced_accuracy", "recall"))
            + f"  (majority-class accuracy {evaluation['majority_class_accuracy']:.3f})"
        )
    for attribute, metric, value in largest_gaps(fairness):
        lines.append(f"fairness gap        {attribute}: {metric} = {value:.3f}")
    if fairness:
        # The gate's own verdict (lib/gates.GateOutcome.verdict): a pass under a waiver names who waived
        # what until when, and something not evaluated is never shown as a pass.
        lines.append(f"fairness verdict    {fairness.get('gate', {}).get('verdict', '(not recorded)')}")
    if evaluation and evaluation.get("gate"):
        lines.append(f"performance verdict {evaluation['gate']['verdict']}")
    if policy is not None:
        lines.append(f"drift               {drift_scope(policy)}")
    monitored = value_folder(stored_root(paths.home), "batch_monitoring")
    # Only the current data source's batches: after a switch of dataset the earlier source's results stay
    # on disk and in the instance, but they say nothing about the model trained on the current data.
    current = source_identity(policy.data) if policy is not None else None
    hidden = {"of another data source": 0, "with no data source recorded": 0}
    for path in sorted(monitored.glob("*.json"), key=str) if monitored.is_dir() else []:
        m = json.loads(path.read_text())
        source = batch_source(instance, m["batch"])
        if current is None or source != current:
            hidden["with no data source recorded" if source is None else "of another data source"] += 1
            continue
        drift = m["data_drift"]
        lines.append(
            f"monitored batch     {m['batch']:<14} rows={m['rows']:<6} model v{m['model_uri'].rsplit('/', 1)[-1]}  "
            f"drift {drift['drifted_columns']}/{len(drift['columns'])} cols  score KS "
            f"{m['prediction_drift']['score_ks']:.3f}  outliers {m['outlier_share']:.1%}  "
            f"alarms={', '.join(m['alarms']) or 'none'}"
        )
    if current is None and sum(hidden.values()):
        lines.append("monitored batches   not listed: the policy does not load, so the current data source is unknown")
    elif sum(hidden.values()):
        counts = ", ".join(f"{n} {why}" for why, n in hidden.items() if n)
        lines.append(f"monitored batches   not listed (not of the current data source, {policy.data.name}): {counts}")
    matrix = _metadata(instance, COMPLIANCE_MATRIX)
    if matrix:
        counts = {k.split(".", 1)[1].replace("_", " "): v for k, v in matrix.items() if k.startswith("requirements.")}
        lines.append("compliance matrix   " + ", ".join(f"{n} {status}" for status, n in counts.items() if n))
    bundle = _metadata(instance, AUDIT_BUNDLE)
    if bundle:
        lines.append(
            f"audit bundle        {bundle['model_version']}: {bundle['items']} items, "
            f"{'promoted' if bundle['promoted'] else 'NOT promoted'}, missing: {bundle['missing_evidence']}"
        )
        lines.append(f"  verify with       {bundle['verify_with']}")
    lines += [
        "",
        "where to look:",
        "  make ui  -> Dagster UI http://127.0.0.1:3000 (lineage, checks, metadata)",
        "           -> MLflow UI http://127.0.0.1:5000 (runs, registered models)",
        "  make audit -> the same, read-only, for auditors and DPOs (ports 3100, 3101, 3102)",
        f"  published evidence -> {paths.published_dir}",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    import dagster as dg

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--elapsed", type=float, default=None, help="wall time of the run, in seconds")
    parser.add_argument("--failed-step", default=None, help="the step of `make run` that failed, if any")
    args = parser.parse_args()
    paths = ProjectPaths(default_home())
    with dg.DagsterInstance.get() as instance:
        print(render(paths, instance, args.elapsed, args.failed_step))


if __name__ == "__main__":
    main()
