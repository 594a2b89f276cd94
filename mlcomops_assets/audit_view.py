"""The read-only auditor view (``make audit``): lineage, evidence and the model registry, nothing writable.

Three servers, bound to 127.0.0.1 only:

- **3100** ``dagster-webserver --read-only``: every GraphQL permission is false, so launching, wiping,
  deleting runs and switching sensors or schedules are refused. No daemon is started, so opening the
  view never runs automation.
- **3101** the report server (``python -m mlcomops_assets.report_server``): the published reports.
- **3102** ``mlflow server --app-name basic-auth``: MLflow's own authentication app on the project's
  tracking store, ``default_permission = READ``. It checks every REST call, including setting or
  deleting a registry alias, so the ``auditor`` account can read runs and models and change nothing.

The MLflow admin and auditor passwords are generated on first use and kept in ``<home>/.mlflow-audit/``
(mode 0700, files 0600, ignored by git), next to MLflow's user database for this view. The admin
password reaches MLflow only through the environment of its server process, never a file in the repo.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import requests

from mlcomops_assets.lib.mlflow_store import database_path, rehome_store
from mlcomops_assets.settings import HOME_ENV_VAR, ProjectPaths, default_home

HOST = "127.0.0.1"
DAGSTER_PORT = 3100
REPORTS_PORT = 3101
MLFLOW_PORT = 3102
ADMIN_USERNAME = "admin"
AUDITOR_USERNAME = "auditor"
AUDIT_DIR_NAME = ".mlflow-audit"
AUTH_DB_NAME = "basic_auth.db"
WORKSPACE_FILE = Path(__file__).resolve().parent.parent / "workspace.yaml"
# Telemetry off for every server, as in the Makefile (MLflow needs the literal "true").
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "False",
}


@dataclass(frozen=True)
class Ports:
    """Where the three servers listen."""

    dagster: int = DAGSTER_PORT
    reports: int = REPORTS_PORT
    mlflow: int = MLFLOW_PORT


@dataclass(frozen=True)
class Credentials:
    """The secrets of the MLflow auth app, as stored under ``audit_dir``."""

    admin_password: str
    auditor_password: str
    flask_secret_key: str


@dataclass
class AuditView:
    """Running servers of the auditor view; ``stop()`` ends all of them."""

    paths: ProjectPaths
    host: str
    ports: Ports
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def url(self, server: str) -> str:
        """Base URL of ``dagster``, ``reports`` or ``mlflow``."""
        return f"http://{self.host}:{getattr(self.ports, server)}"

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every server: SIGINT to all at once, then wait for each (see ``reap``)."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes.values():
            reap(process, timeout)


def audit_dir(paths: ProjectPaths) -> Path:
    """Secrets and MLflow's user database of the auditor view: outside git, owner-only."""
    return paths.home / AUDIT_DIR_NAME


def admin_file(paths: ProjectPaths) -> Path:
    """The MLflow admin password and the auth app's Flask secret key (for the operator only)."""
    return audit_dir(paths) / "admin.json"


def auditor_file(paths: ProjectPaths) -> Path:
    """The auditor's MLflow login, the one file to hand over to an auditor."""
    return audit_dir(paths) / "auditor.json"


def auth_db_file(paths: ProjectPaths) -> Path:
    """MLflow's basic-auth user store for this view (not the tracking store)."""
    return audit_dir(paths) / AUTH_DB_NAME


