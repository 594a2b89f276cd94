"""Real servers for the team-profile tests, started on 127.0.0.1 for one test session.

- S3: moto's S3 server (``ThreadedMotoServer``), a real HTTP server speaking the S3 protocol; it is the
  stand-in for cloud object storage (the only fake: a cloud bucket cannot run here). Every client
  (boto3, s3fs, MLflow's S3 artifact repository, the Dask worker processes) reaches it over HTTP
  through its endpoint URL, exactly as they would reach MinIO or a cloud endpoint.
- PostgreSQL: a real server from the ``pgserver`` wheel (PostgreSQL's own binaries), on TCP
  127.0.0.1, with one database for Dagster and one for MLflow.
- Dask: ``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` as subprocesses: two worker
  processes, started with the environment of the team home under test (a deployment's workers get
  theirs from their pod or unit), so steps run in processes other than the test's.

Each server is available as a session-scoped pytest fixture and as a context manager for use
outside pytest; all are torn down at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Credentials of the stand-in server (moto accepts any); never a real account's.
TEST_ACCESS_KEY_ID = "mlcomops-test-key"
TEST_SECRET_ACCESS_KEY = "mlcomops-test-secret"
TEST_REGION = "us-east-1"
TEST_BUCKET = "mlcomops-team-test"


@dataclass(frozen=True)
class S3Service:
    """A running S3-compatible server (moto) with one bucket."""

    endpoint_url: str
    bucket: str
    access_key_id: str = TEST_ACCESS_KEY_ID
    secret_access_key: str = TEST_SECRET_ACCESS_KEY
    region: str = TEST_REGION

    def url(self, prefix: str = "") -> str:
        """``s3://<bucket>/<prefix>`` (no trailing slash)."""
        prefix = prefix.strip("/")
        return f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"

    def env(self) -> dict[str, str]:
        """The environment a client (or a worker process) needs to reach this server: the standard
        AWS_* credentials, the project's endpoint setting and MLflow's own."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "MLCOMOPS_S3_ENDPOINT_URL": self.endpoint_url,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
        }

    def client(self) -> Any:
        """A boto3 S3 client on this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every key of the bucket under ``prefix``, sorted."""
        paginator = self.client().get_paginator("list_objects_v2")
        found: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(found)

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)


@contextmanager
def s3_server(bucket: str = TEST_BUCKET) -> Iterator[S3Service]:
    """moto's S3 server on a free port of 127.0.0.1, with ``bucket`` created; stopped on exit."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        service = S3Service(endpoint_url=f"http://{host}:{port}", bucket=bucket)
        service.create_bucket(bucket)
        yield service
    finally:
        server.stop()


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Sets ``values`` in os.environ for the block, restoring the previous values after it."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def s3_service() -> Iterator[S3Service]:
    """moto's S3 server (the stand-in for cloud object storage) with one bucket, for the session.
    The environment is not changed: use ``s3_service.env()`` (or the ``s3_env`` fixture)."""
    with s3_server() as service:
        yield service


@pytest.fixture
def s3_env(s3_service: S3Service, monkeypatch: pytest.MonkeyPatch) -> S3Service:
    """``s3_service`` with its credentials and endpoint in os.environ for one test."""
    for name, value in s3_service.env().items():
        monkeypatch.setenv(name, value)
    return s3_service


# --- PostgreSQL -------------------------------------------------------------------------------------

# The databases' password: trust authentication on 127.0.0.1 does not check it, but every URL carries
# it like a real deployment's, so tests can prove it never reaches logs, metadata or reports.
TEST_DB_PASSWORD = "team-db-s3cret"
DATABASES = ("dagster", "mlflow")


