"""Model candidates: every candidate of the policy tuned on the training rows and tracked in MLflow."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

import mlcomops_assets
from mlcomops_assets.batch_sources import recorded_source
from mlcomops_assets.constants import (
    CANDIDATES_RELOAD_EXACTLY,
    MODEL,
    MODEL_CANDIDATES,
    PRODUCTION_BATCH,
    RAW_MD5_ATTR,
    TRAINING_DATA,
)
from mlcomops_assets.lib.batches import source_identity, with_labeled_batches
from mlcomops_assets.lib.files import fault_point
from mlcomops_assets.lib.lineage import git_commit
from mlcomops_assets.lib.model_registry import trusted_types
from mlcomops_assets.lib.stale_runs import process_tags
from mlcomops_assets.metadata import table
from mlcomops_assets.publish_gate import publish_on_pass
from mlcomops_assets.resources import MlflowSession, ProjectResource

CODE_VERSION = "3"
_RELOAD_ROWS = 500
_REPO = Path(mlcomops_assets.__file__).resolve().parent.parent


def lineage_tags(context: dg.AssetExecutionContext, raw_md5: str, policy_fingerprint: str) -> dict[str, str]:
    """Tags that tie an MLflow run back to Dagster, the data version and the code version."""
    return {
        "dagster.run_id": context.run.run_id,
        "dagster.asset_key": context.asset_key.to_user_string(),
        "dagster.code_version": CODE_VERSION,
        "data.raw_md5": raw_md5,
        "policy.fingerprint": policy_fingerprint,
        "git.commit": git_commit(_REPO),
        # The process, so a run left RUNNING by a kill can be proven orphaned (lib.stale_runs).
        **process_tags(),
    }


@dg.asset(
    key=MODEL_CANDIDATES,
    ins={
        "training": dg.AssetIn(key=TRAINING_DATA),
        # Every validated production batch; only the labeled rows of the latest
        # monitoring.retrain_window_batches are used. Quarantined batches were never written.
        "batches": dg.AssetIn(key=PRODUCTION_BATCH, partition_mapping=dg.AllPartitionMapping()),
    },
    group_name=MODEL,
    kinds={"scikitlearn", "mlflow"},
    code_version=CODE_VERSION,
    tags={"compliance/personal_data": "none", "compliance/risk": "high"},
    check_specs=[
        dg.AssetCheckSpec(
            CANDIDATES_RELOAD_EXACTLY,
            asset=MODEL_CANDIDATES,
            blocking=True,
            description="Every candidate logged to MLflow loads back and predicts exactly as the fitted pipeline.",
        )
    ],
)
def model_candidates(
    context: dg.AssetExecutionContext,
    training,
    batches: dict,
    project: ProjectResource,
    mlflow_session: MlflowSession,
):
    """Every model family of the policy (at least an interpretable one and a higher-capacity one), fitted on
    the same training rows with the same seed, hyperparameters chosen by stratified cross-validation on
    the training rows only. Retraining adds the labeled rows of the latest
    ``monitoring.retrain_window_batches`` validated production batches; which batches and how many rows
    is recorded in the metadata and the MLflow runs.

    Each candidate is one MLflow run with its tuned and fixed params, cross-validation scores, the model
    (skops, with an explicit list of trusted scikit-learn/numpy types), its signature and tags linking
    back to the Dagster run, asset, code version, raw-data MD5, policy fingerprint and git commit.
    """
    from mlcomops_assets.lib import candidates as candidate_lib
    from mlcomops_assets.lib import modeling

    policy = project.policy()
    raw_md5 = training.attrs.get(RAW_MD5_ATTR, "unknown")
    # Only batches of the data source the policy names: after a switch of dataset, the previous source's
    # labeled batches (same partition keys, other columns and meaning) must not enter training.
    current = source_identity(policy.data)
    ours = {k: f for k, f in batches.items() if recorded_source(context.instance, k) == current}
    if len(ours) < len(batches):
        context.log.info(f"{len(batches) - len(ours)} production batch(es) of another data source left out")
    training, added = with_labeled_batches(training, ours, policy)
    x = modeling.features(training, policy)
    tags = lineage_tags(context, raw_md5, policy.fingerprint)
    batches_tag = ",".join(f"{k}:{n}" for k, n in added.items()) or "(none)"
    metric = policy.model.selection.metric
    entries, mismatched = [], []
    for name in policy.model.candidates:
        tuned = candidate_lib.tune(name, training, policy)
        # Only the signature needs scores: 200 rows, not the whole training set.
        scores = tuned.model.predict_proba(x.head(200))[:, 1]
        types = trusted_types(tuned.model)
        size = candidate_lib.model_size(tuned.model)
        run_name = f"{name}-{context.run.run_id[:8]}"
        run_tags = {**tags, "candidate.name": name, "data.batches": batches_tag}
        with mlflow_session.start_run(policy.model.experiment_name, run_name, run_tags) as run:
            mlflow_session.log_to_active_run(
                params=candidate_lib.run_params(tuned, policy),
                metrics=candidate_lib.run_metrics(tuned, training, size, policy),
                documents={"selection/cross_validation.json": {"metric": metric, "grid": tuned.cv_results}},
                tags={"skops_trusted_types": ",".join(types)},
            )
            fault_point(f"mlflow_run:{name}")
            model_uri = mlflow_session.log_model_to_active_run(tuned.model, x.head(200), scores, types)
            logged = {"model_uri": model_uri, "run_id": run.info.run_id, "experiment_id": run.info.experiment_id}
        sample = x.head(_RELOAD_ROWS)
        if not candidate_lib.predicts_identically(mlflow_session.load_model(model_uri), tuned.model, sample):
            mismatched.append(name)
        entries.append(candidate_lib.candidate_entry(tuned, size, types, logged, policy))
    record = {
        "candidates": entries,
        # Which run produced these candidates: selection and registration check they agree.
        "dagster_run_id": context.run.run_id,
        "raw_data_md5": raw_md5,
        "policy_fingerprint": policy.fingerprint,
        "git_commit": tags["git.commit"],
        "feature_columns": policy.data.feature_columns,
        "training_rows": len(training),
        "production_batches": added,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    output = dg.Output(
        record,
        metadata={
            "candidates": table(
                [
                    {
                        "candidate": e["name"],
                        "interpretable": e["interpretable"],
                        "tuned": ", ".join(f"{k}={v}" for k, v in e["best_params"].items()),
                        f"cv_{metric}": e["cv_mean"],
                        "cv_std": e["cv_std"],
                        "parameters": e["size"]["parameters"],
                    }
                    for e in entries
                ]
            ),
            **{
                f"mlflow_run/{e['name']}": dg.MetadataValue.url(mlflow_session.run_url(e["experiment_id"], e["run_id"]))
                for e in entries
            },
            "raw_data_md5": raw_md5,
            "policy_fingerprint": policy.fingerprint,
            "git_commit": tags["git.commit"],
            "training_rows": len(training),
            "production_batches_added": batches_tag,
        },
    )
    check = dg.AssetCheckResult(
        check_name=CANDIDATES_RELOAD_EXACTLY,
        passed=not mismatched,
        description=(
            f"predictions differ after reload for {', '.join(mismatched)}"
            if mismatched
            else f"{len(entries)} candidates reloaded from MLflow and matched their fitted pipelines on "
            f"{min(_RELOAD_ROWS, len(x))} rows"
        ),
        metadata={"candidates": len(entries), "mismatched": len(mismatched)},
    )
    # Audit before publish: the IO manager writes the record only when the check passed.
    yield from publish_on_pass("the candidates record", [output], [check])
