"""Promotion: the registered version becomes the `champion` only when every gate passed."""

import json
import tempfile
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import dagster as dg

from mlcomops_assets.constants import (
    CHAMPION_ALIAS,
    CHAMPION_MODEL,
    FAIRNESS_REPORT,
    MODEL_EVALUATION,
    MODEL_SELECTION_REPORT,
    RELEASE,
    SHAP_EXPLAINER,
    STORAGE_FOLDER,
    TRAINED_MODEL,
)
from mlcomops_assets.lib import promotion_record as pr
from mlcomops_assets.lib.files import file_sha256, write_json
from mlcomops_assets.lib.gates import GAP_METRICS, largest_gap, today
from mlcomops_assets.lib.promotion import Standing, decide, gate_failures
from mlcomops_assets.lib.promotion_record import ChampionIntegrityError
from mlcomops_assets.registry import download_and_hash, latest_promotion
from mlcomops_assets.resources import MlflowSession, ProjectResource


def _champion_standing(
    mlflow_session: MlflowSession, name: str, public_key: str
) -> tuple[str | None, Standing | None, str]:
    """The champion to compare with: the version the pipeline promoted last, its record and artifact
    verified. An alias moved by hand is not a baseline; the note says so, for the verdict."""
    client = mlflow_session.client()
    latest = latest_promotion(client, name, public_key)
    note = ""
    alias_version = mlflow_session.alias_version(name, CHAMPION_ALIAS)
    if latest is None:
        if alias_version is not None:
            note = f" (the alias pointed at v{alias_version}, which the pipeline never promoted: ignored)"
        return None, None, note
    if alias_version != latest.version:
        note = (
            f" (the alias pointed at v{alias_version or '(none)'}, moved outside the pipeline: compared with "
            f"v{latest.version}, the last version the pipeline promoted)"
        )
    try:
        mlflow_session.verified_version(name, latest.version)
    except ChampionIntegrityError as exc:
        raise dg.Failure(
            description=f"the current champion cannot be verified, so nothing can be compared with it: {exc}"
        ) from None
    metrics = client.get_run(client.get_model_version(name, latest.version).run_id).data.metrics
    gaps = [v for k, v in metrics.items() if k.startswith(tuple(f"fairness.{m}." for m in GAP_METRICS))]
    return latest.version, Standing(metrics.get("holdout_roc_auc", 0.0), max(gaps, default=0.0)), note


def _evidence_hashes(project: ProjectResource) -> dict[str, str]:
    """SHA-256 of each evidence file the verdict rests on, by its path below the project home."""
    hashes = {}
    for key in (TRAINED_MODEL, MODEL_SELECTION_REPORT, MODEL_EVALUATION, FAIRNESS_REPORT, SHAP_EXPLAINER):
        name = key.path[-1]
        stored = project.stored_value(name)  # a file under data/, or an object (team profile)
        if stored.exists():
            # Named by the same path below the home in both profiles (the object store keeps the layout).
            relative = f"data/{STORAGE_FOLDER[name]}/{name}.json"
            hashes[relative] = (
                file_sha256(stored) if isinstance(stored, Path) else sha256(stored.read_bytes()).hexdigest()
            )
    return hashes


def _sign_promotion(
    project: ProjectResource,
    mlflow_session: MlflowSession,
    key,
    name: str,
    version: str,
    verdict: str,
    run_id: str,
    previous: str | None,
    evaluated: str | None = None,
) -> tuple[pr.PromotionRecord, str]:
    """Hash the artifact as it will be loaded (it must be ``evaluated``, the hash the evidence was made
    on, when known), sign the record, tag it on the version and publish it."""
    client = mlflow_session.client()
    with tempfile.TemporaryDirectory(prefix="mlcomops-promote-") as tmp:
        _, artifact = download_and_hash(client, name, version, Path(tmp))
    if evaluated is not None and artifact != evaluated:
        raise dg.Failure(
            description=f"{name} v{version}: the artifact's SHA-256 {artifact[:12]}... is not the {evaluated[:12]}... "
            "the evidence was computed on (trained_model): it changed since; nothing was promoted"
        )
    record = pr.PromotionRecord(
        registered_name=name,
        version=str(version),
        artifact_sha256=artifact,
        evidence_sha256=_evidence_hashes(project),
        verdict=verdict[:2000],
        decided_at=datetime.now(UTC).isoformat(timespec="microseconds"),
        dagster_run_id=run_id,
        previous_champion=previous,
        public_key=pr.public_key_hex(key),
    )
    signature = pr.sign(record, key)
    client.set_model_version_tag(name, version, pr.RECORD_TAG, record.canonical().decode())
    client.set_model_version_tag(name, version, pr.SIGNATURE_TAG, signature)
    write_json(
        project.paths.published_dir / "promotion" / f"{name}-v{version}.json",
        {"record": json.loads(record.canonical()), "signature": signature, "algorithm": "Ed25519"},
    )
    return record, signature


