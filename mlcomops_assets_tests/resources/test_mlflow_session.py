"""The MLflow session ends every run FINISHED or FAILED and pins artifacts under the project."""

from pathlib import Path

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


def test_a_model_is_loaded_once_per_uri_and_artifact_hash(session, tmp_path):
    """Each load hashes the artifact now in the store (the tree SHA-256 promotion signs); the same URI
    and bytes give the model already loaded, changed bytes are refused against the recorded hash and
    are a cache miss otherwise."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from mlcomops_assets.lib.promotion_record import ChampionIntegrityError
    from mlcomops_assets.registry import download_and_hash

    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, [0, 0, 1, 1])
    with session.start_run("exp", "m", {}):
        logged = session.log_model_to_active_run(model, x, model.predict_proba(x)[:, 1], [])
    version = session.register_model(logged, "m")
    uri = f"models:/m/{version}"

    first, digest = session.load_model_with_hash(uri)
    _, signed = download_and_hash(session.client(), "m", version, tmp_path / "signed")
    assert digest == signed  # the hash promotion signs and the evidence is bound to
    assert session.load_model(uri, digest) is first  # same URI, same bytes: loaded once
    assert np.array_equal(first.predict_proba(x), model.predict_proba(x))

    stored = session.client().get_model_version_download_uri("m", version).removeprefix("file://")
    (Path(stored) / "requirements.txt").write_text("tampered\n")
    with pytest.raises(ChampionIntegrityError, match="changed since"):
        session.load_model(uri, digest)
    reloaded, changed = session.load_model_with_hash(uri)
    assert changed != digest and reloaded is not first


def test_a_new_store_is_seeded_with_the_schema_of_this_mlflow_version(tmp_path, monkeypatch):
    """A new project's store is a copy of an empty store made once by MLflow itself (no migrations run
    per project): same schema version, no row of the template's own, and MLflow's Default experiment
    added on first use as in a store it created."""
    import sqlite3
    from contextlib import closing

    from mlcomops_assets.lib.mlflow_store import database_path, foreign_locations
    from mlcomops_assets.resources.mlflow_session import seed_store

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def version_of(db):
        with closing(sqlite3.connect(db)) as conn:
            return conn.execute("SELECT version_num FROM alembic_version").fetchall()

    made = {}
    for name in ("one", "two"):
        paths = ProjectPaths(tmp_path / name)
        session = MlflowSession(tracking_uri=paths.mlflow_tracking_uri, artifact_root=str(paths.mlflow_artifact_root))
        with session.start_run("exp", "ok", {}) as run:
            pass
        client = session.client()
        assert client.get_run(run.info.run_id).info.status == "FINISHED"
        assert [e.name for e in client.search_experiments()] == ["exp", "Default"]
        session.client()  # the next activation aligns MLflow's Default experiment, as without a seed
        made[name] = database_path(paths.mlflow_tracking_uri)
        assert foreign_locations(made[name], paths.mlflow_artifact_root) == []
    (template,) = (tmp_path / "cache" / "mlcomops").glob("mlflow-*-empty.db")
    assert version_of(template) == version_of(made["one"]) == version_of(made["two"]) != []
    with closing(sqlite3.connect(template)) as conn:
        assert conn.execute("SELECT count(*) FROM experiments").fetchone() == (0,)
    assert seed_store(made["one"]) is False  # never over an existing store
