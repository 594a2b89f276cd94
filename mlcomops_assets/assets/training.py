"""Training: the scikit-learn pipeline fitted with the policy's seed, tracked and registered in MLflow."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

import mlcomops_assets
from mlcomops_assets.assets.ingestion import RAW_MD5_ATTR
from mlcomops_assets.constants import MODEL_REGISTERED, TRAINED_MODEL, TRAINING, TRAINING_DATA
from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.lineage import git_commit
from mlcomops_assets.lib.model_registry import pip_requirements, trusted_types
from mlcomops_assets.resources import MlflowSession, ProjectResource

CODE_VERSION = "1"
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
    }


@dg.asset(
    key=TRAINED_MODEL,
    ins={"training": dg.AssetIn(key=TRAINING_DATA)},
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
            "the fitted pipeline.",
        )
    ],
)
def trained_model(
    context: dg.AssetExecutionContext,
    training: pd.DataFrame,
    project: ProjectResource,
    mlflow_session: MlflowSession,
):
    """The decision model: a scikit-learn pipeline (preprocessing + estimator from the policy).

    Each materialization is one MLflow run with params, training metrics, the model signature and tags
    linking back to the Dagster run, asset, code version, raw-data MD5, policy fingerprint and git
    commit; the model becomes a new version of the registered model. The value stored here is a small
    record naming that exact version; downstream assets load that version, never "latest".
    """
    import mlflow
    import numpy as np
    from mlflow.models import infer_signature

    policy = project.policy()
    raw_md5 = training.attrs.get(RAW_MD5_ATTR, "unknown")
    x, y = modeling.features(training, policy), modeling.labels(training, policy)
    model = modeling.build_pipeline(policy).fit(x, y)
    scores = model.predict_proba(x)[:, 1]
    train_metrics = {
        "train_accuracy": float(np.mean((scores >= policy.model.decision_threshold) == y)),
        "train_rows": float(len(training)),
        "train_positive_rate": float(np.mean(y)),
    }
    types = trusted_types(model)
    tags = lineage_tags(context, raw_md5, policy.fingerprint)
    registered_name = policy.model.registered_name
    with mlflow_session.start_run(policy.model.experiment_name, f"train-{context.run.run_id[:8]}", tags) as run:
        mlflow.log_params(
            {
                "estimator": policy.model.estimator,
                "seed": policy.seed,
                "decision_threshold": policy.model.decision_threshold,
                "feature_columns": ",".join(policy.data.feature_columns),
                "training_cutoff": str(policy.data.training_cutoff),
                **{f"model.{k}": v for k, v in policy.model.params.items()},
            }
        )
        mlflow.log_metrics(train_metrics)
        mlflow.set_tag("skops_trusted_types", ",".join(types))
        # No input_example: it would copy rows of personal data into the model artifact.
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x.head(200), scores[:200]),
            registered_model_name=registered_name,
            skops_trusted_types=types,
            pip_requirements=pip_requirements(),
        )
        run_id, experiment_id = run.info.run_id, run.info.experiment_id
    version = str(info.registered_model_version)
    client = mlflow_session.client()
    client.update_model_version(
        registered_name,
        version,
        description=f"Trained by Dagster run {context.run.run_id} on raw data {raw_md5} "
        f"with policy {policy.fingerprint}.",
    )
    for key, value in tags.items():
        client.set_model_version_tag(registered_name, version, key, value)

    record = {
        "registered_name": registered_name,
        "version": version,
        "model_uri": f"models:/{registered_name}/{version}",
        "run_id": run_id,
        "experiment_id": experiment_id,
        "raw_data_md5": raw_md5,
        "policy_fingerprint": policy.fingerprint,
        "git_commit": tags["git.commit"],
        "estimator": policy.model.estimator,
        "feature_columns": policy.data.feature_columns,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }

    # Load the registered version back, exactly as downstream consumers will.
    reloaded = mlflow.sklearn.load_model(record["model_uri"])
    sample = x.head(500)
    same = bool(np.array_equal(reloaded.predict_proba(sample), model.predict_proba(sample)))
    yield dg.Output(
        record,
        metadata={
            "registered_model": f"{registered_name} v{version}",
            "model_uri": record["model_uri"],
            "mlflow_run": dg.MetadataValue.url(mlflow_session.run_url(experiment_id, run_id)),
            "mlflow_model_version": dg.MetadataValue.url(mlflow_session.model_version_url(registered_name, version)),
            "raw_data_md5": raw_md5,
            "policy_fingerprint": policy.fingerprint,
            "git_commit": tags["git.commit"],
            "estimator": policy.model.estimator,
            "params": dg.MetadataValue.json(dict(policy.model.params)),
            **{k: float(v) for k, v in train_metrics.items()},
        },
    )
    yield dg.AssetCheckResult(
        check_name=MODEL_REGISTERED,
        passed=same,
        description=(
            f"{record['model_uri']} reloaded from the registry and matched the fitted pipeline on {len(sample)} rows"
            if same
            else f"{record['model_uri']} predictions differ from the fitted pipeline after reload"
        ),
        metadata={"rows_compared": len(sample), "skops_trusted_types": ", ".join(types)},
    )
