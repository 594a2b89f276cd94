"""Promotion: the registered version becomes the `champion` only when every gate passed."""

import dagster as dg

from mlcomops_assets.assets.explainability import ADDITIVITY_TOLERANCE
from mlcomops_assets.constants import (
    CHAMPION_ALIAS,
    CHAMPION_MODEL,
    FAIRNESS_REPORT,
    MODEL_EVALUATION,
    PROMOTION,
    SHAP_EXPLAINER,
    TRAINED_MODEL,
)
from mlcomops_assets.lib.gates import today
from mlcomops_assets.lib.promotion import GAP_METRICS, Standing, decide, gate_failures, largest_gap
from mlcomops_assets.resources import MlflowSession, ProjectResource


def _champion_standing(mlflow_session: MlflowSession, name: str) -> tuple[str | None, Standing | None]:
    from mlflow.exceptions import MlflowException

    client = mlflow_session.client()
    try:
        current = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None, None
    metrics = client.get_run(current.run_id).data.metrics
    gaps = [v for k, v in metrics.items() if k.startswith(tuple(f"fairness.{m}." for m in GAP_METRICS))]
    return str(current.version), Standing(metrics.get("holdout_roc_auc", 0.0), max(gaps, default=0.0))


@dg.asset(
    key=CHAMPION_MODEL,
    ins={
        "model_record": dg.AssetIn(key=TRAINED_MODEL),
        "evaluation": dg.AssetIn(key=MODEL_EVALUATION),
        "fairness": dg.AssetIn(key=FAIRNESS_REPORT),
        "explainer": dg.AssetIn(key=SHAP_EXPLAINER),
    },
    group_name=PROMOTION,
    kinds={"mlflow"},
    code_version="2",
    tags={"compliance/personal_data": "none", "compliance/control": "human-readable-promotion"},
)
def champion_model(
    context: dg.AssetExecutionContext,
    model_record: dict,
    evaluation: dict,
    fairness: dict,
    explainer: dict,
    project: ProjectResource,
    mlflow_session: MlflowSession,
) -> dg.Output[dict]:
    """The model version that decides in production: the registry alias `champion`.

    A newly registered version gets the alias only if its evaluation, fairness and explainability
    evidence passes every gate of the policy (re-derived here, so a subset run cannot skip a gate) and
    it does not fall behind the current champion beyond the policy's tolerance. Otherwise the run
    fails with a verdict naming each failed gate and its numbers, and the champion stays as it was.
    The previous champion stays registered and can be restored by moving the alias back. A violation
    passes only under a waiver of the policy in force today; the waiver is recorded in the verdict, the
    model version's tags (``waiver.N``) and this asset's metadata.
    """
    policy = project.policy()
    name, version = model_record["registered_name"], model_record["version"]
    for report in (evaluation, fairness, explainer):
        if report["model_uri"] != model_record["model_uri"]:
            raise dg.Failure(
                description=f"evidence is for {report['model_uri']}, not {model_record['model_uri']}: "
                "materialize evaluation, fairness and explainer for this version first"
            )
    on = today()
    failures, waived = gate_failures(evaluation, fairness, explainer, policy, ADDITIVITY_TOLERANCE, on)
    candidate = Standing(evaluation["roc_auc"], largest_gap(fairness))
    previous, champion = _champion_standing(mlflow_session, name)
    if previous == version:
        champion = None  # re-checking the current champion against itself
    verdict = decide(candidate, champion, failures, policy)
    client = mlflow_session.client()
    client.set_model_version_tag(name, version, "promotion.verdict", verdict.text[:5000])
    client.set_model_version_tag(name, version, "promotion.decided_on", on.isoformat())
    for i, text in enumerate(waived):
        client.set_model_version_tag(name, version, f"waiver.{i}", text[:5000])
    if not verdict.promote:
        raise dg.Failure(
            description=f"{name} v{version} {verdict.text}. The champion stays v{previous or '(none)'}.",
            metadata={"candidate_version": version, "champion_version": previous or "(none)"},
        )
    client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    described = client.get_model_version(name, version).description or ""
    client.update_model_version(
        name,
        version,
        description=f"{described}\n\nChampion since {on.isoformat()} (Dagster run {context.run.run_id}, replacing "
        f"v{previous or '(none)'}): {verdict.text}"[:5000],
    )
    client.set_model_version_tag(name, version, "promotion.dagster_run_id", context.run.run_id)
    if previous and previous != version:
        client.set_model_version_tag(name, previous, "promotion.replaced_by", version)
    context.log.info(f"{name} v{version} {verdict.text}" + (f" (waived: {'; '.join(waived)})" if waived else ""))
    record = {
        "registered_name": name,
        "version": version,
        "model_uri": f"models:/{name}@{CHAMPION_ALIAS}",
        "pinned_uri": model_record["model_uri"],
        "previous_champion": previous,
        "verdict": verdict.text,
        "roc_auc": candidate.roc_auc,
        "largest_fairness_gap": candidate.largest_gap,
        "candidate": model_record.get("candidate"),
        "selection_justification": model_record.get("selection_justification"),
        "waivers": waived,
        "decided_on": on.isoformat(),
    }
    return dg.Output(
        record,
        metadata={
            "champion": f"{name} v{version}",
            "previous_champion": f"v{previous}" if previous else "(none)",
            "verdict": verdict.text,
            "roc_auc": candidate.roc_auc,
            "largest_fairness_gap": candidate.largest_gap,
            "candidate": str(model_record.get("candidate")),
            "waivers": "; ".join(waived) or "(none)",
            "mlflow_model_version": dg.MetadataValue.url(mlflow_session.model_version_url(name, version)),
        },
    )