def _check_registration(mlflow_session: MlflowSession, model_record: dict) -> None:
    """Promote only a version whose registry entry matches the record: built from the record's MLflow
    run, registered by the run that wrote the record, from candidates of the run the record names."""
    client = mlflow_session.client()
    name, version = model_record["registered_name"], model_record["version"]
    registered = client.get_model_version(name, version)
    expected = {
        "MLflow run": (registered.run_id, model_record.get("run_id")),
        "registering Dagster run": (
            registered.tags.get("registered_by.dagster_run_id"),
            model_record.get("registered_by_run_id"),
        ),
        "candidates' Dagster run": (
            client.get_run(registered.run_id).data.tags.get("dagster.run_id"),
            model_record.get("candidates_run_id"),
        ),
    }
    wrong = [
        f"{what} is {found} in the registry, {want} in the record"
        for what, (found, want) in expected.items()
        if not want or found != want
    ]
    if wrong:
        raise dg.Failure(
            description=f"refused to promote {name} v{version}, its lineage does not match trained_model: "
            + "; ".join(wrong)
            + ". Materialize trained_model again."
        )


@dg.asset(
    key=CHAMPION_MODEL,
    ins={
        "model_record": dg.AssetIn(key=TRAINED_MODEL),
        "evaluation": dg.AssetIn(key=MODEL_EVALUATION),
        "fairness": dg.AssetIn(key=FAIRNESS_REPORT),
        "explainer": dg.AssetIn(key=SHAP_EXPLAINER),
    },
    group_name=RELEASE,
    kinds={"mlflow"},
    code_version="3",
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
    Promotion signs a record of its verdict (Ed25519 over the version, the artifact's SHA-256, the
    evidence files' SHA-256 and the verdict), tags it on the version and publishes it under
    ``data/published/promotion/``; every consumer verifies it, so an alias moved by hand or a changed
    artifact is refused. The previous champion stays registered and can be restored with
    ``python -m mlcomops_assets.champion restore``. A violation
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
    _check_registration(mlflow_session, model_record)
    on = today()
    key = mlflow_session.signing_key(create=True)
    failures, waived = gate_failures(
        evaluation, fairness, explainer, policy, policy.gates.explainability.max_additivity_error, on
    )
    candidate = Standing(evaluation["roc_auc"], largest_gap(fairness))
    previous, champion, alias_note = _champion_standing(mlflow_session, name, pr.public_key_hex(key))
    if previous == version:
        champion = None  # re-checking the current champion against itself
    verdict = decide(candidate, champion, failures, policy)
    verdict_text = verdict.text + alias_note
    client = mlflow_session.client()
    client.set_model_version_tag(name, version, "promotion.verdict", verdict_text[:5000])
    client.set_model_version_tag(name, version, "promotion.decided_on", on.isoformat())
    for i, text in enumerate(waived):
        client.set_model_version_tag(name, version, f"waiver.{i}", text[:5000])
    if not verdict.promote:
        raise dg.Failure(
            description=f"{name} v{version} {verdict_text}. The champion stays v{previous or '(none)'}.",
            metadata={"candidate_version": version, "champion_version": previous or "(none)"},
        )
    # Signed before the alias moves, so the alias never points at an unsigned version.
    signed, signature = _sign_promotion(
        project,
        mlflow_session,
        key,
        name,
        version,
        verdict_text,
        context.run.run_id,
        previous,
        model_record.get("artifact_sha256"),
    )
    client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    described = client.get_model_version(name, version).description or ""
    client.update_model_version(
        name,
        version,
        description=f"{described}\n\nChampion since {on.isoformat()} (Dagster run {context.run.run_id}, replacing "
        f"v{previous or '(none)'}): {verdict_text}"[:5000],
    )
    client.set_model_version_tag(name, version, "promotion.dagster_run_id", context.run.run_id)
    if previous and previous != version:
        client.set_model_version_tag(name, previous, "promotion.replaced_by", version)
    context.log.info(f"{name} v{version} {verdict_text}" + (f" (waived: {'; '.join(waived)})" if waived else ""))
    record = {
        "registered_name": name,
        "version": version,
        "model_uri": f"models:/{name}@{CHAMPION_ALIAS}",
        "pinned_uri": model_record["model_uri"],
        "previous_champion": previous,
        "verdict": verdict_text,
        "roc_auc": candidate.roc_auc,
        "largest_fairness_gap": candidate.largest_gap,
        "candidate": model_record.get("candidate"),
        "selection_justification": model_record.get("selection_justification"),
        "waivers": waived,
        "decided_on": on.isoformat(),
        "promotion_record": json.loads(signed.canonical()),
        "promotion_signature": signature,
    }
    return dg.Output(
        record,
        metadata={
            "champion": f"{name} v{version}",
            "previous_champion": f"v{previous}" if previous else "(none)",
            "verdict": verdict_text,
            "artifact_sha256": signed.artifact_sha256,
            "signing_public_key": signed.public_key,
            "roc_auc": candidate.roc_auc,
            "largest_fairness_gap": candidate.largest_gap,
            "candidate": str(model_record.get("candidate")),
            "waivers": "; ".join(waived) or "(none)",
            "mlflow_model_version": dg.MetadataValue.url(mlflow_session.model_version_url(name, version)),
        },
    )
