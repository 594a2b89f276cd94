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


def test_links_open_the_machine_learning_view(session):
    """MLflow 3's UI opens in its GenAI view (an experiment link landed on an empty Traces page) unless
    the link names the machine-learning view; experiment links also name the Runs tab."""
    with session.start_run("exp", "ok", {}) as run:
        pass
    eid = session.client().get_experiment_by_name("exp").experiment_id
    rid = run.info.run_id
    base = "http://127.0.0.1:5000/#"
    assert session.experiment_url(eid) == f"{base}/experiments/{eid}/runs?workflowType=machine_learning"
    assert session.run_url(eid, rid) == f"{base}/experiments/{eid}/runs/{rid}?workflowType=machine_learning"
    assert (
        session.model_version_url("credit model/v", 3)
        == f"{base}/models/credit%20model%2Fv/versions/3?workflowType=machine_learning"
    )
