"""Which stores the project uses, selected by one setting: ``MLCOMOPS_PROFILE`` (``local`` or ``team``).

* ``local`` (the default): everything on this machine under ``MLCOMOPS_HOME``: Dagster's instance
  on SQLite, MLflow on SQLite with artifacts in ``.mlflow/artifacts``, asset values as files under
  ``data/``, every step in the run's own process.
* ``team``: the same asset graph and guarantees on shared services, each named by one variable:

  ==============================  ===========================================================
  ``MLCOMOPS_DAGSTER_POSTGRES_URL``  Dagster's run, event and schedule storage (``postgresql+psycopg2://``)
  ``MLCOMOPS_MLFLOW_TRACKING_URI``   MLflow tracking and registry (``postgresql+psycopg2://``)
  ``MLCOMOPS_OBJECT_STORE_URL``      ``s3://bucket/prefix``: asset values under ``data/``, MLflow
                                     artifacts under ``mlflow/``
  ``MLCOMOPS_S3_ENDPOINT_URL``       optional: the endpoint of an S3-compatible server (MinIO, ...);
                                     credentials come from the standard ``AWS_*`` variables
  ``MLCOMOPS_DASK_SCHEDULER``        ``tcp://host:port``: steps run as tasks on its workers
  ==============================  ===========================================================

A missing or malformed variable is a ``ProfileError`` naming it. Passwords never leave this module
unmasked in anything meant to be shown (``masked``, ``Profile.describe``). Nothing heavy is imported
here: the code location loads this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from mlcomops_assets.settings import ProjectPaths

PROFILE_ENV = "MLCOMOPS_PROFILE"
DAGSTER_POSTGRES_URL_ENV = "MLCOMOPS_DAGSTER_POSTGRES_URL"
MLFLOW_TRACKING_URI_ENV = "MLCOMOPS_MLFLOW_TRACKING_URI"
OBJECT_STORE_URL_ENV = "MLCOMOPS_OBJECT_STORE_URL"
S3_ENDPOINT_URL_ENV = "MLCOMOPS_S3_ENDPOINT_URL"
DASK_SCHEDULER_ENV = "MLCOMOPS_DASK_SCHEDULER"
# MLflow's S3 artifact repository reads its endpoint from this variable (and boto3 the AWS_* ones).
MLFLOW_S3_ENDPOINT_ENV = "MLFLOW_S3_ENDPOINT_URL"

LOCAL, TEAM = "local", "team"
PROFILES = (LOCAL, TEAM)
TEAM_VARIABLES = (
    DAGSTER_POSTGRES_URL_ENV,
    MLFLOW_TRACKING_URI_ENV,
    OBJECT_STORE_URL_ENV,
    S3_ENDPOINT_URL_ENV,
    DASK_SCHEDULER_ENV,
)
_SERVICE_FIELDS = (
    "dagster_postgres_url",
    "mlflow_tracking_uri",
    "object_store_url",
    "s3_endpoint_url",
    "dask_scheduler",
)
# The driver is named: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which is not installed
# (the project ships psycopg2), and Dagster reads its URL straight from the environment, unaltered.
_POSTGRES_SCHEME = "postgresql+psycopg2"


class ProfileError(ValueError):
    """A profile setting is missing or malformed; the message names the variable."""


def masked(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs, metadata and error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ProfileError(f"{PROFILE_ENV}=team needs {name}, which is not set (docs/deployment.md)")
    return value


def _postgres(env: Mapping[str, str], name: str) -> str:
    value = _require(env, name)
    parts = urlsplit(value)
    if parts.scheme != _POSTGRES_SCHEME or not parts.hostname or not parts.path.strip("/"):
        hint = " (name the driver: psycopg2 is the one installed)" if parts.scheme in ("postgresql", "postgres") else ""
        raise ProfileError(
            f"{name} must be {_POSTGRES_SCHEME}://user:password@host[:port]/database{hint}, got {masked(value)!r}"
        )
    return value


def _object_store(env: Mapping[str, str]) -> str:
    value = _require(env, OBJECT_STORE_URL_ENV)
    parts = urlsplit(value)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ProfileError(f"{OBJECT_STORE_URL_ENV} must be s3://bucket[/prefix], got {masked(value)!r}")
    prefix = parts.path.strip("/")
    return f"s3://{parts.netloc}/{prefix}" if prefix else f"s3://{parts.netloc}"


def _endpoint(env: Mapping[str, str]) -> str | None:
    value = env.get(S3_ENDPOINT_URL_ENV, "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProfileError(f"{S3_ENDPOINT_URL_ENV} must be http(s)://host[:port], got {masked(value)!r}")
    return value.rstrip("/")


def _scheduler(env: Mapping[str, str]) -> str:
    value = _require(env, DASK_SCHEDULER_ENV)
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None:
        raise ProfileError(f"{DASK_SCHEDULER_ENV} must be tcp://host:port, got {masked(value)!r}")
    return value


@dataclass(frozen=True)
class MlflowLocations:
    """Where MLflow keeps runs and the registry (one URI) and where new experiments put artifacts."""

    tracking_uri: str
    artifact_root: str
    # An S3-compatible server holding the artifacts (None: local artifacts, or AWS itself).
    s3_endpoint_url: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.tracking_uri.startswith("sqlite:///")


@dataclass(frozen=True)
class Profile:
    """The selected profile; for ``team`` every service's URL (validated)."""

    name: Literal["local", "team"] = LOCAL
    dagster_postgres_url: str | None = None
    mlflow_tracking_uri: str | None = None
    object_store_url: str | None = None
    s3_endpoint_url: str | None = None
    dask_scheduler: str | None = None

    @property
    def is_team(self) -> bool:
        return self.name == TEAM

    def mlflow(self, paths: ProjectPaths) -> MlflowLocations:
        """MLflow's locations: the home's SQLite store, or PostgreSQL with artifacts in the object store."""
        if not self.is_team:
            return MlflowLocations(paths.mlflow_tracking_uri, str(paths.mlflow_artifact_root))
        assert self.mlflow_tracking_uri and self.object_store_url
        return MlflowLocations(self.mlflow_tracking_uri, f"{self.object_store_url}/mlflow", self.s3_endpoint_url)

    def data_url(self) -> str:
        """Team profile: the object-store location of asset values (``<object store>/data``)."""
        if not self.is_team:
            raise ProfileError("the local profile keeps asset values under the home's data/ folder")
        return f"{self.object_store_url}/data"

    def storage_options(self) -> dict[str, object]:
        """fsspec/s3fs options for the object store (credentials come from the AWS_* variables)."""
        return {"client_kwargs": {"endpoint_url": self.s3_endpoint_url}} if self.s3_endpoint_url else {}

    def describe(self) -> dict[str, str]:
        """The profile as it may be shown (logs, run metadata): every password masked."""
        shown = {"profile": self.name}
        for key in _SERVICE_FIELDS:
            value = getattr(self, key)
            if value:
                shown[key] = masked(value)
        return shown


