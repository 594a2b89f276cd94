"""mlcomops_assets: compliant machine learning as Dagster software-defined assets."""

import os

# Telemetry off however the package is launched (UI, CLI, tests, dvc repro): a compliance pipeline must
# not phone home. MLflow compares with the literal "true"; "1" is ignored there.
for _name, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "False",
    # Verifying a model downloads its artifact; the progress bar would clutter every run's log.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}.items():
    os.environ.setdefault(_name, _value)
