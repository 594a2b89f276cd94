"""Explainability: a SHAP explainer for the registered model, persisted to explain single decisions later."""

import dagster as dg

from mlcomops_assets.check_metadata import outcome, with_limit
from mlcomops_assets.constants import (
    EVIDENCE,
    EXPLANATIONS_ARE_FAITHFUL,
    HOLDOUT_DATA,
    SHAP_EXPLAINER,
    TRAINED_MODEL,
)
from mlcomops_assets.lib.files import write_atomic
from mlcomops_assets.lib.gates import Status
from mlcomops_assets.metadata import table
from mlcomops_assets.publish_gate import publish_on_pass
from mlcomops_assets.resources import MlflowSession, ProjectResource

# SHAP values must add up to the model's log-odds; float error is ~1e-14, so this is a strict bound.


@dg.asset(
    key=SHAP_EXPLAINER,
    ins={"model_record": dg.AssetIn(key=TRAINED_MODEL), "holdout": dg.AssetIn(key=HOLDOUT_DATA)},
    group_name=EVIDENCE,
    kinds={"shap", "mlflow"},
    code_version="3",
    tags={"compliance/personal_data": "none", "compliance/control": "explanation"},
    check_specs=[
        dg.AssetCheckSpec(
            EXPLANATIONS_ARE_FAITHFUL,
            asset=SHAP_EXPLAINER,
            blocking=True,
            description="Base value plus SHAP values reproduce the model's log-odds on the explained rows.",
        )
    ],
)
def shap_explainer(model_record: dict, holdout, project: ProjectResource, mlflow_session: MlflowSession):
    """The exact SHAP explainer for the registered model (TreeExplainer for trees, LinearExplainer for
    linear models) on transformed feature names, with global mean |SHAP| per feature as a table and
    a PNG plot. The explainer keeps no training row (path-dependent trees; the mean row as a linear
    background); it is saved under ``data/explainers/`` and in the model's MLflow run, never in the
    publication folder, so one person's decision can be explained later with
    ``lib.explain.explain_decision``. Only the plot is published."""
    import joblib
    import numpy as np

    from mlcomops_assets.lib import explain

    policy = project.policy()
    model = mlflow_session.load_model(model_record["model_uri"], model_record.get("artifact_sha256"))
    sample = holdout
    if len(holdout) > policy.explainability.sample_size:
        sample = holdout.sample(policy.explainability.sample_size, random_state=policy.seed)
    explainer = explain.build_explainer(model, sample, policy)
    values = explain.shap_values(explainer, model, sample, policy)
    importance = explain.global_importance(values, policy)

    # Faithfulness: SHAP explains the model's output for the favourable class on its family's scale
    # (log-odds for linear models and boosting, the probability for a single tree).
    scale = explain.output_scale(model)
    margin = explain.explained_output(model, sample, policy)
    base = float(np.ravel(explainer.expected_value)[-1])
    additivity_error = float(np.max(np.abs(base + values.sum(axis=1).to_numpy() - margin)))
    limit = policy.gates.explainability.max_additivity_error
    passed = additivity_error <= limit
    verdict = (
        f"max |base + sum(SHAP) - {scale.replace('_', '-')}| = {additivity_error:.2e} over {len(sample)} rows "
        f"(gates.explainability.max_additivity_error {limit:g})"
    )
    check = dg.AssetCheckResult(
        check_name=EXPLANATIONS_ARE_FAITHFUL,
        passed=passed,
        description=verdict,
        metadata={
            **outcome(Status.PASSED if passed else Status.FAILED, verdict),
            **with_limit("additivity_error", additivity_error, limit),
            "rows": len(sample),
        },
    )
    if not check.passed:
        # Audit before publish: an unfaithful explainer and its plot are never written.
        yield from publish_on_pass("the SHAP explainer and its plot", [], [check])
        return

    # The explainer is a model-side object: kept beside the models, never in the publication folder;
    # only its plot is published.
    stem = f"{model_record['registered_name']}-v{model_record['version']}"
    explainer_path = write_atomic(
        project.paths.explainers_dir / f"{stem}.explainer.joblib", lambda p: joblib.dump(explainer, p)
    )
    folder = project.paths.reports_dir / "explainability"
    plot_path = write_atomic(
        folder / f"{stem}.importance.png",
        lambda p: explain.plot_importance(importance, p, policy.explainability.top_features, scale=scale),
    )
    for stale in project.paths.explainers_dir.glob("*.joblib"):
        if stale != explainer_path:
            stale.unlink()  # earlier versions' explainers live on in their MLflow runs
    for stale in folder.glob("*.png"):
        if stale != plot_path:
            stale.unlink()
    client = mlflow_session.client()
    client.log_artifact(model_record["run_id"], str(explainer_path), "explainability")
    client.log_artifact(model_record["run_id"], str(plot_path), "explainability")

    top = importance.head(policy.explainability.top_features)
    record = {
        "model_uri": model_record["model_uri"],
        "explainer_type": type(explainer).__name__,
        "explainer_path": str(explainer_path.relative_to(project.paths.home)),
        "plot_path": str(plot_path.relative_to(project.paths.home)),
        "rows_explained": int(len(sample)),
        f"base_{scale}": base,
        "additivity_error": additivity_error,
        "global_importance": [
            {"feature": r.feature, "source_column": r.source_column, "mean_abs_shap": round(float(r.mean_abs_shap), 6)}
            for r in importance.itertuples()
        ],
    }
    plot_md = f"![global importance](data:image/png;base64,{_b64(plot_path)})"
    yield dg.Output(
        record,
        metadata={
            "explainer_type": record["explainer_type"],
            "model_uri": model_record["model_uri"],
            "rows_explained": len(sample),
            "global_importance": table(record["global_importance"][: len(top)]),
            "importance_plot": dg.MetadataValue.md(plot_md),
            "plot": dg.MetadataValue.url(project.report_link(plot_path)),
            "plot_path": dg.MetadataValue.path(str(plot_path)),
            "explainer_path": dg.MetadataValue.path(str(explainer_path)),
        },
    )
    # The published plot of this explainer, linked from the check too (written only once it passed).
    yield check.with_metadata({**check.metadata, "plot": dg.MetadataValue.url(project.report_link(plot_path))})


def _b64(path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode()