def auth_config_file(paths: ProjectPaths) -> Path:
    """The ``MLFLOW_AUTH_CONFIG_PATH`` file; it holds no password."""
    return audit_dir(paths) / "basic_auth.ini"


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 from the start, so a secret is never readable by others."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def ensure_credentials(paths: ProjectPaths) -> Credentials:
    """The view's secrets, generated with ``secrets`` on first use and stored 0600 under ``audit_dir``."""
    directory = audit_dir(paths)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    if admin_file(paths).exists() and auditor_file(paths).exists():
        admin = json.loads(admin_file(paths).read_text())
        auditor = json.loads(auditor_file(paths).read_text())
        return Credentials(admin["password"], auditor["password"], admin["flask_secret_key"])
    # Without the admin password an existing user store can no longer be administered; it holds
    # nothing but the two accounts of this view, so it is recreated with the new secrets.
    auth_db_file(paths).unlink(missing_ok=True)
    creds = Credentials(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_hex(32))
    _write_private(
        admin_file(paths),
        json.dumps(
            {"username": ADMIN_USERNAME, "password": creds.admin_password, "flask_secret_key": creds.flask_secret_key},
            indent=2,
        ),
    )
    _write_private(
        auditor_file(paths), json.dumps({"username": AUDITOR_USERNAME, "password": creds.auditor_password}, indent=2)
    )
    return creds


def write_auth_config(paths: ProjectPaths) -> Path:
    """MLflow's basic-auth config: READ for every user without a grant, user store under ``audit_dir``.

    The database URI must be absolute: MLflow's shipped default (``sqlite:///basic_auth.db``) is
    relative to whatever directory the server starts in.
    """
    config = configparser.ConfigParser()
    config["mlflow"] = {
        "default_permission": "READ",
        "database_uri": f"sqlite:///{auth_db_file(paths)}",
        "admin_username": ADMIN_USERNAME,
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        # With workspaces on (see mlflow_command), a user without a grant gets default_permission
        # in the default workspace only through this switch; READ does not include creating.
        "grant_default_workspace_access": "true",
    }
    target = auth_config_file(paths)
    with target.open("w") as handle:
        config.write(handle)
    return target


def dagster_command(host: str, port: int, workspace: Path = WORKSPACE_FILE) -> list[str]:
    """The read-only Dagster webserver (no daemon: nothing is launched by merely viewing)."""
    return [_venv_tool("dagster-webserver"), "--read-only", "-w", str(workspace), "-h", host, "-p", str(port)]


def reports_command(host: str, port: int) -> list[str]:
    """The publication server, exactly as ``make ui`` and ``make audit`` run it."""
    return [sys.executable, "-m", "mlcomops_assets.report_server", "--host", host, "--port", str(port)]


def mlflow_command(paths: ProjectPaths, host: str, port: int) -> list[str]:
    """MLflow's basic-auth app on the project's tracking store.

    ``--enable-workspaces``: without it MLflow lets every logged-in user create experiments and
    registered models (and then runs in them), whatever ``default_permission`` says; with it,
    creating needs a workspace grant the auditor does not have (measured: 200 without, 403 with).
    The tracking store's schema already has the ``default`` workspace, so nothing is migrated.
    ``--allowed-hosts`` narrows MLflow's Host-header check (against DNS rebinding) to this address;
    ``--no-serve-artifacts`` removes the artifact-upload proxy, which this view does not need (the
    server still reads the local artifact store for the UI). One worker is plenty for an auditor.
    """
    from mlcomops_assets.profile import mlflow_locations

    locations = mlflow_locations(paths)
    # A team store's URI carries a password: it reaches the server through its environment
    # (MLFLOW_BACKEND_STORE_URI, server_env), never the command line other users can list.
    store = ["--backend-store-uri", locations.tracking_uri] if locations.is_sqlite else []
    return [
        _venv_tool("mlflow"),
        "server",
        "--app-name",
        "basic-auth",
        *store,
        "--default-artifact-root",
        locations.artifact_root,
        "--no-serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--allowed-hosts",
        f"{host}:{port},localhost:{port}",
        "--workers",
        "1",
        "--enable-workspaces",
    ]