@dataclass(frozen=True)
class PostgresService:
    """A running PostgreSQL server on 127.0.0.1 with one database per name in ``DATABASES``."""

    host: str
    port: int
    user: str = "postgres"
    password: str = TEST_DB_PASSWORD

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def query(self, database: str, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg2

        dsn = f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"
        with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres_server(pgdata: Path) -> Iterator[PostgresService]:
    """PostgreSQL (pgserver's binaries) on a free TCP port of 127.0.0.1, databases created; stopped on exit.

    pgserver initializes the data folder (as root it runs the server as its own ``pgserver`` user) and
    starts it on a Unix socket only; it is restarted here listening on 127.0.0.1, because the team
    profile's URLs name a host and port like a real deployment's."""
    import pgserver
    from pgserver._commands import pg_ctl

    server = pgserver.get_server(pgdata, cleanup_mode=None)  # stopped here, not at interpreter exit
    for database in DATABASES:
        server.psql(f"CREATE DATABASE {database};")
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
    port = _free_port()
    pg_ctl(
        ["-w", "-o", "-h 127.0.0.1", "-o", f"-p {port}", "-o", "-k ''", "-l", str(pgdata / "log"), "start"],
        pgdata=pgdata,
        user=server.system_user,
        timeout=30,
    )
    try:
        yield PostgresService("127.0.0.1", port)
    finally:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)


@pytest.fixture(scope="session")
def postgres_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresService]:
    """A real PostgreSQL server for the session (databases ``dagster`` and ``mlflow``)."""
    with postgres_server(tmp_path_factory.mktemp("pgdata")) as service:
        yield service


# --- Dask -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaskService:
    """A Dask scheduler with worker processes, started with a given environment."""

    address: str
    log_dir: Path

    def worker_pids(self) -> set[int]:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            return set(client.run(os.getpid).values())


def _dask_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "dask"), *args]


