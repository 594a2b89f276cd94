"""Training: every candidate of the policy tuned and tracked in MLflow; the chosen one registered."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

import mlcomops_assets
from mlcomops_assets.assets.ingestion import RAW_MD5_ATTR
from mlcomops_assets.assets.publish_gate import publish_on_pass
from mlcomops_assets.constants import (
    CANDIDATES_RELOAD_EXACTLY,
    MODEL_CANDIDATES,
    MODEL_REGISTERED,
    MODEL_SELECTION_REPORT,
    PRODUCTION_BATCH,
    TRAINED_MODEL,
    TRAINING,
    TRAINING_DATA,
)
from mlcomops_assets.lib import candidates as candidate_lib
from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.batches import recorded_source, source_identity
from mlcomops_assets.lib.files import fault_point
from mlcomops_assets.lib.lineage import git_commit, registration_mismatches
from mlcomops_assets.lib.model_registry import pip_requirements, trusted_types
from mlcomops_assets.lib.stale_runs import process_tags
from mlcomops_assets.metadata import table
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


def with_labeled_batches(training: pd.DataFrame, batches: dict, policy) -> tuple[pd.DataFrame, dict[str, int]]:
    """The training rows plus the labeled rows of the latest ``retrain_window_batches`` batches (in the
    order the batches were registered), and how many rows each added batch gave."""
    window = policy.monitoring.retrain_window_batches
    if not window or not batches:
        return training, {}
    target = policy.data.target
    labeled = {k: f[f[target].notna()] for k, f in batches.items() if target in f.columns}
    chosen = [k for k in labeled if len(labeled[k])][-window:]
    if not chosen:
        return training, {}
    columns = list(training.columns)
    frames = [training] + [labeled[k].reindex(columns=columns) for k in chosen]
    combined = pd.concat(frames, ignore_index=True)
    combined.attrs = dict(training.attrs)
    return combined, {k: len(labeled[k]) for k in chosen}


@dg.asset(
    key=MODEL_CANDIDATES,
    ins={
        "training": dg.AssetIn(key=TRAINING_DATA),
        # Every validated production batch; only the labeled rows of the latest
        # monitoring.retrain_window_batches are used. Quarantined batches were never written.
        "batches": dg.AssetIn(key=PRODUCTION_BATCH, partition_mapping=dg.AllPartitionMapping()),
    },
    group_name=TRAINING,
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
    training: pd.DataFrame,
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
    import mlflow
    import numpy as np
    from mlflow.models import infer_signature

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
            mlflow.log_params(
                {
                    "candidate": name,
                    "estimator": tuned.spec.estimator,
                    "interpretable": tuned.spec.interpretable,
                    "seed": policy.seed,
                    "cv_folds": policy.model.selection.cv_folds,
                    "cv_rows": tuned.cv_rows,
                    "cv_metric": metric,
                    "decision_threshold": policy.model.decision_threshold,
                    "feature_columns": ",".join(policy.data.feature_columns),
                    "training_cutoff": (
                        str(policy.data.training_cutoff) if policy.data.has_time else "none (no time column)"
                    ),
                    **{f"fixed.{k}": v for k, v in tuned.spec.params.items()},
                    **{f"tuned.{k}": v for k, v in tuned.best_params.items()},
                }
            )
            mlflow.log_metrics(
                {
                    f"cv_{metric}_mean": tuned.cv_mean,
                    f"cv_{metric}_std": tuned.cv_std,
                    "train_rows": float(len(training)),
                    "train_positive_rate": float(np.mean(modeling.labels(training, policy))),
                    "model_parameters": float(size["parameters"]),
                }
            )
            mlflow.log_dict({"metric": metric, "grid": tuned.cv_results}, "selection/cross_validation.json")
            mlflow.set_tag("skops_trusted_types", ",".join(types))
            fault_point(f"mlflow_run:{name}")
            # No input_example: it would copy rows of personal data into the model artifact.
            info = mlflow.sklearn.log_model(
                tuned.model,
                name="model",
                signature=infer_signature(x.head(200), scores),
                skops_trusted_types=types,
                pip_requirements=pip_requirements(),
            )
            run_id, experiment_id = run.info.run_id, run.info.experiment_id
        reloaded = mlflow_session.load_model(info.model_uri)
        sample = x.head(_RELOAD_ROWS)
        if not np.array_equal(reloaded.predict_proba(sample), tuned.model.predict_proba(sample)):
            mismatched.append(name)
        entries.append(
            {
                "name": name,
                "estimator": tuned.spec.estimator,
                "interpretable": tuned.spec.interpretable,
                "model_uri": info.model_uri,
                "run_id": run_id,
                "experiment_id": experiment_id,
                "best_params": tuned.best_params,
                "fixed_params": dict(tuned.spec.params),
                "cv_metric": metric,
                "cv_mean": round(tuned.cv_mean, 5),
                "cv_std": round(tuned.cv_std, 5),
                "cv_results": tuned.cv_results,
                "size": size,
                "skops_trusted_types": types,
            }
        )
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


@dg.asset(
    key=TRAINED_MODEL,
    ins={
        "selection": dg.AssetIn(key=MODEL_SELECTION_REPORT),
        "candidates": dg.AssetIn(key=MODEL_CANDIDATES),
        "training": dg.AssetIn(key=TRAINING_DATA),
    },
    group_name=TRAINING,
    kinds={"scikitlearn", "mlflow"},
    code_version=CODE_VERSION,
    tags={"compliance/personal_data": "none", "compliance/risk": "high"},
    check_specs=[
        dg.AssetCheckSpec(
            MODEL_REGISTERED,
            asset=TRAINED_MODEL,
            blocking=True,
            description="The registered model version loads back from the registry and predicts exactly as "
            "the chosen candidate.",
        )
    ],
)
def trained_model(
    context: dg.AssetExecutionContext,
    selection: dict,
    candidates: dict,
    training: pd.DataFrame,
    project: ProjectResource,
    mlflow_session: MlflowSession,
):
    """The chosen candidate as a new version of the registered model, with the selection's justification
    in its description and tags.

    Registration is refused when the selection report chose no candidate (none passed every gate) or
    was made for other candidates, however this asset is launched. The value stored here is a small
    record naming that exact version; downstream assets load that version, never "latest".
    """
    import numpy as np

    policy = project.policy()
    chosen = selection.get("chosen")
    if chosen is None:
        raise dg.Failure(description=f"nothing to register: {selection['justification']}")
    entry = next((e for e in candidates["candidates"] if e["name"] == chosen), None)
    if entry is None or entry["model_uri"] != selection["chosen_model_uri"]:
        raise dg.Failure(
            description=f"the selection report chose {selection['chosen_model_uri']}, which is not among the current "
            "candidates: materialize model_selection_report for these candidates first"
        )
    import mlflow

    registered_name = policy.model.registered_name
    client = mlflow_session.client()
    latest = context.instance.get_latest_materialization_event(MODEL_CANDIDATES)
    mismatches = registration_mismatches(
        selection, candidates, client.get_run(entry["run_id"]).data.tags, latest.run_id if latest else None
    )
    if mismatches:
        raise dg.Failure(
            description="refused to register a model of mixed lineage: "
            + "; ".join(mismatches)
            + ". Materialize model_candidates, model_selection_report and trained_model together."
        )
    version = str(mlflow.register_model(entry["model_uri"], registered_name).version)
    client.update_model_version(
        registered_name,
        version,
        description=f"Candidate {chosen} ({entry['estimator']}) trained by Dagster run "
        f"{client.get_run(entry['run_id']).data.tags.get('dagster.run_id')} on raw data {candidates['raw_data_md5']} "
        f"with policy {candidates['policy_fingerprint']}. Chosen because: {selection['justification']}",
    )
    version_tags = {
        **client.get_run(entry["run_id"]).data.tags,
        "candidate.name": chosen,
        "candidate.interpretable": str(entry["interpretable"]).lower(),
        "selection.rule": selection["rule"][:5000],
        "selection.justification": selection["justification"][:5000],
        "registered_by.dagster_run_id": context.run.run_id,
        "candidates.dagster_run_id": candidates["dagster_run_id"],
    }
    for key, value in version_tags.items():
        if not key.startswith("mlflow."):
            client.set_model_version_tag(registered_name, version, key, value)

    record = {
        "registered_name": registered_name,
        "version": version,
        "model_uri": f"models:/{registered_name}/{version}",
        "logged_model_uri": entry["model_uri"],
        "run_id": entry["run_id"],
        "experiment_id": entry["experiment_id"],
        "candidates_run_id": candidates["dagster_run_id"],
        "registered_by_run_id": context.run.run_id,
        "candidate": chosen,
        "estimator": entry["estimator"],
        "interpretable": entry["interpretable"],
        "best_params": entry["best_params"],
        "selection_justification": selection["justification"],
        "raw_data_md5": candidates["raw_data_md5"],
        "policy_fingerprint": candidates["policy_fingerprint"],
        "git_commit": candidates["git_commit"],
        "feature_columns": candidates["feature_columns"],
        "trained_at": candidates["trained_at"],
    }

    # Load the registered version back, exactly as downstream consumers will.
    sample = modeling.features(training, policy).head(_RELOAD_ROWS)
    registered = mlflow_session.load_model(record["model_uri"])
    logged = mlflow_session.load_model(entry["model_uri"])
    same = bool(np.array_equal(registered.predict_proba(sample), logged.predict_proba(sample)))
    output = dg.Output(
        record,
        metadata={
            "registered_model": f"{registered_name} v{version}",
            "candidate": chosen,
            "model_uri": record["model_uri"],
            "justification": selection["justification"],
            "mlflow_run": dg.MetadataValue.url(mlflow_session.run_url(entry["experiment_id"], entry["run_id"])),
            "mlflow_model_version": dg.MetadataValue.url(mlflow_session.model_version_url(registered_name, version)),
            "raw_data_md5": candidates["raw_data_md5"],
            "policy_fingerprint": candidates["policy_fingerprint"],
            "git_commit": candidates["git_commit"],
            "estimator": entry["estimator"],
            "params": dg.MetadataValue.json({**entry["fixed_params"], **entry["best_params"]}),
        },
    )
    check = dg.AssetCheckResult(
        check_name=MODEL_REGISTERED,
        passed=same,
        description=(
            f"{record['model_uri']} reloaded from the registry and matched candidate {chosen} on {len(sample)} rows"
            if same
            else f"{record['model_uri']} predictions differ from candidate {chosen} after reload"
        ),
        metadata={"rows_compared": len(sample), "skops_trusted_types": ", ".join(entry["skops_trusted_types"])},
    )
    # Audit before publish: the IO manager writes the record only when the check passed.
    yield from publish_on_pass("the trained model record", [output], [check])
