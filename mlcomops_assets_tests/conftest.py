"""Shared fixtures: real project homes in temporary directories (policy, data, MLflow, Dagster)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from mlcomops_assets.definitions import build_defs

REPO = Path(__file__).resolve().parent.parent
_RAM_DISK = Path("/dev/shm")


def pytest_configure(config: pytest.Config) -> None:
    """Temporary project homes on a RAM disk when there is one: SQLite commits every Dagster event
    with an fsync, which took 45 ms per event on this machine's disk (a validation run emits ~200)."""
    if config.option.basetemp is None and _RAM_DISK.is_dir() and os.access(_RAM_DISK, os.W_OK):
        config.option.basetemp = str(_RAM_DISK / f"mlcomops-tests-{os.getuid()}-{os.getpid()}")  # one per session


def pytest_unconfigure(config: pytest.Config) -> None:
    basetemp = Path(str(config.option.basetemp or ""))
    if basetemp.parent == _RAM_DISK and not os.environ.get("MLCOMOPS_KEEP_TEST_TMP"):
        shutil.rmtree(basetemp, ignore_errors=True)  # RAM is not for leftovers


@pytest.fixture(autouse=True, scope="session")
def promotion_signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A promotion signing key for this test session only (promotion creates it on first use), so no
    test reads or writes the user's real key; subprocesses inherit it through the environment."""
    from mlcomops_assets.lib.promotion_record import KEY_FILE_ENV

    path = tmp_path_factory.mktemp("signing") / "promotion-ed25519.pem"
    saved = os.environ.get(KEY_FILE_ENV)
    os.environ[KEY_FILE_ENV] = str(path)
    yield path
    if saved is None:
        os.environ.pop(KEY_FILE_ENV, None)
    else:
        os.environ[KEY_FILE_ENV] = saved


DEFAULT_POLICY = yaml.safe_load((REPO / "governance.yaml").read_text())


def dvc_executable() -> str:
    """The project's DVC (own venv, see Makefile); tests fail loudly if it is missing."""
    candidate = REPO / ".venv-dvc" / "bin" / "dvc"
    found = str(candidate) if candidate.exists() else shutil.which("dvc")
    if not found:
        pytest.fail("dvc is not installed: run `make test`, which creates .venv-dvc")
    return found


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True, timeout=120)


def system_chromium() -> str:
    """The system's Chromium for the browser tests (Playwright's own download does not work here)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(
            "no system Chromium for the browser test: install it with `apt-get install chromium` (Debian) "
            "or run `make test` as root, which installs it"
        )
    return found


def default_policy() -> dict[str, Any]:
    return copy.deepcopy(DEFAULT_POLICY)


def write_home(home: Path, policy: dict[str, Any] | None = None) -> Path:
    """A project home: its policy file (default or given) and the versioned hand-written expectations;
    everything else is created by the assets."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "expectations", home / "expectations", dirs_exist_ok=True)
    (home / "governance.yaml").write_text(yaml.safe_dump(policy or default_policy(), sort_keys=False))
    return home


@contextmanager
def materialize(
    home: Path, selection: str | None = None
) -> Iterator[tuple[dg.ExecuteInProcessResult, dg.DagsterInstance]]:
    """Run the end-to-end job (or a selection of it) in-process on a persistent instance under ``home``."""
    defs = build_defs(home)
    dagster_home = home / ".dagster_home"
    dagster_home.mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        job = defs.resolve_job_def("end_to_end")
        kwargs = {"asset_selection": [dg.AssetKey(k) for k in selection.split(",")]} if selection else {}
        result = job.execute_in_process(instance=instance, raise_on_error=False, **kwargs)
        yield result, instance


@contextmanager
def monitor_batch(home: Path, key: str) -> Iterator[tuple[dg.ExecuteInProcessResult, dg.DagsterInstance]]:
    """Run the per-batch job (validate, score, monitor) for one production batch, as the sensor would."""
    from mlcomops_assets.constants import MONITOR_BATCH_JOB, PRODUCTION_BATCHES

    defs = build_defs(home)
    with dg.instance_for_test(temp_dir=str(home / ".dagster_home")) as instance:
        if not instance.has_dynamic_partition(PRODUCTION_BATCHES.name, key):
            instance.add_dynamic_partitions(PRODUCTION_BATCHES.name, [key])
        job = defs.resolve_job_def(MONITOR_BATCH_JOB)
        yield job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False), instance


@contextmanager
def audit(home: Path) -> Iterator[tuple[dg.ExecuteInProcessResult, dg.DagsterInstance]]:
    """Run the audit job (compliance matrix, evidence bundle) as `make run` and the audit sensor do."""
    from mlcomops_assets.constants import AUDIT_JOB

    defs = build_defs(home)
    with dg.instance_for_test(temp_dir=str(home / ".dagster_home")) as instance:
        yield defs.resolve_job_def(AUDIT_JOB).execute_in_process(instance=instance, raise_on_error=False), instance


@pytest.fixture
def cli_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project home selected through the environment, as `make run`'s entry points find it (local
    profile)."""
    home = write_home(tmp_path / "home")
    (home / ".dagster_home").mkdir()
    monkeypatch.setenv("MLCOMOPS_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / ".dagster_home"))
    monkeypatch.delenv("MLCOMOPS_PROFILE", raising=False)
    return home


@pytest.fixture
def home_factory(tmp_path: Path) -> Callable[..., Path]:
    def make(policy: dict[str, Any] | None = None, name: str = "home") -> Path:
        return write_home(tmp_path / name, policy)

    return make


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory):
    """The whole graph materialized once on the default data, in a home that is a git + DVC repo."""
    home = write_home(tmp_path_factory.mktemp("default_home"))
    run(["git", "init", "-q"], home)
    run([dvc_executable(), "init", "-q"], home)
    with materialize(home) as (result, instance):
        yield home, result, instance


# Real servers for the team profile (PostgreSQL, the S3 stand-in, a Dask cluster), session-scoped.
from mlcomops_assets_tests.team_services import postgres_service, s3_env, s3_service, team_services  # noqa: E402, F401