@contextmanager
def dask_cluster(
    env: Mapping[str, str], log_dir: Path, port: int = 0, workers: int = 2, timeout: float = 120.0
) -> Iterator[DaskService]:
    """``dask scheduler`` and ``dask worker --nworkers <workers> --nthreads 1`` on 127.0.0.1, each worker a
    separate process with ``env`` (one thread each: Dagster steps are not thread-safe); stopped on exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    scheduler_file = log_dir / "scheduler.json"
    full_env = {**os.environ, **env}
    processes: list[subprocess.Popen] = []
    try:
        processes.append(
            subprocess.Popen(
                _dask_command(
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-dashboard",
                    "--scheduler-file",
                    str(scheduler_file),
                ),
                env=full_env,
                stdout=(log_dir / "scheduler.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + timeout
        while not scheduler_file.exists():
            if time.monotonic() > deadline or processes[0].poll() is not None:
                raise RuntimeError(f"the Dask scheduler did not start: {(log_dir / 'scheduler.log').read_text()}")
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        processes.append(
            subprocess.Popen(
                _dask_command(
                    "worker",
                    address,
                    "--nworkers",
                    str(workers),
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                    "--memory-limit",
                    "0",
                    "--local-directory",
                    str(log_dir / "workers"),
                ),
                env=full_env,
                cwd=str(log_dir),
                stdout=(log_dir / "workers.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        service = DaskService(address, log_dir)
        from distributed import Client

        with Client(address, timeout=timeout) as client:
            client.wait_for_workers(workers, timeout=timeout)
        yield service
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- The team profile as a whole ---------------------------------------------------------------------


@dataclass(frozen=True)
class TeamServices:
    """Every service of the team profile, and the environment that selects it for one project home."""

    home: Path
    s3: S3Service
    postgres: PostgresService
    dask: DaskService
    env: dict[str, str]

    @property
    def dagster_home(self) -> Path:
        return self.home / ".dagster_home"


def team_env(home: Path, s3: S3Service, postgres: PostgresService, prefix: str = "team") -> dict[str, str]:
    """The environment of every process of the team profile for ``home`` (the scheduler's address is
    added once it is known)."""
    # Without MLflow's own endpoint variable: the profile must hand MLflow its endpoint itself.
    s3_env = {name: value for name, value in s3.env().items() if name != "MLFLOW_S3_ENDPOINT_URL"}
    return {
        **s3_env,
        "MLCOMOPS_PROFILE": "team",
        "MLCOMOPS_HOME": str(home),
        "DAGSTER_HOME": str(home / ".dagster_home"),
        "MLCOMOPS_DAGSTER_POSTGRES_URL": postgres.url("dagster"),
        "MLCOMOPS_MLFLOW_TRACKING_URI": postgres.url("mlflow"),
        "MLCOMOPS_OBJECT_STORE_URL": s3.url(prefix),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "False",
        "DO_NOT_TRACK": "true",
    }


@pytest.fixture(scope="session")
def team_services(
    tmp_path_factory: pytest.TempPathFactory, s3_service: S3Service, postgres_service: PostgresService
) -> Iterator[TeamServices]:
    """A project home on the team profile: its Dagster instance (config/dagster.team.yaml) on
    PostgreSQL, MLflow on PostgreSQL with artifacts and asset values in the S3 stand-in, and a Dask
    cluster of two worker processes started with the home's environment. The environment is not set
    in this process: tests apply ``team_services.env`` (``environment``) where they need it."""
    from mlcomops_assets_tests.conftest import REPO, write_home

    home = write_home(tmp_path_factory.mktemp("team_home"))
    env = team_env(home, s3_service, postgres_service)
    dagster_home = home / ".dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "config" / "dagster.team.yaml", dagster_home / "dagster.yaml")
    # MLflow creates its schema on first use; two steps doing so at once on an empty database would
    # race, so the store is initialized once up front (a deployment runs `mlflow db upgrade`).
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(env["MLCOMOPS_MLFLOW_TRACKING_URI"], s3_service.url("team/mlflow"))
    port = _free_port()
    env["MLCOMOPS_DASK_SCHEDULER"] = f"tcp://127.0.0.1:{port}"
    with dask_cluster(env, home.parent / "dask", port=port) as dask:
        yield TeamServices(home, s3_service, postgres_service, dask, env)
        graph = _GRAPH.pop("run", None)
        if graph is not None:
            graph[1].dispose()


# --- The whole graph on the team profile, once per session ----------------------------------------


def team_job(name: str):
    """A job as the team's processes load it: built from the environment when called, in the run's
    orchestrating process and again in every Dask worker (``definitions.defs_from_environment``)."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from mlcomops_assets_tests.conftest import REPO

    repository = ReconstructableRepository.for_module(
        "mlcomops_assets.definitions", "defs_from_environment", working_directory=str(REPO)
    )
    return repository.get_reconstructable_job(name)


# One graph run per session, whichever module asks first (a fixture imported into several modules is
# instantiated once per module; the run is not repeated).
_GRAPH: dict[str, Any] = {}


def team_graph(services: TeamServices) -> tuple[TeamServices, Any, Any]:
    """(services, instance, result) of the end_to_end run on the team profile; call with the
    environment set."""
    if "run" not in _GRAPH:
        import dagster as dg

        from mlcomops_assets_tests.conftest import dvc_executable, run

        run(["git", "init", "-q"], services.home)
        run([dvc_executable(), "init", "-q"], services.home)
        instance = dg.DagsterInstance.get()  # $DAGSTER_HOME/dagster.yaml: config/dagster.team.yaml
        started = time.monotonic()
        result = dg.execute_job(team_job("end_to_end"), instance=instance)
        print(f"\nteam profile: end_to_end took {time.monotonic() - started:.1f} s on 2 Dask workers")
        _GRAPH["run"] = (services, instance, result)
    return _GRAPH["run"]


@pytest.fixture(scope="module")
def team(team_services: TeamServices) -> Iterator[tuple[TeamServices, Any, Any]]:
    """The whole end_to_end graph on the team profile (run once per session), with the team's
    environment set in this process for the module using it, and unset after it."""
    with environment(team_services.env):
        yield team_graph(team_services)