def server_env(paths: ProjectPaths, creds: Credentials | None = None) -> dict[str, str]:
    """Environment of the servers: this project home and its Dagster instance, telemetry off;
    with ``creds``, what MLflow's auth app needs (config path, bootstrap admin password, CSRF key)."""
    from mlcomops_assets.profile import mlflow_locations

    env = {**os.environ, **QUIET_ENV, HOME_ENV_VAR: str(paths.home), "DAGSTER_HOME": str(paths.dagster_home)}
    locations = mlflow_locations(paths)
    if not locations.is_sqlite:
        env["MLFLOW_BACKEND_STORE_URI"] = locations.tracking_uri
        if locations.s3_endpoint_url:
            env.setdefault("MLFLOW_S3_ENDPOINT_URL", locations.s3_endpoint_url)
    if creds is not None:
        env.update(
            MLFLOW_AUTH_CONFIG_PATH=str(auth_config_file(paths)),
            MLFLOW_AUTH_ADMIN_PASSWORD=creds.admin_password,
            MLFLOW_FLASK_SERVER_SECRET_KEY=creds.flask_secret_key,
            # MLflow's GenAI job runner (8 extra processes) runs server-side jobs; a read-only view has none.
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        )
    return env


def _venv_tool(name: str) -> str:
    """A console script of this interpreter's environment, found without relying on PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def start_process(command: list[str], env: Mapping[str, str], cwd: Path, log: Path | None = None) -> subprocess.Popen:
    """Start a server in its own session: a Ctrl-C at the terminal reaches only this module, which
    then stops the servers with SIGINT (see ``AuditView.stop``), and a server that hangs
    can be killed with its whole process group."""
    out = log.open("ab") if log else None
    try:
        return subprocess.Popen(
            command,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
        )
    finally:
        if out:
            out.close()


def reap(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Wait for a server that was sent SIGINT; SIGKILL its whole process group if it has not exited
    within ``timeout`` seconds, or if anything of its group is still there shortly afterwards."""
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout)
    deadline = time.monotonic() + (5.0 if process.poll() is not None else 0.0)
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# Requests to the view's own servers never go through a proxy from the environment (HTTP_PROXY):
# they carry the admin password, and must stay on 127.0.0.1.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def local_session() -> requests.Session:
    """An HTTP session that ignores proxy settings and .netrc, for the view's own 127.0.0.1 servers."""
    session = requests.Session()
    session.trust_env = False
    return session


def wait_for_http(url: str, process: subprocess.Popen, timeout: float) -> float:
    """Seconds until ``url`` answers with any HTTP status; fails if the server exits or times out."""
    start = time.monotonic()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with code {process.returncode} before {url} answered")
        try:
            with _DIRECT.open(url, timeout=2):
                return time.monotonic() - start
        except urllib.error.HTTPError:
            return time.monotonic() - start  # it answered, which is all that is asked here
        except OSError:
            pass
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.25)


def ensure_auditor(mlflow_url: str, creds: Credentials, timeout: float = 10.0) -> None:
    """Create the ``auditor`` user through MLflow's REST API as admin, or reset its password to the
    stored one. It holds no grant, so MLflow gives it the configured default, READ."""
    admin = (ADMIN_USERNAME, creds.admin_password)
    api = f"{mlflow_url}/api/2.0/mlflow/users"
    http = local_session()
    found = http.get(f"{api}/get", params={"username": AUDITOR_USERNAME}, auth=admin, timeout=timeout)
    if found.status_code == 401:
        raise RuntimeError(
            f"MLflow refused the admin password from {AUDIT_DIR_NAME}/admin.json; its user store "
            f"{AUTH_DB_NAME} was made with other secrets. Delete the folder {AUDIT_DIR_NAME}/ to start afresh."
        )
    if found.status_code == 200:
        if found.json()["user"].get("is_admin"):
            raise RuntimeError(f"MLflow user {AUDITOR_USERNAME!r} is an admin; refusing to use it as the auditor")
        response = http.patch(
            f"{api}/update-password",
            json={"username": AUDITOR_USERNAME, "password": creds.auditor_password},
            auth=admin,
            timeout=timeout,
        )
    else:
        response = http.post(
            f"{api}/create",
            json={"username": AUDITOR_USERNAME, "password": creds.auditor_password},
            auth=admin,
            timeout=timeout,
        )
    response.raise_for_status()


