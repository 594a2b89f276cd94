"""``mlcomops serve`` against a real project home: decisions explained exactly and stored as receipts,
invalid applications refused by rule and never logged, outcomes stored once, metrics, a hand-moved alias
and a tampered artifact refused while the last good champion keeps serving, a newly promoted champion
swapped in under load without a failed request, and ``mlcomops receipts verify`` naming a changed and a
deleted record.

The tests run in file order against one service (package fixture ``service``); each leaves the alias on
a version the pipeline's key signed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import tempfile
import threading
from contextlib import closing
from pathlib import Path

import pytest

from mlcomops_assets.lib.decision_log import DecisionLog
from mlcomops_assets.lib.promotion_record import (
    RECORD_TAG,
    SIGNATURE_TAG,
    PromotionRecord,
    default_key_file,
    load_private_key,
    public_key_hex,
    record_of,
    sign,
)
from mlcomops_assets.policy import load_policy
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.serving.conftest import (
    ADVERSE,
    FAVOURABLE,
    NAME,
    PSEUDONYM_KEY,
    Service,
    mlcomops,
    wait_for,
)

pytestmark = pytest.mark.e2e


def _client(paths: ProjectPaths):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(paths.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=paths.mlflow_tracking_uri, registry_uri=paths.mlflow_tracking_uri)


def _public_key() -> str:
    return public_key_hex(load_private_key(default_key_file()))


def _log(service: Service) -> DecisionLog:
    return DecisionLog(service.decision_log_url, PSEUDONYM_KEY.encode())


def _metric(service: Service, metric: str, /, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = service.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def _copy_of_v1(service: Service, client, label: str) -> str:
    """A new version of the registered model whose artifact is a copy of v1's in a folder of its own (so
    changing it leaves v1's bytes alone); no gate judged it and it carries no record."""
    v1_dir = Path(client.get_model_version_download_uri(NAME, "1"))
    target = service.paths.mlflow_artifact_root / "serving-tests" / label
    shutil.copytree(v1_dir, target, ignore=shutil.ignore_patterns("registered_model_meta"))
    return str(client.create_model_version(NAME, source=str(target)).version)


def _promote(client, version: str, previous: str) -> None:
    """Sign and apply a promotion as the pipeline's ``champion_model`` asset does (``_sign_promotion``):
    the artifact hashed as it will be loaded, a record signed with the project's key, the alias moved."""
    from mlcomops_assets.registry import download_and_hash

    key = load_private_key(default_key_file())
    with tempfile.TemporaryDirectory(prefix="serving-tests-") as tmp:
        _, digest = download_and_hash(client, NAME, version, Path(tmp))
    v1 = record_of(client.get_model_version(NAME, "1").tags, public_key_hex(key))
    record = PromotionRecord(
        registered_name=NAME,
        version=str(version),
        artifact_sha256=digest,
        evidence_sha256=dict(v1.evidence_sha256),
        verdict="promoted: every gate passed (a copy of v1, promoted by the serving tests)",
        decided_at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        dagster_run_id="serving-tests",
        previous_champion=previous,
        public_key=public_key_hex(key),
    )
    client.set_model_version_tag(NAME, version, RECORD_TAG, record.canonical().decode())
    client.set_model_version_tag(NAME, version, SIGNATURE_TAG, sign(record, key))
    client.set_registered_model_alias(NAME, "champion", version)


def _served_version(service: Service) -> str | None:
    return (service.health().get("serving") or {}).get("version")


def _refusal(service: Service) -> dict | None:
    return service.health()["champion_check"]["refused"]


# --- ready, decisions, receipts ----------------------------------------------------------------------


