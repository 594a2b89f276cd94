"""The auditor view (``make audit``): the three real servers, started by the same code as ``make audit``,
on free ports of 127.0.0.1 over a home where the whole graph ran. Nothing an auditor sends may change
the evidence; refusals are checked both at the door (GraphQL types, HTTP codes) and in the stores."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import dagster as dg
import mlflow
import pytest
import requests

from mlcomops_assets import audit_view
from mlcomops_assets.constants import (
    CHAMPION_ALIAS,
    DAILY_MONITORING,
    END_TO_END_JOB,
    INBOX_SENSOR,
    RETRAINING_SENSOR,
    WEEKLY_RETRAINING,
)
from mlcomops_assets.policy import load_policy
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.conftest import system_chromium

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 15  # seconds per HTTP request; every request goes to 127.0.0.1
PROBE_ALIAS = "audit_probe"
HTTP = audit_view.local_session()  # no proxy from the environment: all traffic stays on 127.0.0.1


@pytest.fixture(scope="module")
def audit(default_run, tmp_path_factory):
    """The view over the session's fully materialized home; servers always stopped at teardown."""
    home, result, instance = default_run
    assert result.success, "the default run must succeed for the auditor view to have evidence"
    paths = ProjectPaths(home)
    logs = tmp_path_factory.mktemp("audit_logs")
    ports = audit_view.Ports(audit_view.free_port(), audit_view.free_port(), audit_view.free_port())
    started = time.monotonic()
    try:
        view, seconds = audit_view.start(paths, audit_view.HOST, ports, log_dir=logs, timeout=120)
    except Exception as error:
        tails = "\n".join(
            f"--- {log.name}\n" + log.read_text(errors="replace")[-3000:] for log in sorted(logs.glob("*.log"))
        )
        pytest.fail(f"the auditor view did not start: {error}\n{tails}")
    print(f"auditor view ready in {time.monotonic() - started:.1f} s; per server {seconds}")
    try:
        yield view, instance, result
    finally:
        stopping = time.monotonic()
        view.stop()
        print(f"auditor view stopped in {time.monotonic() - stopping:.1f} s")
        assert all(process.poll() is not None for process in view.processes.values())


def graphql(view: audit_view.AuditView, query: str, method: str = "POST") -> requests.Response:
    url = view.url("dagster") + "/graphql"
    if method == "GET":
        return HTTP.get(url, params={"query": query}, timeout=TIMEOUT)
    return HTTP.post(url, json={"query": query}, timeout=TIMEOUT)


def test_credentials_are_generated_private_and_ignored_by_git(audit):
    view, _, _ = audit
    paths = view.paths
    admin = json.loads(audit_view.admin_file(paths).read_text())
    auditor = json.loads(audit_view.auditor_file(paths).read_text())
    assert stat.S_IMODE(audit_view.audit_dir(paths).stat().st_mode) == 0o700
    for secret in (audit_view.admin_file(paths), audit_view.auditor_file(paths)):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert len(admin["password"]) >= 24 and len(auditor["password"]) >= 24
    assert admin["password"] != auditor["password"]
    # The auditor's file can be handed over: it does not carry the admin's secrets.
    assert admin["password"] not in audit_view.auditor_file(paths).read_text()
    config = audit_view.auth_config_file(paths).read_text()
    assert "default_permission = READ" in config
    assert admin["password"] not in config and auditor["password"] not in config
    # In the repository, the same folder is ignored by git (the view's home is the repo there).
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(REPO / audit_view.AUDIT_DIR_NAME / "admin.json")], cwd=REPO, check=False
    )
    assert ignored.returncode == 0, f"{audit_view.AUDIT_DIR_NAME}/ is not in .gitignore"


def test_credentials_are_kept_across_starts_and_regenerated_when_lost(tmp_path):
    paths = ProjectPaths(tmp_path)
    first = audit_view.ensure_credentials(paths)
    assert audit_view.ensure_credentials(paths) == first  # a restart reuses the stored secrets
    audit_view.auth_db_file(paths).write_text("stale user store")
    audit_view.admin_file(paths).unlink()
    fresh = audit_view.ensure_credentials(paths)
    # Without the admin password the old user store is useless: new secrets, store dropped.
    assert fresh.admin_password != first.admin_password and fresh.auditor_password != first.auditor_password
    assert not audit_view.auth_db_file(paths).exists()


def test_dagster_reports_every_permission_false(audit):
    view, _, _ = audit
    response = graphql(view, "{ permissions { permission value } }")
    response.raise_for_status()
    permissions = {p["permission"]: p["value"] for p in response.json()["data"]["permissions"]}
    assert "launch_pipeline_execution" in permissions and "wipe_assets" in permissions
    assert not [name for name, value in permissions.items() if value], permissions


