"""Registration: the candidate the selection report chose, as a new version of the registered model."""

import dagster as dg

from mlcomops_assets.constants import (
    MODEL,
    MODEL_CANDIDATES,
    MODEL_REGISTERED,
    MODEL_SELECTION_REPORT,
    TRAINED_MODEL,
    TRAINING_DATA,
)
from mlcomops_assets.lib.lineage import registration_mismatches
from mlcomops_assets.publish_gate import publish_on_pass
from mlcomops_assets.resources import MlflowSession, ProjectResource

# Moved out of training.py unchanged, so it keeps the version it had there.
CODE_VERSION = "3"
_RELOAD_ROWS = 500


@dg.asset(
    key=TRAINED_MODEL,
    ins={
        "selection": dg.AssetIn(key=MODEL_SELECTION_REPORT),
        "candidates": dg.AssetIn(key=MODEL_CANDIDATES),
        "training": dg.AssetIn(key=TRAINING_DATA),
    },
    group_name=MODEL,
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
    training,
    project: ProjectResource,
    mlflow_session: MlflowSession,
):
    """The chosen candidate as a new version of the registered model, with the selection's justification
    in its description and tags.

    Registration is refused when the selection report chose no candidate (none passed every gate) or
    was made for other candidates, however this asset is launched. The value stored here is a small
    record naming that exact version; downstream assets load that version, never "latest".
    """
    from mlcomops_assets.lib import modeling
    from mlcomops_assets.lib.candidates import predicts_identically

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
    version = mlflow_session.register_model(entry["model_uri"], registered_name)
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

    # Load the registered version back, exactly as downstream consumers will; its artifact's hash binds
    # the evidence made downstream (evaluation, fairness, SHAP, promotion) to these exact bytes.
    sample = modeling.features(training, policy).head(_RELOAD_ROWS)
    registered, record["artifact_sha256"] = mlflow_session.load_model_with_hash(record["model_uri"])
    logged = mlflow_session.load_model(entry["model_uri"])
    same = predicts_identically(registered, logged, sample)
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
            "artifact_sha256": record["artifact_sha256"],
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
