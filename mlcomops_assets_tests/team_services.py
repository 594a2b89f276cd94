"""Real servers for the team-profile tests, started on 127.0.0.1 for one test session.

- S3: moto's S3 server (``ThreadedMotoServer``), a real HTTP server speaking the S3 protocol; it is the
  stand-in for cloud object storage (the only fake: a cloud bucket cannot run here). Every client
  (boto3, s3fs, MLflow's S3 artifact repository, the Dask worker processes) reaches it over HTTP
  through its endpoint URL, exactly as they would reach MinIO or a cloud endpoint.

Each server is available as a session-scoped pytest fixture and as a context manager for use
outside pytest; all are torn down at the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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
