"""Names of assets, checks, groups and jobs: one place, so lineage is never spelled twice."""

import dagster as dg

# Asset groups: the life cycle an auditor follows, each depending only on the ones before it (no cycle
# between groups, tested in test_lineage_groups.py). Every module under assets/ holds one group.
DATA = "data"  # raw, validated and split data, and the validated production batches
MODEL = "model"  # candidates, the documented choice, the registered version
EVIDENCE = "evidence"  # evaluation, fairness and explanations of the registered version
RELEASE = "release"  # the champion: promotion when every gate passed
PRODUCTION = "production"  # scoring and monitoring (drift included) of each production batch
AUDIT = "audit"  # the compliance matrix and the signed evidence bundle of each registered version

RAW_DATA = dg.AssetKey("raw_data")
VALIDATED_DATA = dg.AssetKey("validated_data")
TRAINING_DATA = dg.AssetKey("training_data")
HOLDOUT_DATA = dg.AssetKey("holdout_data")
PRODUCTION_DATA = dg.AssetKey("production_data")
MODEL_CANDIDATES = dg.AssetKey("model_candidates")
MODEL_SELECTION_REPORT = dg.AssetKey("model_selection_report")
TRAINED_MODEL = dg.AssetKey("trained_model")
MODEL_EVALUATION = dg.AssetKey("model_evaluation")
FAIRNESS_REPORT = dg.AssetKey("fairness_report")
SHAP_EXPLAINER = dg.AssetKey("shap_explainer")
CHAMPION_MODEL = dg.AssetKey("champion_model")
PRODUCTION_BATCH = dg.AssetKey("production_batch")
BATCH_PREDICTIONS = dg.AssetKey("batch_predictions")
OUTLIER_DETECTOR = dg.AssetKey("outlier_detector")
BATCH_MONITORING = dg.AssetKey("batch_monitoring")
COMPLIANCE_MATRIX = dg.AssetKey("compliance_matrix")
AUDIT_BUNDLE = dg.AssetKey("audit_bundle")

# The DataFrame attribute that carries the raw data's DVC md5 from validated_data to the models.
RAW_MD5_ATTR = "raw_data_md5"

# Production batches (inbox files, or periods of the default data after the cutoff) as partitions.
PRODUCTION_BATCHES = dg.DynamicPartitionsDefinition(name="production_batches")

# Where the IO manager stores each asset's value, under data/ (one DVC output per folder).
# Aggregate evidence goes below data/published/, the only folder the report server serves.
STORAGE_FOLDER: dict[str, str] = {
    VALIDATED_DATA.path[-1]: "validated",
    TRAINING_DATA.path[-1]: "prepared",
    HOLDOUT_DATA.path[-1]: "prepared",
    PRODUCTION_DATA.path[-1]: "prepared",
    MODEL_CANDIDATES.path[-1]: "models",
    MODEL_SELECTION_REPORT.path[-1]: "published/selection",
    TRAINED_MODEL.path[-1]: "models",
    MODEL_EVALUATION.path[-1]: "published/reports",
    FAIRNESS_REPORT.path[-1]: "published/reports",
    SHAP_EXPLAINER.path[-1]: "published/reports",
    CHAMPION_MODEL.path[-1]: "champion",
    PRODUCTION_BATCH.path[-1]: "monitoring",
    BATCH_PREDICTIONS.path[-1]: "monitoring",
    OUTLIER_DETECTOR.path[-1]: "monitoring",
    BATCH_MONITORING.path[-1]: "monitoring",
}

# Check names (the data-contract checks on raw_data are named after their rules, see lib/rules.py).
NO_PROXY_FEATURES = "no_proxy_features"
SPLITS_ARE_USABLE = "splits_are_usable"
NO_TIME_LEAKAGE = "no_time_leakage"
NO_TARGET_LEAKAGE = "no_target_leakage"
NO_CONSTANT_FEATURES = "no_constant_features"
MODEL_DOES_NOT_LEAK = "model_does_not_leak"
CANDIDATES_RELOAD_EXACTLY = "candidates_reload_exactly"
A_CANDIDATE_PASSES_EVERY_GATE = "a_candidate_passes_every_gate"
MODEL_REGISTERED = "model_registered"
MEETS_PERFORMANCE_MINIMUM = "meets_performance_minimum"
FAIRNESS_WITHIN_THRESHOLDS = "fairness_within_thresholds"
EXPLANATIONS_ARE_FAITHFUL = "explanations_are_faithful"
BATCH_NO_DATA_DRIFT = "batch_no_data_drift"
BATCH_NO_PREDICTION_DRIFT = "batch_no_prediction_drift"
BATCH_OUTLIERS_WITHIN_LIMIT = "batch_outliers_within_limit"
BATCH_FAIRNESS_WITHIN_THRESHOLDS = "batch_fairness_within_thresholds"
# Which monitoring alarm (policy.monitoring.retrain_on) each batch check raises.
ALARM_OF_CHECK = {
    BATCH_NO_DATA_DRIFT: "data_drift",
    BATCH_NO_PREDICTION_DRIFT: "prediction_drift",
    BATCH_OUTLIERS_WITHIN_LIMIT: "outliers",
    BATCH_FAIRNESS_WITHIN_THRESHOLDS: "fairness",
}

# The registry alias of the version that decides in production (defined beside its verification).
from mlcomops_assets.registry import CHAMPION_ALIAS as CHAMPION_ALIAS  # noqa: E402

END_TO_END_JOB = "end_to_end"
MONITOR_BATCH_JOB = "monitor_batch"
AUDIT_JOB = "audit"
AUDIT_SENSOR = "audit_sensor"
INBOX_SENSOR = "inbox_sensor"
# Writes the scoring service's decisions into the inbox as production batches (served_batches.py).
SERVED_DECISIONS_SENSOR = "served_decisions_sensor"
RETRAINING_SENSOR = "retraining_sensor"
DAILY_MONITORING = "daily_monitoring"
WEEKLY_RETRAINING = "weekly_retraining"
# Run tags that say why an automatic run happened.
TRIGGER_TAG = "mlcomops/trigger"
BATCH_TAG = "mlcomops/batch"

IO_MANAGER_KEY = "io_manager"
