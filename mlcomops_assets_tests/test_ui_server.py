"""The guarded Dagster UI (``make ui``) refuses CSRF and DNS-rebinding requests and passes the UI's own.

One real server for the module: ``python -m mlcomops_assets.ui_server`` under uvicorn on a free
127.0.0.1 port, over a temporary project home and Dagster instance. Mutations used are real and
harmless: stopping and starting a sensor (no daemon runs, so a running sensor does nothing). Every
refusal is checked twice: the 403 answer and, through the Dagster instance, that the sensor's
state did not change; the accepted same-origin mutation proves the same request would change it.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from mlcomops_assets_tests.conftest import REPO, write_home

STARTUP_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
LOCATION = "mlcomops_assets"
SENSOR = "inbox_sensor"
FOREIGN_ORIGIN = "http://evil.example"
SELECTOR = f'{{repositoryLocationName: "{LOCATION}", repositoryName: "__repository__", sensorName: "{SENSOR}"}}'
SENSOR_QUERY = "{ sensorOrError(sensorSelector: " + SELECTOR + ") { ... on Sensor { id sensorState { status } } } }"
START_SENSOR = "mutation { startSensor(sensorSelector: " + SELECTOR + ") { __typename } }"


@dataclass(frozen=True)
class UI:
    """A running guarded UI: where it listens and which instance it serves."""

    port: int
    dagster_home: Path
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://{self.host}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(
    ui: UI, method: str, path: str, body: bytes | str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One HTTP request to the UI (loopback only); ``headers`` may override Host."""
    connection = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=REQUEST_TIMEOUT_S)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def graphql_post(ui: UI, document: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """A GraphQL POST as the UI sends it (JSON body); same-origin unless ``headers`` say otherwise."""
    sent = {"Content-Type": "application/json", "Origin": ui.origin, **(headers or {})}
    status, body = request(ui, "POST", "/graphql", json.dumps({"query": document}), sent)
    return status, json.loads(body)


def graphql_get_path(*documents: str, **params: str) -> str:
    return "/graphql?" + urllib.parse.urlencode([("query", d) for d in documents] + list(params.items()))


def sensor_id(ui: UI) -> str:
    status, answer = graphql_post(ui, SENSOR_QUERY)
    assert status == 200, answer
    return answer["data"]["sensorOrError"]["id"]


def stop_sensor(ui: UI) -> str:
    return "mutation { stopSensor(id: " + json.dumps(sensor_id(ui)) + ") { __typename } }"


def stored_sensor_status(ui: UI) -> str | None:
    """The sensor's status as stored in the Dagster instance (None: never toggled, runs by default)."""
    with dg.DagsterInstance.from_config(str(ui.dagster_home)) as instance:
        for state in instance.all_instigator_state():
            if state.name == SENSOR:
                return state.status.value
    return None


def assert_refused(status: int, body: bytes, reason: str) -> None:
    assert status == 403, body
    answer = json.loads(body)
    assert answer["error"] == "forbidden"
    assert reason in answer["reason"], answer


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    """The guarded UI over a fresh project home, stopped (SIGINT, then SIGKILL) whatever happens."""
    home = write_home(tmp_path_factory.mktemp("ui_home"))
    dagster_home = home / ".dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "config" / "dagster.yaml", dagster_home / "dagster.yaml")  # as `make` does
    ui = UI(port=_free_port(), dagster_home=dagster_home, log=home / "ui_server.log")
    env = {
        **os.environ,
        "MLCOMOPS_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "GX_ANALYTICS_ENABLED": "False",
    }
    command = [sys.executable, "-m", "mlcomops_assets.ui_server", "-w", str(REPO / "workspace.yaml")]
    with ui.log.open("wb") as log:
        # Own session: SIGINT reaches the server and its code-server child, and nothing else.
        process = subprocess.Popen(
            [*command, "--port", str(ui.port)],
            cwd=home,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"ui_server exited with {process.returncode}:\n{ui.log.read_text()[-3000:]}")
            try:
                if request(ui, "GET", "/server_info")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"ui_server not up after {STARTUP_TIMEOUT_S} s:\n{ui.log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield ui
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT_S)


def test_get_queries_still_work(ui: UI):
    status, body = request(ui, "GET", graphql_get_path("{ version }"))
    assert status == 200, body
    assert json.loads(body)["data"]["version"] == dg.__version__
    # The UI's own GET fetches carry Sec-Fetch-Site: same-origin and no Origin.
    status, body = request(ui, "GET", graphql_get_path("{ version }"), headers={"Sec-Fetch-Site": "same-origin"})
    assert status == 200, body
    status, body = request(ui, "GET", "/", headers={"Sec-Fetch-Site": "none"})
    assert status == 200 and b"<html" in body


def test_same_origin_post_query_works(ui: UI):
    status, answer = graphql_post(ui, SENSOR_QUERY)
    assert status == 200, answer
    assert answer["data"]["sensorOrError"]["sensorState"]["status"] == "RUNNING"
    # localhost is the same server under its other loopback name.
    status, answer = graphql_post(
        ui, "{ version }", {"Host": f"localhost:{ui.port}", "Origin": f"http://localhost:{ui.port}"}
    )
    assert status == 200, answer