def _instigators(view: audit_view.AuditView) -> dict:
    """Location, repository and the real sensors and schedules, read through the webserver."""
    query = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
        name location { name }
        sensors { name jobOriginId sensorState { id selectorId status } }
        schedules { name scheduleState { id selectorId status } } } } } }"""
    response = graphql(view, query)
    response.raise_for_status()
    [repo] = response.json()["data"]["repositoriesOrError"]["nodes"]
    return {
        "location": repo["location"]["name"],
        "repository": repo["name"],
        "sensors": {s["name"]: s for s in repo["sensors"]},
        "schedules": {s["name"]: s for s in repo["schedules"]},
    }


def _mutations(view: audit_view.AuditView, run_id: str) -> dict[str, str]:
    info = _instigators(view)
    assert {INBOX_SENSOR, RETRAINING_SENSOR} <= info["sensors"].keys()
    assert {DAILY_MONITORING, WEEKLY_RETRAINING} <= info["schedules"].keys()
    repo = f'repositoryLocationName: "{info["location"]}", repositoryName: "{info["repository"]}"'
    sensor = info["sensors"][INBOX_SENSOR]
    schedule = info["schedules"][DAILY_MONITORING]
    schedule_origin = schedule["scheduleState"]["id"].split("::")[0]
    # Each result names its __typename, so a refusal is told apart from a success or a PythonError.
    fields = "{ __typename ... on PythonError { message } }"
    return {
        "launchRun": f'launchRun(executionParams: {{selector: {{{repo}, jobName: "{END_TO_END_JOB}"}}}}) {fields}',
        "launchPartitionBackfill": "launchPartitionBackfill(backfillParams: {assetSelection: "
        f'[{{path: ["production_batch"]}}, {{path: ["batch_predictions"]}}], allPartitions: true}}) {fields}',
        "wipeAssets": f'wipeAssets(assetPartitionRanges: [{{assetKey: {{path: ["raw_data"]}}}}]) {fields}',
        "deleteRun": f'deleteRun(runId: "{run_id}") {fields}',
        "startSensor": f'startSensor(sensorSelector: {{{repo}, sensorName: "{RETRAINING_SENSOR}"}}) {fields}',
        "stopSensor": f'stopSensor(id: "{sensor["sensorState"]["id"]}", jobOriginId: "{sensor["jobOriginId"]}", '
        f'jobSelectorId: "{sensor["sensorState"]["selectorId"]}") {fields}',
        "startSchedule": f'startSchedule(scheduleSelector: {{{repo}, scheduleName: "{WEEKLY_RETRAINING}"}}) {fields}',
        "stopRunningSchedule": f'stopRunningSchedule(id: "{schedule["scheduleState"]["id"]}", '
        f'scheduleOriginId: "{schedule_origin}", '
        f'scheduleSelectorId: "{schedule["scheduleState"]["selectorId"]}") {fields}',
    }


def _evidence(instance: dg.DagsterInstance) -> dict:
    """What a successful mutation would change: runs, backfills, asset history, instigator states."""
    keys = sorted(instance.get_asset_keys(), key=lambda k: k.to_user_string())
    return {
        "runs": sorted(run.run_id for run in instance.get_runs()),
        "backfills": len(instance.get_backfills()),
        "materializations": {
            key.to_user_string(): len(instance.fetch_materializations(key, limit=1000).records) for key in keys
        },
        "instigators": sorted((s.name, s.status.value) for s in instance.all_instigator_state()),
    }


def test_dagster_refuses_every_mutation_by_post_and_get(audit):
    view, instance, result = audit
    before = _evidence(instance)
    assert result.run_id in before["runs"] and before["materializations"]["raw_data"] >= 1
    outcomes = {}
    for name, mutation in _mutations(view, result.run_id).items():
        for method in ("POST", "GET"):
            response = graphql(view, f"mutation {{ {mutation} }}", method)
            if response.status_code >= 400:
                outcomes[(name, method)] = f"HTTP {response.status_code}"
                continue
            body = response.json()
            assert not body.get("errors"), f"{name} is not a valid mutation: {body['errors']}"
            outcomes[(name, method)] = body["data"][name]["__typename"]
    print("refusals:", {f"{n} {m}": outcome for (n, m), outcome in outcomes.items()})
    accepted = {k: v for k, v in outcomes.items() if v != "UnauthorizedError" and not v.startswith("HTTP 4")}
    assert not accepted, f"mutations not refused: {accepted}"
    assert _evidence(instance) == before
    assert instance.has_run(result.run_id)


def _mlflow_logins(view: audit_view.AuditView) -> tuple[tuple[str, str], tuple[str, str]]:
    admin = json.loads(audit_view.admin_file(view.paths).read_text())
    auditor = json.loads(audit_view.auditor_file(view.paths).read_text())
    return (admin["username"], admin["password"]), (auditor["username"], auditor["password"])


def _first_artifact(api: str, run_id: str, login: tuple[str, str], path: str = "") -> str:
    """The first artifact file of a run, found through the REST listing (depth-first)."""
    params = {"run_id": run_id, **({"path": path} if path else {})}
    listing = HTTP.get(f"{api}/artifacts/list", params=params, auth=login, timeout=TIMEOUT)
    assert listing.status_code == 200, listing.text
    entries = listing.json().get("files", [])
    assert entries, f"run {run_id} has no artifact under {path!r}"
    files = [entry["path"] for entry in entries if not entry["is_dir"]]
    return files[0] if files else _first_artifact(api, run_id, login, entries[0]["path"])


def test_mlflow_auditor_reads_but_cannot_change_the_registry(audit):
    view, _, _ = audit
    api = view.url("mlflow") + "/api/2.0/mlflow"
    admin, auditor = _mlflow_logins(view)
    policy = load_policy(view.paths.policy_file)
    model = policy.model.registered_name
    uri = view.paths.mlflow_tracking_uri  # straight from SQLite; the registry URI too, not a global default
    store = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = str(store.get_model_version_by_alias(model, CHAMPION_ALIAS).version)
    alias_url = f"{api}/registered-models/alias"
    champion_query = {"name": model, "alias": CHAMPION_ALIAS}

    # Without (valid) credentials nothing is served.
    assert HTTP.get(f"{api}/registered-models/get", params={"name": model}, timeout=TIMEOUT).status_code == 401
    wrong = (auditor[0], auditor[1] + "x")
    assert (
        HTTP.get(f"{api}/registered-models/get", params={"name": model}, auth=wrong, timeout=TIMEOUT).status_code == 401
    )

    # The auditor reads the model, its champion and the runs behind it.
    read = HTTP.get(f"{api}/registered-models/get", params={"name": model}, auth=auditor, timeout=TIMEOUT)
    assert read.status_code == 200 and read.json()["registered_model"]["name"] == model
    alias = HTTP.get(alias_url, params=champion_query, auth=auditor, timeout=TIMEOUT)
    assert alias.status_code == 200 and alias.json()["model_version"]["version"] == champion
    experiment = store.get_experiment_by_name(policy.model.experiment_name).experiment_id
    runs = HTTP.post(f"{api}/runs/search", json={"experiment_ids": [experiment]}, auth=auditor, timeout=TIMEOUT)
    assert runs.status_code == 200 and runs.json()["runs"]
    # Artifacts too, although the view has no artifact proxy (--no-serve-artifacts): the UI's reader.
    run_id = store.get_model_version_by_alias(model, CHAMPION_ALIAS).run_id
    artifact = _first_artifact(api, run_id, auditor)
    params = {"path": artifact, "run_uuid": run_id}
    got = HTTP.get(view.url("mlflow") + "/get-artifact", params=params, auth=auditor, timeout=TIMEOUT)
    assert got.status_code == 200 and got.content
    assert HTTP.get(view.url("mlflow") + "/get-artifact", params=params, timeout=TIMEOUT).status_code == 401

    # ... and changes nothing: alias set and delete, runs, experiments, models are all 403.
    refused = {
        "set alias": HTTP.post(alias_url, json={**champion_query, "version": champion}, auth=auditor, timeout=TIMEOUT),
        "set new alias": HTTP.post(
            alias_url, json={"name": model, "alias": PROBE_ALIAS, "version": champion}, auth=auditor, timeout=TIMEOUT
        ),
        # MLflow reads a DELETE's fields from its JSON body, as the admin's delete below does.
        "delete alias": HTTP.delete(alias_url, json=champion_query, auth=auditor, timeout=TIMEOUT),
        "create run": HTTP.post(
            f"{api}/runs/create", json={"experiment_id": experiment}, auth=auditor, timeout=TIMEOUT
        ),
        # Refused only because the view runs MLflow with --enable-workspaces (see audit_view).
        "create experiment": HTTP.post(
            f"{api}/experiments/create", json={"name": "auditor_probe"}, auth=auditor, timeout=TIMEOUT
        ),
        "create registered model": HTTP.post(
            f"{api}/registered-models/create", json={"name": "auditor_probe"}, auth=auditor, timeout=TIMEOUT
        ),
        "create user": HTTP.post(
            f"{api}/users/create",
            json={"username": "x", "password": "a-long-password-1"},
            auth=auditor,
            timeout=TIMEOUT,
        ),
    }
    print("MLflow auditor refusals:", {name: r.status_code for name, r in refused.items()})
    assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 403)
    # A foreign Host header (DNS rebinding) is refused before authentication.
    foreign = HTTP.get(
        f"{api}/registered-models/get",
        params={"name": model},
        auth=auditor,
        headers={"Host": "attacker.example"},
        timeout=TIMEOUT,
    )
    assert foreign.status_code == 403

    # The same request succeeds for the admin: the 403 is a permission, not a broken endpoint.
    try:
        granted = HTTP.post(
            alias_url, json={"name": model, "alias": PROBE_ALIAS, "version": champion}, auth=admin, timeout=TIMEOUT
        )
        assert granted.status_code == 200, granted.text
        assert str(store.get_model_version_by_alias(model, PROBE_ALIAS).version) == champion
    finally:
        restored = HTTP.delete(alias_url, json={"name": model, "alias": PROBE_ALIAS}, auth=admin, timeout=TIMEOUT)
    assert restored.status_code == 200, restored.text
    assert PROBE_ALIAS not in store.get_registered_model(model).aliases
    assert str(store.get_model_version_by_alias(model, CHAMPION_ALIAS).version) == champion
    assert not store.search_experiments(filter_string="name = 'auditor_probe'")
    assert not store.search_registered_models(filter_string="name = 'auditor_probe'")


def test_report_server_serves_and_refuses_writes(audit):
    view, _, _ = audit
    url = view.url("reports") + "/"
    assert HTTP.get(url, timeout=TIMEOUT).status_code < 500
    for method in ("POST", "PUT", "DELETE"):
        status = HTTP.request(method, url, data=b"x", timeout=TIMEOUT).status_code
        assert 400 <= status < 500, f"{method} / answered {status}"


def _artifacts_dir() -> Path:
    folder = Path(os.environ.get("MLCOMOPS_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_lineage_renders_in_a_real_browser(audit):
    from playwright.sync_api import sync_playwright

    view, _, _ = audit
    chromium = system_chromium()
    # The champion's whole upstream lineage: raw data to promotion, as an auditor traces it.
    url = view.url("dagster") + "/assets/champion_model?view=lineage&lineageScope=upstream&lineageDepth=20"
    outside = []

    def local_only(route):
        # Only the view itself: nothing leaves the machine, even if the UI tried.
        if route.request.url.startswith(f"http://{audit_view.HOST}:"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"], timeout=30_000
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(30_000)
            page.route("**/*", local_only)
            started = time.monotonic()
            page.goto(url, wait_until="networkidle", timeout=60_000)
            # A fresh browser profile gets Dagster's community dialog over the graph.
            skip = page.get_by_role("button", name="Skip")
            if skip.count():
                skip.click()
            for asset in ("raw_data", "validated_data", "trained_model"):
                page.get_by_text(asset, exact=True).first.wait_for(state="visible")
                assert page.get_by_text(asset, exact=True).first.is_visible(), asset
            # The UI itself knows it is read-only: its materialize buttons are disabled.
            materialize = page.get_by_role("button").filter(has_text=re.compile(r"^Materialize"))
            assert materialize.count() >= 1
            assert all(button.is_disabled() for button in materialize.all())
            print(f"lineage rendered in {time.monotonic() - started:.1f} s; requests blocked: {outside}")
            page.wait_for_timeout(500)  # let the graph's edges settle before the picture
            shot = _artifacts_dir() / "audit-lineage.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000

            # The MLflow UI works for the auditor in workspace mode: the registry shows the champion.
            _, auditor = _mlflow_logins(view)
            context = browser.new_context(
                viewport={"width": 1600, "height": 1000},
                http_credentials={"username": auditor[0], "password": auditor[1]},
            )
            registry = context.new_page()
            registry.set_default_timeout(30_000)
            registry.route("**/*", local_only)
            model = load_policy(view.paths.policy_file).model.registered_name
            # MLflow's UI polls, so it never reaches networkidle; wait for the content instead.
            registry.goto(f"{view.url('mlflow')}/#/models/{model}?workspace=default", wait_until="load")
            registry.get_by_text(CHAMPION_ALIAS).first.wait_for(state="visible")
            registry.screenshot(path=str(_artifacts_dir() / "audit-mlflow-registry.png"))
            assert not outside, f"the views tried to reach beyond 127.0.0.1: {outside}"
        finally:
            browser.close()