def test_the_verified_champion_is_served(service: Service):
    ready = service.get("/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    record = record_of(_client(service.paths).get_model_version(NAME, "1").tags, _public_key())
    assert body["model"] == {**body["model"], "name": NAME, "version": "1", "artifact_sha256": record.artifact_sha256}
    explainer = body["explainer"]
    assert explainer["matches_signed_evidence"] is True and "never unpickled" in explainer["source"]
    assert explainer["explainer_type"] == "LinearExplainer" and explainer["scale"] == "log_odds"
    assert body["outlier_detector"]["active"] and body["outlier_detector"]["matches_pipeline_record"] is True
    assert body["champion_check"]["ok"] is True
    assert service.health()["serving"]["version"] == "1"
    serving_dir = service.paths.data_dir / "serving"
    assert (serving_dir / ".gitignore").read_text().splitlines()[-1] == "*", "the decision log stays out of git"
    assert serving_dir.stat().st_mode & 0o077 == 0, "the decision log's folder is its owner's only"
    openapi = service.get("/openapi.json").json()
    assert {"/decisions", "/decisions/{receipt_id}", "/outcomes", "/health", "/ready", "/metrics"} <= set(
        openapi["paths"]
    )
    application = openapi["components"]["schemas"]["Application"]
    assert application["additionalProperties"] is False
    assert application["properties"]["checks"]["maximum"] == 10
    assert application["properties"]["employed"]["enum"] == ["Yes", "No"]
    assert set(application["required"]) == {"age", "citizen", "employed", "checks"}


def test_a_decision_is_explained_exactly_and_its_receipt_is_stored(service: Service):
    from mlcomops_assets.lib import explain, modeling
    from mlcomops_assets.registry import load_verified
    from mlcomops_assets.serving.scoring import application_frame

    answer = service.post("/decisions", {"applications": [FAVOURABLE, ADVERSE]})
    assert answer.status_code == 200, answer.text
    good, bad = answer.json()["decisions"]
    policy = load_policy(service.paths.policy_file)
    model = load_verified(_client(service.paths), NAME, "1", _public_key()).model
    frame = application_frame(
        [{k: v for k, v in row.items() if k in policy.data.feature_columns} for row in (FAVOURABLE, ADVERSE)], policy
    )
    log_odds = explain.explained_output(model, frame, policy)
    scores = modeling.positive_scores(model, frame, policy)
    for receipt, expected_log_odds, score in zip((good, bad), log_odds, scores, strict=True):
        attribution = receipt["attribution"]
        assert attribution["scale"] == "log_odds"
        assert set(attribution["contributions"]) == set(policy.data.feature_columns)
        total = attribution["base_value"] + sum(attribution["contributions"].values())
        assert abs(total - expected_log_odds) <= 1e-6, "base + contributions must add up to the model's log-odds"
        assert abs(attribution["value"] - expected_log_odds) <= 1e-9
        assert abs(receipt["score"] - score) <= 1e-12 and receipt["threshold"] == 0.5
        assert receipt["model"]["version"] == "1" and len(receipt["record_hash"]) == 64
        ranked = sorted(attribution["contributions"].items(), key=lambda kv: abs(kv[1]), reverse=True)
        assert [r["feature"] for r in receipt["reasons"]] == [name for name, _ in ranked[:3]]
        for reason in receipt["reasons"]:
            assert reason["direction"] == ("favourable" if reason["contribution"] > 0 else "unfavourable")
        assert "colour" not in attribution["contributions"] and "sex" not in attribution["contributions"]
        stored = service.get(f"/decisions/{receipt['receipt_id']}")
        assert stored.status_code == 200 and stored.json() == receipt, "the stored receipt is what was answered"
    assert (good["decision"], good["favourable"], good["explanation"]) == ("Yes", True, None)
    assert (bad["decision"], bad["favourable"]) == ("No", False)
    assert bad["explanation"] == policy.serving.explanation_text and "reviewed by a person" in bad["explanation"]

    single = service.post("/decisions", ADVERSE)
    assert single.status_code == 200 and "receipt_id" in single.json() and "decisions" not in single.json()

    rows = {r["receipt_id"]: r for r in _log(service).decisions()}
    row = rows[bad["receipt_id"]]
    assert row["inputs"] == {"age": 19, "citizen": "No", "employed": "No", "checks": 6}
    assert row["protected"] == {"colour": "Black", "sex": "Male"}, "protected attributes are kept apart"
    assert row["score"] == bad["score"] and row["model_version"] == "1" and row["outcome"] is None
    assert service.get("/decisions/00000000-0000-4000-8000-000000000000").status_code == 404
    assert service.get("/decisions/not-a-receipt").status_code == 422


# Each case: the application sent, the field and the rule the answer must name.
INVALID = {
    "missing": ({k: v for k, v in ADVERSE.items() if k != "checks"}, "checks", "missing"),
    "extra": ({**ADVERSE, "name": "Jane Doe"}, "name", "extra"),
    "wrong_type": ({**ADVERSE, "checks": "6"}, "checks", "wrong_type"),
    "out_of_range": ({**ADVERSE, "age": 130}, "age", "out_of_range"),
    "unknown_category": ({**ADVERSE, "employed": "Sometimes"}, "employed", "unknown_category"),
    "identifier_in_feature": ({**ADVERSE, "employed": "jane.doe@example.org"}, "employed", "identifier_like"),
    "phone_in_protected": ({**ADVERSE, "colour": "+44 20 7946 0958"}, "colour", "identifier_like"),
    "in_a_batch": ({"applications": [FAVOURABLE, {**ADVERSE, "checks": -1}]}, "applications[1].checks", "out_of_range"),
    "empty_batch": ({"applications": []}, "applications", "empty_batch"),
    "target_sent": ({**ADVERSE, "released": "Yes"}, "released", "extra"),
}


def test_invalid_applications_are_refused_by_rule_and_never_logged(service: Service):
    log = _log(service)
    before = len(log.decisions())
    counted = {
        rule: _metric(service, "mlcomops_validation_failures_total", rule=rule) for _, _, rule in INVALID.values()
    }
    for case, (body, field, rule) in INVALID.items():
        answer = service.post("/decisions", body)
        assert answer.status_code == 422, (case, answer.text)
        problems = answer.json()["problems"]
        assert {"field": field, "rule": rule} in [{"field": p["field"], "rule": p["rule"]} for p in problems], case
        assert "jane" not in answer.text.lower() and "7946" not in answer.text, "a refusal never repeats the value"
    with service.client() as client:
        not_json = client.post("/decisions", content=b"{not json", headers={"content-type": "application/json"})
        as_text = client.post("/decisions", content=json.dumps(ADVERSE), headers={"content-type": "text/plain"})
    assert not_json.status_code == 422 and not_json.json()["problems"][0]["rule"] == "invalid_json"
    assert as_text.status_code == 415
    assert len(log.decisions()) == before, "nothing invalid is logged as a decision"
    for rule in counted:
        assert _metric(service, "mlcomops_validation_failures_total", rule=rule) > counted[rule], rule


def test_outcomes_are_validated_and_stored_once(service: Service):
    receipt = service.post("/decisions", FAVOURABLE).json()
    rid = receipt["receipt_id"]
    assert service.post("/outcomes", {"receipt_id": rid, "outcome": "Maybe"}).json()["problems"][0]["rule"] == (
        "unknown_category"
    )
    stored = service.post("/outcomes", {"receipt_id": rid, "outcome": "No"})
    assert stored.status_code == 201 and stored.json() == {"receipt_id": rid, "outcome": "No", "stored": True}
    assert service.post("/outcomes", {"receipt_id": rid, "outcome": "Yes"}).status_code == 409
    unknown = service.post("/outcomes", {"receipt_id": "00000000-0000-4000-8000-000000000000", "outcome": "No"})
    assert unknown.status_code == 404
    assert service.post("/outcomes", {"receipt_id": "x", "outcome": "No"}).status_code == 422
    assert service.post("/outcomes", {"receipt_id": rid, "outcome": "No", "extra": 1}).status_code == 422
    row = next(r for r in _log(service).decisions() if r["receipt_id"] == rid)
    assert row["outcome"] == "No"


def test_metrics_are_exposed(service: Service):
    service.post("/decisions", FAVOURABLE)
    text = service.get("/metrics").text
    for name in (
        "mlcomops_http_requests_total",
        "mlcomops_http_request_duration_seconds_bucket",
        "mlcomops_decisions_total",
        "mlcomops_favourable_decisions_total",
        "mlcomops_favourable_rate",
        "mlcomops_decision_score_bucket",
        "mlcomops_outlier_share",
        "mlcomops_validation_failures_total",
        "mlcomops_model_reloads_total",
        "mlcomops_champion_refused",
        "mlcomops_model_info",
    ):
        assert name in text, name
    assert _metric(service, "mlcomops_http_requests_total", route="/decisions", method="POST", status="200") >= 3
    assert _metric(service, "mlcomops_http_requests_total", route="/decisions", method="POST", status="422") >= 1
    decided = _metric(service, "mlcomops_decisions_total", model_version="1", decision="Yes")
    decided += _metric(service, "mlcomops_decisions_total", model_version="1", decision="No")
    assert decided >= 4 and _metric(service, "mlcomops_decision_score_count", model_version="1") == decided
    favourable = _metric(service, "mlcomops_favourable_decisions_total", model_version="1")
    assert _metric(service, "mlcomops_favourable_rate", model_version="1") == pytest.approx(favourable / decided)
    assert _metric(service, "mlcomops_outlier_checked_applications_total", model_version="1") == decided
    assert _metric(service, "mlcomops_model_reloads_total", result="success") >= 1
    assert _metric(service, "mlcomops_model_info", name=NAME, version="1") == 1
    assert "/decisions/{receipt_id}" in text and "00000000-0000" not in text, "routes are labelled by template"


# --- integrity and hot swap --------------------------------------------------------------------------


def test_a_hand_moved_alias_is_refused_and_the_champion_keeps_serving(service: Service):
    client = _client(service.paths)
    failures = _metric(service, "mlcomops_model_reloads_total", result="failure")
    unvetted = _copy_of_v1(service, client, "unvetted")
    client.set_registered_model_alias(NAME, "champion", unvetted)  # by hand: no gate, no signed record
    try:
        refusal = wait_for(lambda: _refusal(service), timeout=60, what="the refusal of the hand-set alias")
        assert refusal["version"] == unvetted and "carries no signed promotion record" in refusal["reason"]
        answer = service.post("/decisions", ADVERSE)
        assert answer.status_code == 200 and answer.json()["model"]["version"] == "1"
        ready = service.get("/ready")
        assert ready.status_code == 200 and ready.json()["champion_check"]["ok"] is False
        assert _metric(service, "mlcomops_champion_refused") == 1
        assert _metric(service, "mlcomops_model_reloads_total", result="failure") == failures + 1
    finally:
        client.set_registered_model_alias(NAME, "champion", "1")
    wait_for(lambda: service.health()["champion_check"]["ok"], timeout=60, what="the alias back on v1")
    assert _metric(service, "mlcomops_champion_refused") == 0


def test_a_tampered_artifact_is_refused_until_it_is_restored(service: Service):
    client = _client(service.paths)
    version = _copy_of_v1(service, client, "tampered")
    _promote(client, version, previous="1")  # signed over the true bytes...
    folder = Path(client.get_model_version_download_uri(NAME, version))
    target = max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    original = target.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    target.write_bytes(bytes(flipped))  # ...then one byte changes
    try:
        refusal = wait_for(lambda: _refusal(service), timeout=60, what="the refusal of the tampered artifact")
        assert refusal["version"] == version and "artifact changed since promotion" in refusal["reason"]
        answer = service.post("/decisions", FAVOURABLE)
        assert answer.status_code == 200 and answer.json()["model"]["version"] == "1"
    finally:
        target.write_bytes(original)
    # The same, signed bytes again: the promoted version verifies and is swapped in.
    wait_for(lambda: _served_version(service) == version, timeout=120, what=f"v{version} to be served")
    ready = service.get("/ready").json()
    assert ready["champion_check"]["ok"] is True
    # The shap_explainer evidence on disk describes v1, so it cannot vouch for this version's explainer.
    assert ready["explainer"]["matches_signed_evidence"] is None
    assert f"describes models:/{NAME}/1" in ready["explainer"]["signed_evidence"]


def test_a_newly_promoted_champion_is_swapped_in_while_requests_continue(service: Service):
    client = _client(service.paths)
    before = _served_version(service)
    assert before not in (None, "1")
    outcomes: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def load() -> None:
        with service.client() as http:
            while not stop.is_set():
                try:
                    answer = http.post("/decisions", json={"applications": [FAVOURABLE, ADVERSE]})
                    versions = {d["model"]["version"] for d in answer.json().get("decisions", [])}
                    outcomes.append((answer.status_code, versions.pop() if len(versions) == 1 else None))
                except Exception as exc:  # noqa: BLE001 - a dropped request is what this test looks for
                    outcomes.append((0, repr(exc)))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(outcomes) >= 5, timeout=60, what="requests before the promotion")
        newer = _copy_of_v1(service, client, "promoted")
        _promote(client, newer, previous=before)
        wait_for(lambda: any(v == newer for _, v in outcomes), timeout=120, what=f"answers from v{newer}")
        seen = len(outcomes)
        wait_for(lambda: len(outcomes) >= seen + 5, timeout=60, what="requests after the swap")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    failed = [o for o in outcomes if o[0] != 200 or o[1] is None]
    assert failed == [], f"{len(failed)} of {len(outcomes)} requests failed during the swap: {failed[:5]}"
    versions = [v for _, v in outcomes]
    assert set(versions) == {before, newer}, "only verified versions answered"
    first_new = versions.index(newer)
    assert before in versions[:first_new]
    assert _metric(service, "mlcomops_model_info", name=NAME, version=newer) == 1
    assert _metric(service, "mlcomops_model_info", name=NAME, version=before) == 0


