"""The scoring service as a person starts it: ``python -m mlcomops_assets.cli serve`` in a subprocess, on a
free loopback port, in a copy of a project home whose graph ran (the session's ``default_run``)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlcomops_assets.settings import ProjectPaths

NAME = "arrests_release_model"
PSEUDONYM_KEY = "serving-tests-pseudonym-key-7c1e"
POLL_SECONDS = "0.5"
START_TIMEOUT_S = 180  # imports (MLflow, scikit-learn, SHAP) and the champion's verification, on 2 busy cores
# Two applications of the default policy: one decided favourably, one adversely by its champion.
FAVOURABLE = {"age": 35, "citizen": "Yes", "employed": "Yes", "checks": 0, "colour": "White", "sex": "Female"}
ADVERSE = {"age": 19, "citizen": "No", "employed": "No", "checks": 6, "colour": "Black", "sex": "Male"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a command run in ``home``: the session's signing key is inherited (conftest's
    ``promotion_signing_key``), the pseudonym key is the tests' own."""
    return {**os.environ, "MLCOMOPS_HOME": str(home), "MLCOMOPS_PSEUDONYM_KEY": PSEUDONYM_KEY, **extra}


def mlcomops(home: Path, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlcomops_assets.cli", *args],
        cwd=home,
        env=service_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(condition: Callable[[], Any], timeout: float = 60, interval: float = 0.25, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(interval)


@dataclass
class Service:
    """A running ``mlcomops serve``: its home, port, process and console log."""

    home: Path
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def paths(self) -> ProjectPaths:
        return ProjectPaths(self.home)

    @property
    def decision_log_url(self) -> str:
        return f"sqlite:///{self.paths.data_dir / 'serving' / 'decisions.db'}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def get(self, path: str) -> httpx.Response:
        with self.client() as client:
            return client.get(path)

    def post(self, path: str, body: Any) -> httpx.Response:
        with self.client() as client:
            return client.post(path, json=body)

    def console(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def health(self) -> dict:
        return self.get("/health").json()


@contextmanager
def running_service(home: Path, *args: str, ready: bool = True) -> Iterator[Service]:
    """Start the service in ``home`` and wait for ``/ready`` (or only ``/health`` when ``ready`` is
    false); stopped with SIGINT (then SIGKILL) whatever happens."""
    port = free_port()
    log = home / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlcomops_assets.cli", "serve", "--port", str(port), *args],
            cwd=home,
            env=service_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(home, port, process, log)
    try:

        def answers() -> bool:
            if process.poll() is not None:
                pytest.fail(f"the service exited with {process.returncode}:\n{service.console()}")
            try:
                return service.get("/ready" if ready else "/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout=START_TIMEOUT_S, interval=0.5, what="the service to answer")
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture(scope="package")
def served_home(default_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's graph home (champion v1 promoted and signed): the tests move its alias and
    change its artifacts, which must not touch the home other tests share. The Dagster instance, git and
    DVC are not needed to serve."""
    home, result, _ = default_run
    assert result.success
    copy = tmp_path_factory.mktemp("served") / "home"
    shutil.copytree(home, copy, symlinks=True, ignore=shutil.ignore_patterns(".dagster_home", ".git", ".dvc"))
    return copy


@pytest.fixture(scope="package")
def service(served_home: Path) -> Iterator[Service]:
    """One service for the package's tests, looking for a new champion every half second."""
    with running_service(served_home, "--poll-seconds", POLL_SECONDS) as running:
        yield running
