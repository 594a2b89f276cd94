"""The code location: every asset, check, job and resource, built for one project home."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg

from mlcomops_assets.assets import (
    audit,
    evaluation,
    explainability,
    fairness,
    ingestion,
    leakage_checks,
    monitoring,
    preparation,
    production,
    production_batch,
    promotion,
    registration,
    selection,
    training,
    validation,
)
from mlcomops_assets.automation import audit_sensor, build_schedules, dead_run_sensor, inbox_sensor, retraining_sensor
from mlcomops_assets.code_references import with_code_references
from mlcomops_assets.compliance_evidence import asset_evidence_id, check_evidence_id
from mlcomops_assets.constants import AUDIT_JOB, CHAMPION_MODEL, END_TO_END_JOB, IO_MANAGER_KEY, MONITOR_BATCH_JOB
from mlcomops_assets.dask_executor import dask_executor
from mlcomops_assets.io_manager import DataFolderIOManager, ObjectStoreIOManager
from mlcomops_assets.policy import load_policy
from mlcomops_assets.profile import DASK_SCHEDULER_ENV, MLFLOW_TRACKING_URI_ENV, Profile, load_profile
from mlcomops_assets.resources import EvidenceCatalog, MlflowSession, ProjectResource
from mlcomops_assets.served_batches import served_decisions_sensor
from mlcomops_assets.settings import ProjectPaths, default_home

ALL_ASSETS = [
    ingestion.raw_data,
    validation.validated_data,
    preparation.data_splits,
    training.model_candidates,
    selection.model_selection_report,
    registration.trained_model,
    evaluation.model_evaluation,
    fairness.fairness_report,
    explainability.shap_explainer,
    promotion.champion_model,
    monitoring.outlier_detector,
]
# Per production batch (dynamic partitions): validated batch, champion scores, monitoring verdicts.
BATCH_ASSETS = [production_batch.production_batch, production.batch_predictions, monitoring.batch_monitoring]
# After any graph or batch run, successful or not: the compliance matrix and the version's bundle.
AUDIT_ASSETS = [audit.compliance_matrix, audit.audit_bundle]


def _stores(paths: ProjectPaths, profile: Profile) -> dict[str, object]:
    """The resources that differ by profile: MLflow's stores, where asset values live, the executor."""
    mlflow = profile.mlflow(paths)
    if not profile.is_team:
        session = MlflowSession(tracking_uri=mlflow.tracking_uri, artifact_root=mlflow.artifact_root)
        return {
            "project": ProjectResource(home=str(paths.home)),
            "mlflow_session": session,
            IO_MANAGER_KEY: DataFolderIOManager(home=str(paths.home)),
            # One process for all steps: on 2 cores, a process per step re-imports the heavy libraries
            # and doubled the wall time of the whole graph (stack-facts §7.5).
            "executor": dg.in_process_executor,
        }
    session = MlflowSession(
        # The team store's URI carries its password: as an EnvVar, Dagster resolves it in each process
        # and shows only the variable's name in the UI's resource configuration.
        tracking_uri=dg.EnvVar(MLFLOW_TRACKING_URI_ENV),
        artifact_root=mlflow.artifact_root,
        s3_endpoint_url=mlflow.s3_endpoint_url,
    )
    return {
        # Steps initialize resources in their own worker processes: the project lock is a lease held
        # by the run from its first step until it ends (run_guard), re-entrant for its other steps.
        "project": ProjectResource(
            home=str(paths.home),
            lock_scope="run",
            values_url=profile.data_url(),
            s3_endpoint_url=profile.s3_endpoint_url,
        ),
        "mlflow_session": session,
        IO_MANAGER_KEY: ObjectStoreIOManager(url=profile.data_url(), endpoint_url=profile.s3_endpoint_url),
        # The scheduler's address is read from the environment where the run starts.
        "executor": dask_executor.configured({"cluster": {"existing": {"address": {"env": DASK_SCHEDULER_ENV}}}}),
    }


def build_defs(home: Path, profile: Profile | None = None) -> dg.Definitions:
    """Definitions for the project at ``home``; its policy names the owner and the data-contract checks.
    ``profile`` (default: the one ``$MLCOMOPS_PROFILE`` selects) decides where values, MLflow's runs and
    the steps go; the asset graph is the same in every profile."""
    paths = ProjectPaths(home)
    stores = _stores(paths, profile or load_profile())
    policy = load_policy(paths.policy_file)
    freshness = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=policy.monitoring.champion_max_age_days))

    def governed(spec: dg.AssetSpec) -> dg.AssetSpec:
        spec = spec.replace_attributes(owners=[policy.owner])
        # A champion older than the policy allows shows as stale in the UI.
        return spec.replace_attributes(freshness_policy=freshness) if spec.key == CHAMPION_MODEL else spec

    assets = with_code_references(dg.map_asset_specs(governed, ALL_ASSETS + BATCH_ASSETS + AUDIT_ASSETS))
    end_to_end = dg.define_asset_job(
        END_TO_END_JOB,
        selection=dg.AssetSelection.assets(*ALL_ASSETS),
        description="Ingest, validate, split, train and compare candidates, register the chosen one, evaluate, "
        "test fairness, explain, fit the outlier detector and promote when every gate passed; drift is "
        "monitored per production batch (monitor_batch).",
    )
    monitor_batch = dg.define_asset_job(
        MONITOR_BATCH_JOB,
        selection=dg.AssetSelection.assets(*BATCH_ASSETS),
        description="One production batch: validate (or quarantine), score with the champion, monitor.",
    )
    audit_job = dg.define_asset_job(
        AUDIT_JOB,
        selection=dg.AssetSelection.assets(*AUDIT_ASSETS),
        description="Evaluate the compliance matrix against the latest evidence and bundle the registered "
        "version's evidence (signed, hash-chained, verifiable offline with `mlcomops audit verify`).",
    )
    checks = [
        validation.build_contract_checks(policy, paths.home),
        validation.no_proxy_features,
        leakage_checks.no_target_leakage,
        leakage_checks.no_constant_features,
        leakage_checks.model_does_not_leak,
    ]
    # Every asset and check this code location defines (the matrix expands check:raw_data:* against it).
    evidence = {asset_evidence_id(k) for a in assets for k in a.keys}
    evidence |= {check_evidence_id(k) for d in [*assets, *checks] for k in d.check_keys}
    catalog = EvidenceCatalog(ids=sorted(evidence))
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[end_to_end, monitor_batch, audit_job],
        sensors=[
            inbox_sensor,
            served_decisions_sensor,
            retraining_sensor,
            dead_run_sensor,
            audit_sensor,
            dg.AutomationConditionSensorDefinition(
                "automation_condition_sensor",
                target=dg.AssetSelection.all(),
                default_status=dg.DefaultSensorStatus.RUNNING,
                description="Evaluates the assets' automation conditions (the outlier detector refits when "
                "the training reference changes).",
            ),
        ],
        schedules=build_schedules(policy),
        resources={
            "project": stores["project"],
            "mlflow_session": stores["mlflow_session"],
            IO_MANAGER_KEY: stores[IO_MANAGER_KEY],
            "evidence_catalog": catalog,
        },
        executor=stores["executor"],
    )


def defs_from_environment() -> dg.Definitions:
    """The definitions for ``$MLCOMOPS_HOME`` under ``$MLCOMOPS_PROFILE``, built when called: the code
    pointer a run hands to its Dask workers (each builds them from its own environment)."""
    return build_defs(default_home())


defs = build_defs(default_home())