def start(
    paths: ProjectPaths | None = None,
    host: str = HOST,
    ports: Ports = Ports(),
    log_dir: Path | None = None,
    timeout: float = 120.0,
) -> tuple[AuditView, dict[str, float]]:
    """Start the three servers for ``paths`` (default: this project), wait until each answers and the
    auditor account exists. Returns the view and each server's start time in seconds. On any failure
    every server already started is stopped."""
    paths = paths or ProjectPaths(default_home())
    from mlcomops_assets.profile import mlflow_locations

    if mlflow_locations(paths).is_sqlite:
        paths.mlflow_artifact_root.mkdir(parents=True, exist_ok=True)
        # A copied project's store still names the original's artifact folder until it is aligned.
        rehome_store(database_path(paths.mlflow_tracking_uri), paths.mlflow_artifact_root)
    creds = ensure_credentials(paths)
    write_auth_config(paths)
    view = AuditView(paths, host, ports)
    logs = {name: (log_dir / f"{name}.log" if log_dir else None) for name in ("dagster", "reports", "mlflow")}
    started = time.monotonic()
    try:
        # All three start at once; they spend their first seconds importing.
        view.processes["dagster"] = start_process(
            dagster_command(host, ports.dagster), server_env(paths), paths.home, logs["dagster"]
        )
        view.processes["reports"] = start_process(
            reports_command(host, ports.reports), server_env(paths), paths.home, logs["reports"]
        )
        view.processes["mlflow"] = start_process(
            mlflow_command(paths, host, ports.mlflow), server_env(paths, creds), paths.home, logs["mlflow"]
        )
        ready_paths = {"dagster": "/server_info", "reports": "/", "mlflow": "/health"}
        seconds = {}
        for name, path in ready_paths.items():
            remaining = max(1.0, timeout - (time.monotonic() - started))
            wait_for_http(view.url(name) + path, view.processes[name], remaining)
            seconds[name] = round(time.monotonic() - started, 1)
        ensure_auditor(view.url("mlflow"), creds)
    except BaseException:
        view.stop()
        raise
    return view, seconds


def free_port(host: str = HOST) -> int:
    """A port nobody listens on right now (for tests and parallel views)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """``make audit``: start the view on 127.0.0.1 (deliberately not configurable), print where
    everything is, run until Ctrl-C or until a server exits, then stop all of them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dagster-port", type=int, default=DAGSTER_PORT)
    parser.add_argument("--reports-port", type=int, default=REPORTS_PORT)
    parser.add_argument("--mlflow-port", type=int, default=MLFLOW_PORT)
    args = parser.parse_args(argv)
    paths = ProjectPaths(default_home())
    # Ctrl-C and SIGTERM both end the view cleanly. SIGINT is set explicitly because a background
    # job of a non-interactive shell starts with it ignored (stack facts), and the servers would
    # inherit that.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    view, seconds = start(paths, HOST, Ports(args.dagster_port, args.reports_port, args.mlflow_port))
    try:
        print(
            "Auditor view (read-only), started in "
            f"{max(seconds.values()):.0f} s:\n"
            f"  Dagster lineage and evidence  {view.url('dagster')}   (read-only webserver, no daemon)\n"
            f"  published reports             {view.url('reports')}\n"
            f"  MLflow runs and registry      {view.url('mlflow')}/#/models?workspace=default"
            "   (login required, READ only)\n"
            f"  auditor's MLflow login        {auditor_file(paths)}  (user '{AUDITOR_USERNAME}', mode 0600)\n"
            f"  admin login (operators only)  {admin_file(paths)}\n"
            "Ctrl-C stops all three.",
            flush=True,
        )
        while all(process.poll() is None for process in view.processes.values()):
            time.sleep(1)
        exited = [name for name, process in view.processes.items() if process.poll() is not None]
        print(f"stopping: {', '.join(exited)} exited", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        view.stop()


if __name__ == "__main__":
    main()