@pytest.mark.parametrize(
    "variant", ["plain", "operation_name_picks_a_query", "repeated_query_parameter", "graphiql_accept_html"]
)
def test_get_mutation_is_refused_and_changes_nothing(ui: UI, variant: str):
    before = stored_sensor_status(ui)
    mutation = stop_sensor(ui)
    path, headers = graphql_get_path(mutation), {}
    if variant == "operation_name_picks_a_query":
        named = "query Q { version } " + mutation.replace("mutation", "mutation M", 1)
        path = graphql_get_path(named, operationName="Q")
    elif variant == "repeated_query_parameter":
        path = graphql_get_path(mutation, "{ version }")  # Starlette would execute the last one
    elif variant == "graphiql_accept_html":
        headers = {"Accept": "text/html"}
    status, body = request(ui, "GET", path, headers=headers)
    assert_refused(status, body, "mutations are only accepted by POST")
    after = stored_sensor_status(ui)
    assert after == before and after != "STOPPED"


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({"Origin": FOREIGN_ORIGIN}, "cross-origin request refused"),
        ({"Origin": "null"}, "cross-origin request refused"),  # sandboxed iframe, file://
        # Another local server (MLflow UI, report server) is the same site but another origin.
        ({"Origin": "http://127.0.0.1:5000"}, "cross-origin request refused"),
        ({"Origin": None, "Sec-Fetch-Site": "cross-site"}, "cross-site request refused"),
        ({"Origin": None, "Sec-Fetch-Site": "same-site"}, "cross-site request refused"),
    ],
)
def test_cross_origin_post_mutation_is_refused(ui: UI, headers: dict, reason: str):
    before = stored_sensor_status(ui)
    sent = {"Content-Type": "application/json", "Origin": ui.origin, **headers}
    sent = {name: value for name, value in sent.items() if value is not None}
    status, body = request(ui, "POST", "/graphql", json.dumps({"query": stop_sensor(ui)}), sent)
    assert_refused(status, body, reason)
    after = stored_sensor_status(ui)
    assert after == before and after != "STOPPED"


def test_simple_request_bodies_are_refused(ui: UI):
    """What a cross-site form or a no-cors fetch can send without a preflight, even with no Origin."""
    before = stored_sensor_status(ui)
    mutation = stop_sensor(ui)
    # Dagster executes the URL's document when the body is a form.
    status, body = request(
        ui, "POST", graphql_get_path(mutation), "a=b", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_refused(status, body, "must be application/json or application/graphql")
    # Dagster's substring test would read this text/plain body as JSON.
    status, body = request(
        ui, "POST", "/graphql", json.dumps({"query": mutation}), {"Content-Type": "text/plain; application/json"}
    )
    assert_refused(status, body, "must be application/json or application/graphql")
    status, body = request(
        ui, "POST", "/graphql", json.dumps([{"query": mutation}]), {"Content-Type": "application/json"}
    )
    assert_refused(status, body, "batched GraphQL requests are not supported")
    after = stored_sensor_status(ui)
    assert after == before and after != "STOPPED"


def test_foreign_host_is_refused(ui: UI):
    status, body = request(ui, "GET", "/", headers={"Host": f"evil.example:{ui.port}"})
    assert_refused(status, body, "is not served here")
    # DNS rebinding: the page's Origin matches its (foreign) Host; the Host alone decides.
    before = stored_sensor_status(ui)
    rebound = {"Host": f"evil.example:{ui.port}", "Origin": f"http://evil.example:{ui.port}"}
    status, body = request(
        ui, "POST", "/graphql", json.dumps({"query": stop_sensor(ui)}), {"Content-Type": "application/json", **rebound}
    )
    assert_refused(status, body, "is not served here")
    assert stored_sensor_status(ui) == before


def test_same_origin_post_mutation_is_accepted(ui: UI):
    """The guard passes the UI's own mutations: the sensor stops, then starts again (restored)."""
    try:
        status, answer = graphql_post(ui, stop_sensor(ui))
        assert status == 200, answer
        assert answer["data"]["stopSensor"]["__typename"] == "StopSensorMutationResult"
        assert stored_sensor_status(ui) == "STOPPED"
    finally:
        status, answer = graphql_post(ui, START_SENSOR)
    assert status == 200, answer
    assert answer["data"]["startSensor"]["__typename"] == "Sensor"
    assert stored_sensor_status(ui) == "RUNNING"


def _websocket_handshake(ui: UI, origin: str) -> bytes:
    """The status line of a WebSocket handshake on /graphql (browsers always send Origin)."""
    with socket.create_connection(("127.0.0.1", ui.port), timeout=REQUEST_TIMEOUT_S) as sock:
        sock.sendall(
            (
                "GET /graphql HTTP/1.1\r\n"
                f"Host: {ui.host}\r\nOrigin: {origin}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: graphql-ws\r\n\r\n"
            ).encode()
        )
        return sock.recv(4096).split(b"\r\n", 1)[0]


def test_websocket_from_foreign_origin_is_refused(ui: UI):
    assert b" 403 " in _websocket_handshake(ui, FOREIGN_ORIGIN)
    assert b" 101 " in _websocket_handshake(ui, ui.origin)
