"""Served decisions become production batches: the frame in the contract's shape (columns, pseudonymized
identifiers, only the protected attributes the policy allows, outcomes as labels), quiet days accumulated to
the minimum batch size, each day written once, outcomes that arrive later as a labeled revision; and, end to
end, logged decisions become a monitored batch with its drift result."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlcomops_assets import constants as c
from mlcomops_assets.automation import inbox_sensor
from mlcomops_assets.lib.decision_log import DecisionLog
from mlcomops_assets.lib.files import file_md5
from mlcomops_assets.lib.pseudonyms import pseudonymize
from mlcomops_assets.policy import Policy, parse_policy
from mlcomops_assets.resources import ProjectResource
from mlcomops_assets.served_batches import (
    batch_frame,
    configuration_problem,
    plan_days,
    served_decisions_sensor,
)
from mlcomops_assets.serving.settings import DECISION_LOG_ENV, decision_log_url
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.conftest import default_policy, monitor_batch, write_home

KEY = "served-batches-tests-pseudonym-key"
DAY = dt.date(2002, 6, 1)  # within the default policy's `year` range [1997, 2002], after the cutoff 2000
CONTRACT_COLUMNS = ["colour", "sex", "age", "citizen", "employed", "checks", "year"]  # the policy's order


def _policy(change=None) -> Policy:
    raw = default_policy()
    if change:
        change(raw)
    return parse_policy(raw)


def _at(day: dt.date, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(minutes=minute)


def _entry(i: int, created_at: dt.datetime, **changes) -> dict:
    """One decision as the service logs it (score and reasons do not matter here: monitoring re-scores)."""
    return {
        "model_name": "arrests_release_model",
        "model_version": "1",
        "artifact_sha256": "ab" * 32,
        "inputs": {"age": 18 + i % 40, "citizen": ["Yes", "No"][i % 2], "employed": "Yes", "checks": i % 7},
        "protected": {"colour": ["White", "Black"][i % 3 == 0], "sex": ["Male", "Female"][i % 2]},
        "identifiers": {},
        "score": 0.9,
        "decision": "Yes",
        "favourable": True,
        "threshold": 0.5,
        "reasons": [],
        "attribution": {"scale": "log_odds", "base_value": 1.0, "value": 1.0, "contributions": {}},
        "explanation": None,
        "retention_days": 365,
        "created_at": created_at,
        **changes,
    }


def _decide(log: DecisionLog, day: dt.date, n: int, start: int = 0, **changes) -> list[dict]:
    return log.append_many([_entry(start + i, _at(day, start + i), **changes) for i in range(n)])


@pytest.fixture
def log():
    opened = DecisionLog("sqlite://", KEY.encode())  # in memory
    yield opened
    opened.close()


# --- the frame -------------------------------------------------------------------------------------


def test_frame_has_the_contract_columns_with_the_decision_time(log):
    _decide(log, DAY, 3)
    built = batch_frame(log.decisions(), _policy())
    frame = built.frame
    assert list(frame.columns) == CONTRACT_COLUMNS, "every declared column but the label, in the policy's order"
    assert not built.labeled and built.left_out == {}
    assert frame["year"].tolist() == [2002] * 3 and str(frame["year"].dtype) == "int64"
    assert str(frame["age"].dtype) == "int64" and frame["age"].tolist() == [18, 19, 20]
    assert frame["colour"].tolist() == ["Black", "White", "White"]
    assert frame["sex"].tolist() == ["Male", "Female", "Male"]


def test_outcomes_become_the_target_labels_and_only_labeled_decisions_are_kept(log):
    receipts = _decide(log, DAY, 3)
    log.add_outcome(receipts[0]["receipt_id"], "No", recorded_at=_at(DAY, 100))
    log.add_outcome(receipts[2]["receipt_id"], "Yes", recorded_at=_at(DAY, 200))
    built = batch_frame(log.decisions(), _policy(), labeled=True)
    assert list(built.frame.columns) == ["released", *CONTRACT_COLUMNS]
    assert built.frame["released"].tolist() == ["No", "Yes"] and built.frame["age"].tolist() == [18, 20]
    assert built.labeled and built.left_out == {"no outcome reported": 1}
    assert built.last_outcome_at == _at(DAY, 200)


def test_only_the_protected_attributes_the_policy_allows_are_exported(log):
    def colour_only(raw):
        raw["serving"]["protected_for_monitoring"] = ["colour"]
        raw["data"]["columns"]["sex"]["max_null_fraction"] = 1.0

    _decide(log, DAY, 2)  # the log holds sex too (given while the policy allowed it)
    frame = batch_frame(log.decisions(), _policy(colour_only)).frame
    assert frame["colour"].notna().all() and frame["sex"].isna().all(), "sex is not exported, only its column"

    def colour_only_sex_required(raw):
        raw["serving"]["protected_for_monitoring"] = ["colour"]

    problem = configuration_problem(_policy(colour_only_sex_required))
    assert "['sex']" in problem and "serving.protected_for_monitoring" in problem and "max_null_fraction" in problem
    assert configuration_problem(_policy()) is None


def test_identifiers_stay_pseudonymized_and_dropped_ones_stay_empty(log):
    def with_identifiers(raw):
        raw["data"]["columns"]["person_id"] = {"role": "identifier", "treatment": "pseudonymize", "dtype": "string"}
        raw["data"]["columns"]["full_name"] = {"role": "identifier"}  # dropped

    policy = _policy(with_identifiers)
    pseudonym = pseudonymize(pd.Series(["AB-123456"]), KEY.encode()).iloc[0]
    _decide(log, DAY, 2, identifiers={"person_id": pseudonym})
    _decide(log, DAY, 1, start=2)  # no identifier given: the contract requires one
    built = batch_frame(log.decisions(), policy)
    assert built.frame["person_id"].tolist() == [pseudonym, pseudonym] and "AB-123456" not in built.frame.to_string()
    assert built.frame["full_name"].isna().all() and "full_name" in built.frame.columns
    assert built.left_out == {"no value for 'person_id', which the data contract requires": 1}


def test_an_identifier_the_contract_does_not_require_stays_in_the_log(log):
    def optional_identifier(raw):
        raw["data"]["columns"]["person_id"] = {
            "role": "identifier",
            "treatment": "pseudonymize",
            "dtype": "string",
            "max_null_fraction": 1.0,
        }

    pseudonym = pseudonymize(pd.Series(["AB-123456"]), KEY.encode()).iloc[0]
    _decide(log, DAY, 2, identifiers={"person_id": pseudonym})
    built = batch_frame(log.decisions(), _policy(optional_identifier))
    assert built.frame["person_id"].isna().all() and pseudonym not in built.frame.to_string()
    assert built.left_out == {}


def test_other_models_and_blanked_inputs_are_left_out_and_counted(log):
    _decide(log, DAY, 2)
    _decide(log, DAY, 1, start=2, model_name="another_model")
    records = log.decisions()
    records[0] = {**records[0], "inputs": None}  # blanked after its retention period
    built = batch_frame(records, _policy())
    assert len(built.frame) == 1
    assert built.left_out == {
        "inputs blanked after serving.retention_days": 1,
        "made by another model than arrests_release_model": 1,
    }


# --- which batches -----------------------------------------------------------------------------------


def test_quiet_days_accumulate_to_the_minimum_batch_size_and_the_rest_is_pending(log):
    days = [DAY + dt.timedelta(days=k) for k in range(5)]
    _decide(log, days[0], 20)
    _decide(log, days[2], 40, start=20)  # days[1]: nothing decided
    _decide(log, days[3], 10, start=60)
    _decide(log, days[4], 90, start=70)  # not complete: the plan stops before days[4]
    plan = plan_days(log.decisions(), _policy(), until=days[4])
    (export,) = plan.exports
    assert export.key == "served-2002-06-01_to_2002-06-03" and export.rows == 60 and not export.batch.labeled
    assert plan.next_day == days[3] and plan.blocked is None
    (note,) = plan.notes
    assert "2002-06-04: 10 usable decision(s), below monitoring.min_batch_rows=50: pending" in note


def test_a_decision_time_outside_the_time_column_range_blocks_and_says_which_key(log):
    _decide(log, dt.date(2026, 11, 28), 60)
    plan = plan_days(log.decisions(), _policy(), until=dt.date(2026, 11, 29))
    assert plan.exports == [] and plan.next_day == dt.date(2026, 11, 28)
    assert "year=2026, outside [1997, 2002]" in plan.blocked and "data.columns.year.min / max" in plan.blocked


# --- the sensor --------------------------------------------------------------------------------------


def _tick(instance, home: Path, cursor: str | None):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"project": ProjectResource(home=str(home))}
    ) as context:
        return served_decisions_sensor(context)


@pytest.fixture
def served_env(monkeypatch):
    monkeypatch.setenv("MLCOMOPS_PSEUDONYM_KEY", KEY)
    monkeypatch.delenv(DECISION_LOG_ENV, raising=False)


def _project_log(home: Path) -> DecisionLog:
    return DecisionLog(decision_log_url(ProjectPaths(home)), KEY.encode())


def test_sensor_writes_each_day_once_then_a_labeled_revision_of_the_late_outcomes(tmp_path, served_env):
    home = write_home(tmp_path / "home")
    inbox = home / "data/inbox"
    with dg.instance_for_test() as instance:
        first = _tick(instance, home, None)
        assert "no decision log" in first.skip_message and not (home / "data/serving").exists()

        log = _project_log(home)
        receipts = _decide(log, DAY, 60)
        _decide(log, DAY + dt.timedelta(days=1), 5, start=60)
        tick = _tick(instance, home, None)
        assert sorted(p.name for p in inbox.iterdir()) == ["served-2002-06-01.parquet"]
        assert "served-2002-06-01: 60 unlabeled decision(s)" in tick.skip_reason.skip_message
        assert "2002-06-02: 5 usable decision(s)" in tick.skip_reason.skip_message  # pending, reported
        written = pd.read_parquet(inbox / "served-2002-06-01.parquet")
        assert list(written.columns) == CONTRACT_COLUMNS and len(written) == 60
        md5 = file_md5(inbox / "served-2002-06-01.parquet")

        again = _tick(instance, home, tick.cursor)  # nothing new: nothing rewritten
        assert "no served batch to write" in again.skip_reason.skip_message
        assert file_md5(inbox / "served-2002-06-01.parquet") == md5 and len(list(inbox.iterdir())) == 1
        _tick(instance, home, None)  # a tick repeated after a crash (its cursor lost) rewrites the same bytes
        assert file_md5(inbox / "served-2002-06-01.parquet") == md5 and len(list(inbox.iterdir())) == 1

        for i, receipt in enumerate(receipts[:55]):
            log.add_outcome(receipt["receipt_id"], ["Yes", "No"][i % 5 == 0])
        throttled = _tick(instance, home, again.cursor)  # the outcome scan runs at most hourly
        assert len(list(inbox.iterdir())) == 1
        state = json.loads(throttled.cursor)
        state["outcomes_checked_at"] = None  # an hour later
        revised = _tick(instance, home, json.dumps(state))
        labeled = pd.read_parquet(inbox / "served-2002-06-01-r2.parquet")
        assert len(labeled) == 55 and list(labeled.columns) == ["released", *CONTRACT_COLUMNS]
        assert labeled["released"].notna().all()
        state = json.loads(revised.cursor)
        state["outcomes_checked_at"] = None
        _tick(instance, home, json.dumps(state))  # the same outcomes are not exported twice
        assert sorted(p.name for p in inbox.iterdir()) == ["served-2002-06-01-r2.parquet", "served-2002-06-01.parquet"]
        log.close()


# --- end to end ------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_logged_decisions_become_a_monitored_batch_with_its_drift_result(default_run, tmp_path, served_env):
    original, result, _ = default_run
    assert result.success
    home = tmp_path / "home"
    shutil.copytree(original, home, symlinks=True)  # the session's home stays as the graph left it
    paths = ProjectPaths(home)
    production = pd.read_parquet(paths.prepared_dir / "production_data.parquet")
    rows = production[production["batch"] == "2002"].drop(columns="batch").to_dict("records")
    log = _project_log(home)
    receipts = log.append_many(
        [
            _entry(
                0,
                _at(DAY, i),
                inputs={k: row[k] for k in ("age", "citizen", "employed", "checks")},
                protected={"colour": row["colour"], "sex": row["sex"]},
            )
            for i, row in enumerate(rows)
        ]
    )
    project = {"project": ProjectResource(home=str(home))}
    with dg.instance_for_test(temp_dir=str(home / ".dagster_home")) as instance:
        with dg.build_sensor_context(instance=instance, resources=project) as context:
            served = served_decisions_sensor(context)
        for receipt, row in zip(receipts, rows, strict=True):  # the outcomes, reported later
            log.add_outcome(receipt["receipt_id"], row["released"])
        state = json.loads(served.cursor)
        state["outcomes_checked_at"] = None  # an hour later
        with dg.build_sensor_context(instance=instance, resources=project, cursor=json.dumps(state)) as context:
            served_decisions_sensor(context)
        with dg.build_sensor_context(instance=instance, resources=project) as context:
            requests = inbox_sensor(context).run_requests
    log.close()
    assert sorted(r.partition_key for r in requests) == ["served-2002-06-01", "served-2002-06-01-r2"]

    reports = {}
    for key in ("served-2002-06-01", "served-2002-06-01-r2"):
        with monitor_batch(home, key) as (run, instance):
            assert run.success, [e.event_specific_data.error.message for e in run.get_step_failure_events()]
            (record,) = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=c.BATCH_MONITORING, asset_partitions=[key]), limit=1
            ).records
            assert record.asset_materialization.metadata["rows"].value == len(rows)
        reports[key] = json.loads((paths.monitoring_dir / f"batch_monitoring/{key}.json").read_text())

    unlabeled, labeled = reports["served-2002-06-01"], reports["served-2002-06-01-r2"]
    drift = unlabeled["data_drift"]
    assert unlabeled["rows"] == len(rows) and unlabeled["labeled_rows"] == 0 and "roc_auc" not in unlabeled
    assert {"drift_share", "drifted_columns", "columns"} <= drift.keys() and (home / drift["html_path"]).is_file()
    assert "data_drift" not in unlabeled["alarms"], "the 2002 rows, served, are the 2002 period: no drift"
    assert labeled["labeled_rows"] == len(rows) and "roc_auc" in labeled and "colour" in labeled["fairness"]
