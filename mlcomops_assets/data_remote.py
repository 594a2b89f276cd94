"""DVC's remote in the team profile: data versions pushed to and pulled from the team's object store.

The remote is ``$MLCOMOPS_OBJECT_STORE_URL/dvc`` (an ``s3://bucket/prefix`` URL) at the endpoint
``$MLCOMOPS_S3_ENDPOINT_URL`` (MinIO, Ceph or a cloud's S3 API; unset for AWS itself). Its URL and
endpoint are written into ``.dvc/config.local``, which DVC's own ``.dvc/.gitignore`` keeps out of git,
so the committed ``.dvc/config`` names no deployment. Credentials are never written anywhere: DVC's S3
client (dvc-s3 over botocore) reads ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (or a profile, or
the pod's role) from the environment it inherits.

Only these two settings of the team profile (``profile.py``) are read, so a developer can push and
pull from a laptop without the profile's database and scheduler settings.

DVC runs from its own virtual environment (``.venv-dvc``, see the Makefile: its ANTLR pin breaks
Dagster), so it is called as a program, never imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlcomops_assets.profile import OBJECT_STORE_URL_ENV as OBJECT_STORE_ENV
from mlcomops_assets.profile import S3_ENDPOINT_URL_ENV as S3_ENDPOINT_ENV
from mlcomops_assets.settings import REPOSITORY_ROOT

REMOTE_NAME = "team"
# The DVC cache's place below the object store; published reports and MLflow artifacts have their own.
DVC_PREFIX = "dvc"
LOCAL_CONFIG = Path(".dvc") / "config.local"


class DataRemoteError(Exception):
    """The remote is not configured, or the folder is no DVC repository."""


class DvcFailed(DataRemoteError):
    """DVC itself failed (unreachable store, refused credentials, missing cache); its message is kept."""


@dataclass(frozen=True)
class DvcRemote:
    """Where DVC pushes: an S3 URL and, for an S3-compatible service, its endpoint."""

    url: str
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DvcRemote:
        """The remote of the team profile's object store; a clear error when it is not set."""
        env = os.environ if env is None else env
        store = env.get(OBJECT_STORE_ENV, "").strip()
        if not store:
            raise DataRemoteError(
                f"{OBJECT_STORE_ENV} is not set: the DVC remote is the team's object store "
                "(s3://bucket/prefix, see docs/deployment.md)"
            )
        if not store.startswith("s3://") or len(store) <= len("s3://"):
            raise DataRemoteError(f"{OBJECT_STORE_ENV} must be an s3://bucket/prefix URL, got {store!r}")
        endpoint = env.get(S3_ENDPOINT_ENV, "").strip() or None
        return cls(url=f"{store.rstrip('/')}/{DVC_PREFIX}", endpoint_url=endpoint)


def dvc_executable() -> str:
    """The project's DVC (its own venv, created by `make setup`), else one on PATH."""
    candidate = REPOSITORY_ROOT / ".venv-dvc" / "bin" / "dvc"
    found = str(candidate) if candidate.exists() else shutil.which("dvc")
    if not found:
        raise DataRemoteError("dvc is not installed: run `make setup`, which creates .venv-dvc")
    return found


def _dvc(repo: Path, *args: str) -> str:
    """Run DVC in ``repo`` with the inherited environment (credentials included) and telemetry off."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([dvc_executable(), *args], cwd=repo, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip()
        raise DvcFailed(f"`dvc {' '.join(args)}` failed in {repo}: {message}")
    return result.stdout.strip()


def _check_repo(repo: Path) -> None:
    if not (repo / ".dvc").is_dir():
        raise DataRemoteError(f"{repo} is not a DVC repository (no .dvc folder)")


def _check_ignored(repo: Path) -> None:
    """``.dvc/config.local`` must stay out of git: refuse to write it where git would track it."""
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=repo, capture_output=True, text=True)
    if inside.returncode != 0:
        return  # not a git work tree: nothing could commit the file
    ignored = subprocess.run(["git", "check-ignore", "-q", str(LOCAL_CONFIG)], cwd=repo, capture_output=True)
    if ignored.returncode != 0:
        raise DataRemoteError(
            f"{repo / LOCAL_CONFIG} is not ignored by git (DVC's .dvc/.gitignore lists /config.local): "
            "restore that line before configuring the remote"
        )


def configure(repo: Path, remote: DvcRemote) -> Path:
    """Make ``remote`` the default remote of ``repo`` in ``.dvc/config.local`` (URL and endpoint only)."""
    _check_repo(repo)
    _check_ignored(repo)
    _dvc(repo, "remote", "add", "--local", "--force", "--default", REMOTE_NAME, remote.url)
    if remote.endpoint_url:
        _dvc(repo, "remote", "modify", "--local", REMOTE_NAME, "endpointurl", remote.endpoint_url)
    return repo / LOCAL_CONFIG


def push(repo: Path, remote: DvcRemote) -> str:
    """Upload the cache objects of every output the workspace's dvc.lock and .dvc files name."""
    configure(repo, remote)
    return _dvc(repo, "push", "--remote", REMOTE_NAME)


def pull(repo: Path, remote: DvcRemote) -> str:
    """Download the objects the workspace names and check them out (missing or changed files restored)."""
    configure(repo, remote)
    return _dvc(repo, "pull", "--remote", REMOTE_NAME)
