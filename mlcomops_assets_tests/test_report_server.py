"""The publication server serves the aggregate evidence and not one byte of anything else.

The server runs as ``make ui`` and ``make audit`` start it (``python -m mlcomops_assets.report_server``)
in a project home whose data layers, Dagster and MLflow stores hold marker strings; a corpus of
traversal requests is sent as raw bytes over a socket, so no client library normalizes them first.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlcomops_assets.settings import ProjectPaths

SECRET = "PERSONAL-DATA-MARKER-7f3a"
REPORT = "<html><body>aggregate drift report</body></html>"
DRIFT_HTML = b"/batch_reports/drift-2001.html"  # where batch monitoring publishes a batch's drift report


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _request(port: int, target: bytes, method: bytes = b"GET", extra: bytes = b"") -> tuple[int, bytes]:
    """Send one request line exactly as given; return the status code and the whole body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra + b"\r\n"
        )
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _project(home: Path) -> ProjectPaths:
    """A home with published reports, every data layer and both stores, each holding the marker."""
    paths = ProjectPaths(home)
    paths.batch_reports_dir.mkdir(parents=True)
    (paths.batch_reports_dir / "drift-2001.html").write_text(REPORT)
    paths.reports_dir.mkdir(parents=True)
    paths.selection_dir.mkdir(parents=True)
    (paths.selection_dir / "model_selection.md").write_text("# Model selection\n")
    (paths.reports_dir / ".fairness_report.json.abc.tmp").write_text(SECRET)  # an atomic write in flight
    for layer in ("raw", "validated", "prepared", "monitoring", "quarantine", "models", "validation", "inbox"):
        (paths.data_dir / layer).mkdir(parents=True, exist_ok=True)
        (paths.data_dir / layer / "source.csv").write_text(f"name\n{SECRET}\n")
    paths.mlflow_dir.mkdir()
    (paths.mlflow_dir / "mlflow.db").write_text(SECRET)
    paths.dagster_home.mkdir()
    (paths.dagster_home / "runs.db").write_text(SECRET)
    (home / "governance.yaml").write_text(f"# {SECRET}\n")
    # Links planted inside the publication folder, pointing out of it.
    (paths.published_dir / "raw").symlink_to(paths.raw_dir)
    (paths.reports_dir / "mlflow.db").symlink_to(paths.mlflow_dir / "mlflow.db")
    (paths.reports_dir / "passwd.html").symlink_to("/etc/passwd")
    (paths.reports_dir / "up").symlink_to("../..")
    return paths


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("published_home")
    _project(home)
    port = _free_port()
    env = {**os.environ, "MLCOMOPS_HOME": str(home)}
    # Exactly the command line of `make ui` / `make audit`.
    process = subprocess.Popen(
        [sys.executable, "-m", "mlcomops_assets.report_server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"report server exited: {process.stdout.read().decode()}")
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("report server did not answer within 30 s")
    yield port
    process.terminate()
    process.wait(timeout=10)


# Percent-encoded, double-encoded, mixed-case and overlong `..`, backslashes, `;` and NUL tricks,
# absolute paths and absolute URIs, and the links planted inside the folder.
TRAVERSALS = [
    b"/%2e%2e/raw/source.csv",
    b"/reports/%2e%2e/%2e%2e/raw/source.csv",
    b"/reports/%2E%2E/%2E%2E/raw/source.csv",
    b"/reports/.%2e/.%2e/raw/source.csv",
    b"/reports/%2e./%2e./validated/source.csv",
    b"/reports/..%2f..%2fprepared/source.csv",
    b"/reports/..%2F..%2Fmonitoring/source.csv",
    b"/reports/%252e%252e/%252e%252e/raw/source.csv",
    b"/reports/%25252e%25252e/raw/source.csv",
    b"/reports/..%5c..%5cquarantine%5csource.csv",
    b"/reports/..\\..\\raw\\source.csv",
    b"/reports/..;/..;/raw/source.csv",
    b"/batch_reports/drift-2001.html;/../../../raw/source.csv",
    b"/batch_reports/drift-2001.html%00/../../../raw/source.csv",
    b"/reports/..%00/raw/source.csv",
    b"/%c0%ae%c0%ae/%c0%ae%c0%ae/raw/source.csv",
    b"/%2fetc/passwd",
    b"//etc/passwd",
    b"/%2f%2e%2e%2f%2e%2e%2fetc/passwd",
    b"http://127.0.0.1/../../raw/source.csv",
    b"/raw/source.csv",
    b"/reports/mlflow.db",
    b"/reports/passwd.html",
    b"/reports/up/.mlflow/mlflow.db",
    b"/reports/up/raw/source.csv",
    b"/reports/up/governance.yaml",
    b"/../.dagster_home/runs.db",
    b"/%2e%2e/%2e%2e/.mlflow/mlflow.db",
    b"/reports/.fairness_report.json.abc.tmp",
    b"/reports/%2efairness_report.json.abc.tmp",
    b"/",
    b"/reports/",
    b"/batch_reports",
    b"/%2e%2e/",
]


def test_published_reports_are_served_with_their_types(server):
    status, body = _request(server, DRIFT_HTML)
    assert (status, body.decode()) == (200, REPORT)
    with socket.create_connection(("127.0.0.1", server), timeout=10) as conn:
        conn.sendall(b"HEAD /selection/model_selection.md HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        head = conn.recv(65536).decode().lower()
    assert "content-type: text/plain; charset=utf-8" in head  # shown as text, not offered as a download
    assert "x-content-type-options: nosniff" in head


@pytest.mark.parametrize("target", TRAVERSALS, ids=[t.decode(errors="replace")[:60] for t in TRAVERSALS])
def test_no_request_reaches_outside_the_publication_folder(server, target):
    status, body = _request(server, target)
    assert status in (403, 404), f"{target!r} answered {status}"
    assert SECRET.encode() not in body
    assert b"root:" not in body  # /etc/passwd


def test_only_reading_methods(server):
    for method in (b"POST", b"PUT", b"DELETE", b"PATCH"):
        status, body = _request(server, DRIFT_HTML, method, b"Content-Length: 0\r\n")
        assert status == 405 and SECRET.encode() not in body


def test_requests_the_parser_refuses_leak_nothing(server):
    """Raw NUL and control bytes are rejected by the HTTP parser itself (400), still without data."""
    for target in (b"/reports/..\x00/raw/source.csv", b"/reports/\x01../raw/source.csv"):
        try:
            status, body = _request(server, target)
        except (ConnectionResetError, IndexError):
            continue  # connection dropped: nothing served
        assert status in (400, 403, 404) and SECRET.encode() not in body
