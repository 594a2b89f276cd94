"""The MLflow session ends every run FINISHED or FAILED and pins artifacts under the project."""

import pytest

from mlcomops_assets.resources import MlflowSession
from mlcomops_assets.settings import ProjectPaths


@pytest.fixture
def session(tmp_path):
    paths = ProjectPaths(tmp_path)
    return MlflowSession(tracking_uri=paths.mlflow_tracking_uri, artifact_root=str(paths.mlflow_artifact_root))


def test_runs_end_finished_or_failed(session, tmp_path):
    with session.start_run("exp", "ok", {"k": "v"}) as ok:
        pass
    with pytest.raises(RuntimeError, match="training crashed"), session.start_run("exp", "boom", {}) as failed:
        raise RuntimeError("training crashed")
    client = session.client()
    assert client.get_run(ok.info.run_id).info.status == "FINISHED"
    assert client.get_run(failed.info.run_id).info.status == "FAILED"
    assert client.get_run(ok.info.run_id).data.tags["k"] == "v"
    experiment = client.get_experiment_by_name("exp")
    assert experiment.artifact_location == f"{tmp_path}/.mlflow/artifacts/exp"
    assert session.run_url(experiment.experiment_id, ok.info.run_id).startswith("http://127.0.0.1:5000/#/experiments/")
