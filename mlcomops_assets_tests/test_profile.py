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
