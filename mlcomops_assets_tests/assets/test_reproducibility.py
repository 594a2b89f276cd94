"""Same data version, code version and policy give the same model: retrain and compare predictions."""

import json

import numpy as np
import pandas as pd
import pytest

from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.conftest import materialize

pytestmark = pytest.mark.e2e


def test_retraining_reproduces_the_registered_model(default_run):
    import mlflow.sklearn

    home = default_run[0]
    paths = ProjectPaths(home)
    first = json.loads((paths.models_dir / "trained_model.json").read_text())
    # Retrain from the same prepared data: tune every candidate, select, register.
    with materialize(home, "model_candidates,model_selection_report,trained_model") as (result, _):
        assert result.success
    second = json.loads((paths.models_dir / "trained_model.json").read_text())
    assert int(second["version"]) > int(first["version"])
    assert (
        second["raw_data_md5"] == first["raw_data_md5"] and second["policy_fingerprint"] == first["policy_fingerprint"]
    )
    assert second["candidate"] == first["candidate"] and second["best_params"] == first["best_params"]
    assert second["run_id"] != first["run_id"]

    mlflow.set_tracking_uri(paths.mlflow_tracking_uri)
    holdout = pd.read_parquet(paths.prepared_dir / "holdout_data.parquet")
    features = holdout[first["feature_columns"]].astype({"age": "float64", "checks": "float64"})
    old = mlflow.sklearn.load_model(first["model_uri"]).predict_proba(features)
    new = mlflow.sklearn.load_model(second["model_uri"]).predict_proba(features)
    np.testing.assert_array_equal(old, new)
