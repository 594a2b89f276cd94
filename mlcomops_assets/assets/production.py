"""Production: each validated batch scored by the champion, with the exact model version that decided."""

import dagster as dg

from mlcomops_assets.constants import BATCH_PREDICTIONS, PRODUCTION, PRODUCTION_BATCH, PRODUCTION_BATCHES
from mlcomops_assets.resources import MlflowSession, ProjectResource


@dg.asset(
    key=BATCH_PREDICTIONS,
    ins={"batch": dg.AssetIn(key=PRODUCTION_BATCH)},
    partitions_def=PRODUCTION_BATCHES,
    group_name=PRODUCTION,
    kinds={"scikitlearn", "mlflow", "parquet"},
    code_version="2",
    tags={"compliance/personal_data": "pseudonymous", "compliance/control": "automated-decision"},
)
def batch_predictions(
    context: dg.AssetExecutionContext, batch, project: ProjectResource, mlflow_session: MlflowSession
):
    """The champion's score and decision for every row of the batch, stored with the exact registered
    model version that produced them (the alias is resolved once, before scoring). The champion is used
    only as the pipeline promoted it: its signed promotion record must verify, the alias must point at
    the version promoted last, and the artifact must have the signed hash; otherwise nothing is scored
    and the failure names the version and what failed."""
    import pandas as pd

    from mlcomops_assets.lib import modeling
    from mlcomops_assets.lib.promotion_record import ChampionIntegrityError

    policy = project.policy()
    name = policy.model.registered_name
    try:
        champion = mlflow_session.verified_champion(name)
    except ChampionIntegrityError as exc:
        raise dg.Failure(description=f"batch {context.partition_key} is not scored: {exc}") from None
    version, model = champion.version, champion.model
    scores = modeling.positive_scores(model, batch, policy)
    decisions = modeling.decisions(scores, policy)
    out = pd.DataFrame({"row": range(len(batch)), "score": scores, "decision": decisions, "model_version": version})
    return dg.Output(
        out,
        metadata={
            "dagster/row_count": len(out),
            "model_uri": f"models:/{name}/{version}",
            "positive_rate": float(decisions.mean()) if len(out) else 0.0,
            "mean_score": float(scores.mean()) if len(out) else 0.0,
        },
    )
