"""Model governance end to end: candidates compared, fairness gate blocks, waivers with expiry, champion kept."""

import datetime as dt
import json

import pytest
import yaml

from mlcomops_assets import constants as c
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets.summary import render
from mlcomops_assets_tests.conftest import default_policy, materialize, write_home

pytestmark = pytest.mark.e2e

AFTER_CANDIDATES = ",".join(
    k.path[-1]
    for k in (
        c.MODEL_SELECTION_REPORT,
        c.TRAINED_MODEL,
        c.MODEL_EVALUATION,
        c.FAIRNESS_REPORT,
        c.SHAP_EXPLAINER,
        c.CHAMPION_MODEL,
    )
)


def _tightened(waivers=()):
    policy = default_policy()
    policy["gates"]["fairness"]["max_equalized_odds_difference"] = 0.05
    policy["waivers"] = list(waivers)
    return policy


def _waiver(approved_on: dt.date, expires: dt.date) -> dict:
    return {
        "gate": "fairness",
        "metric": "equalized_odds_difference",
        "up_to": 0.3,
        "approved_by": "dpo@example.org",
        "reason": "Equalized odds above 0.05 accepted while labels of 2001-2002 are collected; review in Q1.",
        "approved_on": approved_on.isoformat(),
        "expires": expires.isoformat(),
    }


def _write_policy(home, policy):
    (home / "governance.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _materialized(result) -> set[str]:
    return {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}


def _client(paths):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=paths.mlflow_tracking_uri, registry_uri=paths.mlflow_tracking_uri)


@pytest.fixture(scope="module")
def governed_home(tmp_path_factory):
    """A home whose default run made a champion (v1); the tests then tighten and waive in order."""
    home = write_home(tmp_path_factory.mktemp("governance"))
    with materialize(home) as (result, _):
        assert result.success
    return home


def test_default_run_compares_both_candidates_and_documents_the_choice(governed_home):
    paths = ProjectPaths(governed_home)
    report = json.loads((paths.selection_dir / "model_selection_report.json").read_text())
    by_name = {r["name"]: r for r in report["candidates"]}
    assert set(by_name) == {"logistic_regression", "gradient_boosting"}
    for r in by_name.values():
        low, high = r["intervals"]["roc_auc"]["low"], r["intervals"]["roc_auc"]["high"]
        assert low < r["holdout"]["roc_auc"] < high
        assert r["gates"]["passed"] and r["importance"] and r["calibration"]
        colour = r["fairness"]["colour"]
        assert colour["intervals"]["equalized_odds_difference"]["low"] <= colour["equalized_odds_difference"]
    assert by_name["logistic_regression"]["size"]["parameters"] < by_name["gradient_boosting"]["size"]["parameters"]
    assert report["chosen"] in by_name and report["justification"].startswith(report["chosen"])
    assert "difference_to_interpretable" in by_name["gradient_boosting"]
    trained = json.loads((paths.models_dir / "trained_model.json").read_text())
    assert trained["candidate"] == report["chosen"] and trained["logged_model_uri"] == report["chosen_model_uri"]
    client = _client(paths)
    for r in by_name.values():
        run = client.get_run(r["run_id"])
        assert run.data.tags["selection.chosen"] == str(r["name"] == report["chosen"]).lower()
        assert {"cv_roc_auc_mean", "holdout_roc_auc_ci_low"} <= set(run.data.metrics)
        assert run.data.tags["candidate.name"] == r["name"] and "dagster.run_id" in run.data.tags
    version = client.get_model_version("arrests_release_model", trained["version"])
    assert version.tags["selection.justification"] == report["justification"]
    assert (paths.selection_dir / "model_selection.md").read_text().count("| ") > 10
    # Published as HTML for the report server: tables rendered, no script, nothing loaded from elsewhere.
    page = (paths.selection_dir / "model_selection.html").read_text()
    assert "<table>" in page and "<script" not in page and "http" not in page


