"""Everything in the publication folder is aggregate: no row of the validated, training or production
data appears in any published file, whatever its format, after the whole graph and a monitored batch."""

import pandas as pd
import pytest

from mlcomops_assets.lib.evidence_scan import RowIndex, scan_folder
from mlcomops_assets.lib.modeling import features
from mlcomops_assets.policy import load_policy
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.conftest import materialize, monitor_batch, write_home

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def published_home(tmp_path_factory):
    home = write_home(tmp_path_factory.mktemp("publication"))
    with materialize(home) as (result, _):
        assert result.success
    with monitor_batch(home, "2001") as (result, _):
        assert result.success
    return home


def _index(home) -> RowIndex:
    """The rows of every data layer, raw and as the model's transformed features."""
    import mlflow

    paths = ProjectPaths(home)
    policy = load_policy(paths.policy_file)
    frames = [
        pd.read_parquet(paths.validated_dir / "validated_data.parquet"),
        pd.read_parquet(paths.prepared_dir / "training_data.parquet"),
        pd.read_parquet(paths.prepared_dir / "production_data.parquet"),
    ]
    mlflow.set_tracking_uri(paths.mlflow_tracking_uri)
    model = mlflow.sklearn.load_model(f"models:/{policy.model.registered_name}@champion")
    matrices = [model[:-1].transform(features(f, policy)).to_numpy(dtype=float) for f in frames[1:]]
    return RowIndex(frames, matrices=matrices, key_columns=policy.data.feature_columns)


def test_no_row_of_any_data_layer_is_published(published_home):
    paths = ProjectPaths(published_home)
    index = _index(published_home)
    findings, opened = scan_folder(paths.published_dir, index)
    kinds = {p.suffix for p in paths.published_dir.rglob("*") if p.is_file()}
    # The scan opened the kinds of evidence the graph publishes: Data Docs, reports, drift HTML, plots.
    assert {".html", ".json", ".png", ".md"} <= kinds and opened >= 10
    assert (paths.published_dir / "batch_reports").is_dir() and (paths.published_dir / "data_docs").is_dir()
    # One drift output per monitored period, the batch's; the graph publishes none of its own.
    drift = sorted(str(p.relative_to(paths.published_dir)) for p in paths.published_dir.rglob("*drift*"))
    assert drift == ["batch_reports/drift-2001.html"]
    assert [str(f) for f in findings] == []


def test_the_explainer_is_kept_out_of_the_publication_folder(published_home):
    paths = ProjectPaths(published_home)
    assert list(paths.published_dir.rglob("*.joblib")) == []
    assert len(list(paths.explainers_dir.glob("*.explainer.joblib"))) == 1


def test_the_scan_sees_a_published_row(published_home, tmp_path):
    """Control: one validated record copied into a published report is found."""
    paths = ProjectPaths(published_home)
    index = _index(published_home)
    leak = paths.published_dir / "reports" / "leak.json"
    row = pd.read_parquet(paths.validated_dir / "validated_data.parquet").iloc[[7]]
    leak.write_text(row.to_json(orient="records"))
    try:
        findings, _ = scan_folder(paths.published_dir, index)
        assert any("leak.json" in f.where for f in findings)
    finally:
        leak.unlink()
