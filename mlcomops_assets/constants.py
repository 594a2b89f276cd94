"""Names of assets, checks, groups and jobs: one place, so lineage is never spelled twice."""

import dagster as dg

# Asset groups, one module each under mlcomops_assets/assets/.
INGESTION = "ingestion"
VALIDATION = "validation"
PREPARATION = "preparation"
TRAINING = "training"
EVALUATION = "evaluation"
FAIRNESS = "fairness"
EXPLAINABILITY = "explainability"
MONITORING = "monitoring"
PROMOTION = "promotion"
SELECTION = "selection"

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
DRIFT_REPORT = dg.AssetKey("drift_report")
CHAMPION_MODEL = dg.AssetKey("champion_model")

# Where the IO manager stores each asset's value, under data/ (one DVC output per folder).
STORAGE_FOLDER: dict[str, str] = {
    VALIDATED_DATA.path[-1]: "validated",
    TRAINING_DATA.path[-1]: "prepared",
    HOLDOUT_DATA.path[-1]: "prepared",
    PRODUCTION_DATA.path[-1]: "prepared",
    MODEL_CANDIDATES.path[-1]: "models",
    MODEL_SELECTION_REPORT.path[-1]: "selection",
    TRAINED_MODEL.path[-1]: "models",
    MODEL_EVALUATION.path[-1]: "reports",
    FAIRNESS_REPORT.path[-1]: "reports",
    SHAP_EXPLAINER.path[-1]: "reports",
    DRIFT_REPORT.path[-1]: "reports",
    CHAMPION_MODEL.path[-1]: "champion",
}

# Check names (the data-contract checks on raw_data are named after their rules, see lib/rules.py).
NO_PROXY_FEATURES = "no_proxy_features"
SPLITS_ARE_USABLE = "splits_are_usable"
NO_TIME_LEAKAGE = "no_time_leakage"
CANDIDATES_RELOAD_EXACTLY = "candidates_reload_exactly"
A_CANDIDATE_PASSES_EVERY_GATE = "a_candidate_passes_every_gate"
MODEL_REGISTERED = "model_registered"
MEETS_PERFORMANCE_MINIMUM = "meets_performance_minimum"
FAIRNESS_WITHIN_THRESHOLDS = "fairness_within_thresholds"
EXPLANATIONS_ARE_FAITHFUL = "explanations_are_faithful"
NO_DATASET_DRIFT = "no_dataset_drift"

CHAMPION_ALIAS = "champion"

END_TO_END_JOB = "end_to_end"

IO_MANAGER_KEY = "io_manager"