# --- the decision log --------------------------------------------------------------------------------


def test_receipts_verify_names_a_changed_and_a_deleted_record(service: Service, tmp_path: Path):
    live = service.paths.data_dir / "serving" / "decisions.db"
    copy = tmp_path / "decisions.db"
    with closing(sqlite3.connect(live)) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)  # a consistent copy of the live log (its WAL included)
    url = f"sqlite:///{copy}"
    clean = mlcomops(service.home, "receipts", "verify", "--decision-log", url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "verdict: OK" in clean.stdout and "head hash" in clean.stdout

    with closing(sqlite3.connect(copy)) as conn, conn:
        ids = dict(conn.execute("SELECT seq, receipt_id FROM decisions WHERE seq IN (2, 3)"))
        conn.execute("UPDATE decisions SET score = 0.999 WHERE seq = 2")
        conn.execute("DELETE FROM decisions WHERE seq = 3")
    found = mlcomops(service.home, "receipts", "verify", "--decision-log", url)
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"PROBLEM receipt {ids[2]} (seq 2): record changed" in found.stdout
    assert f"PROBLEM receipt {ids[3]} (seq 3) was deleted" in found.stdout
    assert "verdict: FAILED, 2 problem(s)" in found.stdout

    missing = mlcomops(service.home, "receipts", "verify", "--decision-log", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.returncode == 2 and "no decision log" in missing.stderr
    no_key = mlcomops(service.home, "receipts", "verify", "--decision-log", url, MLCOMOPS_PSEUDONYM_KEY="")
    assert no_key.returncode == 2 and "MLCOMOPS_PSEUDONYM_KEY" in no_key.stderr


def test_serve_binds_to_loopback_only_and_needs_the_pseudonym_key(served_home: Path):
    for host in ("0.0.0.0", "192.168.1.10", "::"):
        refused = mlcomops(served_home, "serve", "--host", host, timeout=60)
        assert refused.returncode == 2 and "binds to 127.0.0.1 only" in refused.stderr, refused.stderr
    no_key = mlcomops(served_home, "serve", "--port", "1", MLCOMOPS_PSEUDONYM_KEY="", timeout=60)
    assert no_key.returncode == 2 and "pseudonym" in no_key.stderr and "Traceback" not in no_key.stderr
