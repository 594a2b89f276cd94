"""The profile setting: local by default, team with every service named by one variable, clear errors."""

import pytest

from mlcomops_assets.profile import Profile, ProfileError, load_profile, masked
from mlcomops_assets.settings import ProjectPaths

TEAM = {
    "MLCOMOPS_PROFILE": "team",
    "MLCOMOPS_DAGSTER_POSTGRES_URL": "postgresql+psycopg2://dagster:s3cret@db.internal:5432/dagster",
    "MLCOMOPS_MLFLOW_TRACKING_URI": "postgresql+psycopg2://mlflow:hunter2@db.internal/mlflow",
    "MLCOMOPS_OBJECT_STORE_URL": "s3://team-bucket/credit/",
    "MLCOMOPS_S3_ENDPOINT_URL": "http://minio.internal:9000",
    "MLCOMOPS_DASK_SCHEDULER": "tcp://dask.internal:8786",
}


def test_local_is_the_default(tmp_path):
    assert load_profile({}) == Profile()
    assert load_profile({"MLCOMOPS_PROFILE": " "}).name == "local"
    paths = ProjectPaths(tmp_path)
    locations = load_profile({}).mlflow(paths)
    assert locations.tracking_uri == paths.mlflow_tracking_uri and locations.is_sqlite
    assert locations.artifact_root == str(paths.mlflow_artifact_root)


def test_team_profile_reads_every_service(tmp_path):
    profile = load_profile(TEAM)
    assert profile.is_team
    assert profile.object_store_url == "s3://team-bucket/credit"  # trailing slash dropped
    assert profile.data_url() == "s3://team-bucket/credit/data"
    locations = profile.mlflow(ProjectPaths(tmp_path))
    assert locations.tracking_uri == TEAM["MLCOMOPS_MLFLOW_TRACKING_URI"] and not locations.is_sqlite
    assert locations.artifact_root == "s3://team-bucket/credit/mlflow"
    assert profile.storage_options() == {"client_kwargs": {"endpoint_url": "http://minio.internal:9000"}}
    # The endpoint is optional (AWS itself): no client options then.
    assert load_profile({**TEAM, "MLCOMOPS_S3_ENDPOINT_URL": ""}).storage_options() == {}


def test_secrets_are_masked_when_shown():
    shown = load_profile(TEAM).describe()
    text = repr(shown)
    assert "s3cret" not in text and "hunter2" not in text
    assert shown["dagster_postgres_url"] == "postgresql+psycopg2://dagster:***@db.internal:5432/dagster"
    assert masked("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"MLCOMOPS_PROFILE": "cloud"}, "MLCOMOPS_PROFILE"),
        ({"MLCOMOPS_DAGSTER_POSTGRES_URL": ""}, "MLCOMOPS_DAGSTER_POSTGRES_URL"),
        ({"MLCOMOPS_DAGSTER_POSTGRES_URL": "sqlite:///x.db"}, "MLCOMOPS_DAGSTER_POSTGRES_URL"),
        ({"MLCOMOPS_MLFLOW_TRACKING_URI": "postgresql+psycopg2://u:pw@host"}, "MLCOMOPS_MLFLOW_TRACKING_URI"),  # no db
        # A bare postgresql:// would load psycopg 3 (SQLAlchemy 2.1), which is not installed.
        ({"MLCOMOPS_MLFLOW_TRACKING_URI": "postgresql://u:hunter2@h/db"}, "name the driver"),
        ({"MLCOMOPS_OBJECT_STORE_URL": "/srv/data"}, "MLCOMOPS_OBJECT_STORE_URL"),
        ({"MLCOMOPS_S3_ENDPOINT_URL": "minio:9000"}, "MLCOMOPS_S3_ENDPOINT_URL"),
        ({"MLCOMOPS_DASK_SCHEDULER": "tcp://dask.internal"}, "MLCOMOPS_DASK_SCHEDULER"),  # no port
    ],
)
def test_a_missing_or_malformed_variable_is_named(change, named):
    env = {**TEAM, **change}
    with pytest.raises(ProfileError, match=named) as caught:
        load_profile(env)
    assert "hunter2" not in str(caught.value) and "s3cret" not in str(caught.value)


def test_missing_variable_is_named_when_unset():
    env = dict(TEAM)
    del env["MLCOMOPS_DASK_SCHEDULER"]
    with pytest.raises(ProfileError, match="needs MLCOMOPS_DASK_SCHEDULER, which is not set"):
        load_profile(env)


def test_one_setting_switches_the_stores_and_the_executor_not_the_graph(tmp_path):
    """Same assets, checks and jobs in both profiles; the team's resources name no password."""
    import dagster as dg

    from mlcomops_assets.definitions import build_defs
    from mlcomops_assets.io_manager import DataFolderIOManager, ObjectStoreIOManager
    from mlcomops_assets_tests.conftest import write_home

    home = write_home(tmp_path / "home")
    local, team = build_defs(home, load_profile({})), build_defs(home, load_profile(TEAM))
    assert {k for a in local.assets for k in a.keys} == {k for a in team.assets for k in a.keys}
    assert {j.name for j in local.jobs} == {j.name for j in team.jobs}
    assert local.executor is dg.in_process_executor and team.executor.name == "dask"
    local_resources, team_resources = local.resources, team.resources
    assert isinstance(local_resources["io_manager"], DataFolderIOManager)
    assert isinstance(team_resources["io_manager"], ObjectStoreIOManager)
    assert team_resources["io_manager"].url == "s3://team-bucket/credit/data"
    assert team_resources["project"].lock_scope == "run" and local_resources["project"].lock_scope == "process"
    session = team_resources["mlflow_session"]
    assert session.artifact_root == "s3://team-bucket/credit/mlflow"
    assert "hunter2" not in repr(team_resources) and "s3cret" not in repr(team_resources)