def test_tightened_fairness_gate_blocks_registration_and_keeps_the_champion(governed_home):
    paths = ProjectPaths(governed_home)
    client = _client(paths)
    champion_before = client.get_model_version_by_alias("arrests_release_model", "champion").version
    versions_before = len(client.search_model_versions("name='arrests_release_model'"))
    _write_policy(governed_home, _tightened())
    with materialize(governed_home, AFTER_CANDIDATES) as (result, _):
        check = _checks(result)[c.A_CANDIDATE_PASSES_EVERY_GATE]
        materialized = _materialized(result)
    assert not check.passed
    assert "no deployable candidate passes every gate" in check.description
    assert (
        "fairness gate: citizen: equalized_odds_difference 0.1" in check.description and "> 0.050" in check.description
    )
    assert materialized == {"model_selection_report"}  # nothing registered, evaluated or promoted
    assert client.get_model_version_by_alias("arrests_release_model", "champion").version == champion_before
    assert len(client.search_model_versions("name='arrests_release_model'")) == versions_before

    report = json.loads((paths.selection_dir / "model_selection_report.json").read_text())
    (mitigated,) = [r for r in report["candidates"] if r.get("mitigation")]
    assert not mitigated["deployable"] and "GDPR Art. 9" in mitigated["not_deployable_because"]
    m = mitigated["mitigation"]
    assert m["method"] == "threshold_optimizer" and m["attribute"]
    base = next(r for r in report["candidates"] if r["name"] == m["base"])
    attribute = m["attribute"]
    # The mitigation narrows the parity gap it targets, and its accuracy cost is reported.
    assert (
        mitigated["fairness"][attribute]["demographic_parity_difference"]
        < base["fairness"][attribute]["demographic_parity_difference"]
    )
    assert m["accuracy_cost"] == pytest.approx(base["holdout"]["accuracy"] - mitigated["holdout"]["accuracy"], abs=1e-4)


def test_registration_alone_refuses_a_failed_selection(governed_home):
    with materialize(governed_home, c.TRAINED_MODEL.path[-1]) as (result, _):
        failures = result.get_step_failure_events()
    assert not result.success
    assert "nothing to register: no deployable candidate passes every gate" in str(failures[0].event_specific_data)


def test_active_waiver_lets_the_model_through_and_is_recorded(governed_home):
    paths = ProjectPaths(governed_home)
    today = dt.datetime.now(dt.UTC).date()
    _write_policy(governed_home, _tightened([_waiver(today - dt.timedelta(days=30), today + dt.timedelta(days=60))]))
    with materialize(governed_home, AFTER_CANDIDATES) as (result, instance):
        assert result.success, [e.description for e in result.get_asset_check_evaluations() if not e.passed]
        checks = _checks(result)
        champion_meta = instance.get_latest_materialization_event(c.CHAMPION_MODEL).asset_materialization.metadata
        summary = render(paths, instance)
    # The summary never presents a waived gap as simply within the thresholds.
    assert "fairness verdict    passed only under waivers:" in summary and "waived by dpo@example.org" in summary
    assert checks[c.A_CANDIDATE_PASSES_EVERY_GATE].passed
    assert checks[c.FAIRNESS_WITHIN_THRESHOLDS].passed
    assert "waived by dpo@example.org" in checks[c.FAIRNESS_WITHIN_THRESHOLDS].description
    assert "waived by dpo@example.org" in champion_meta["waivers"].value
    champion = json.loads((paths.data_dir / "champion/champion_model.json").read_text())
    version = _client(paths).get_model_version_by_alias("arrests_release_model", "champion")
    assert str(version.version) == champion["version"] and champion["waivers"]
    assert any(k.startswith("waiver.") and "until" in v for k, v in version.tags.items())
    assert f"Champion since {dt.datetime.now(dt.UTC).date()}" in version.description
    assert "Chosen because: logistic_regression" in version.description


def test_expired_waiver_does_not_pass(governed_home):
    today = dt.datetime.now(dt.UTC).date()
    expired = _waiver(today - dt.timedelta(days=90), today - dt.timedelta(days=1))
    _write_policy(governed_home, _tightened([expired]))
    with materialize(governed_home, c.MODEL_SELECTION_REPORT.path[-1]) as (result, _):
        check = _checks(result)[c.A_CANDIDATE_PASSES_EVERY_GATE]
    assert not check.passed
    assert f"expired on {expired['expires']}" in check.description