def load_profile(env: Mapping[str, str] | None = None) -> Profile:
    """The profile ``env`` (default: ``os.environ``) selects; ``ProfileError`` naming a bad variable."""
    env = os.environ if env is None else env
    name = env.get(PROFILE_ENV, "").strip() or LOCAL
    if name not in PROFILES:
        raise ProfileError(f"{PROFILE_ENV} must be one of {', '.join(PROFILES)}, got {name!r}")
    if name == LOCAL:
        return Profile()
    return Profile(
        name=TEAM,
        dagster_postgres_url=_postgres(env, DAGSTER_POSTGRES_URL_ENV),
        mlflow_tracking_uri=_postgres(env, MLFLOW_TRACKING_URI_ENV),
        object_store_url=_object_store(env),
        s3_endpoint_url=_endpoint(env),
        dask_scheduler=_scheduler(env),
    )


def mlflow_locations(paths: ProjectPaths, profile: Profile | None = None) -> MlflowLocations:
    """MLflow's locations for the project at ``paths`` under the current (or given) profile."""
    return (profile or load_profile()).mlflow(paths)


def activate_mlflow(locations: MlflowLocations) -> None:
    """Point this process's MLflow at ``locations``. A SQLite store is first aligned with the home's
    artifact folder (``lib.mlflow_store``: a copied project logs into its own folder); a PostgreSQL
    store keeps no local locations to align, and MLflow's S3 artifact client reads its endpoint only
    from ``MLFLOW_S3_ENDPOINT_URL``, which is set from the profile unless it is set already."""
    import mlflow

    if locations.is_sqlite:
        from mlcomops_assets.lib.mlflow_store import database_path, rehome_store

        rehome_store(database_path(locations.tracking_uri), Path(locations.artifact_root))
    elif locations.s3_endpoint_url:
        os.environ.setdefault(MLFLOW_S3_ENDPOINT_ENV, locations.s3_endpoint_url)
    mlflow.set_tracking_uri(locations.tracking_uri)
    mlflow.set_registry_uri(locations.tracking_uri)


def mlflow_client(paths: ProjectPaths, profile: Profile | None = None) -> MlflowClient:
    """An MLflow client on the project's tracking store and registry, with this process's MLflow
    pointed at the same place (artifact downloads go through the module-level functions)."""
    from mlflow.tracking import MlflowClient

    locations = mlflow_locations(paths, profile)
    activate_mlflow(locations)
    return MlflowClient(tracking_uri=locations.tracking_uri, registry_uri=locations.tracking_uri)
