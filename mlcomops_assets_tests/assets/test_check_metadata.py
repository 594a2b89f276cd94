"""Asset-check results an auditor can read and plot: each measured figure next to its limit, the status,
the verdict, the batch, links to the publication server; floats rounded, keys stable across runs."""

import json
import math
import shutil

import dagster as dg
import pytest
import yaml

from mlcomops_assets import constants as c
from mlcomops_assets.check_metadata import analysis_key, fairness_figures, with_limit
from mlcomops_assets.lib.gates import FAIRNESS_METRICS, assess, today
from mlcomops_assets.metadata import rounded
from mlcomops_assets.policy import parse_policy
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.conftest import default_policy, materialize, monitor_batch

pytestmark = pytest.mark.e2e

BATCH_CHECKS = (
    c.BATCH_NO_DATA_DRIFT,
    c.BATCH_NO_PREDICTION_DRIFT,
    c.BATCH_OUTLIERS_WITHIN_LIMIT,
    c.BATCH_FAIRNESS_WITHIN_THRESHOLDS,
)
REPORTS_URL = "http://127.0.0.1:3001"


def _four_digits(value: float) -> float:
    return float(f"{value:.4g}")


def _stored(instance: dg.DagsterInstance, asset_key: dg.AssetKey, check: str, run_id: str) -> dg.AssetCheckEvaluation:
    """The evaluation as the instance stored it (what the UI reads), for the given run."""
    history = instance.event_log_storage.get_asset_check_execution_history(dg.AssetCheckKey(asset_key, check), 100)
    (record,) = [r for r in history if r.run_id == run_id]
    return record.event.asset_check_evaluation


def _floats(evaluation: dg.AssetCheckEvaluation) -> dict[str, float]:
    return {k: v.value for k, v in evaluation.metadata.items() if isinstance(v, dg.FloatMetadataValue)}


def _assert_figure(metadata, name: str, measured: float, limit: float) -> None:
    """``name`` holds the measured value and ``name.limit`` its limit, both floats, rounded for reading."""
    assert isinstance(metadata[name], dg.FloatMetadataValue), name
    assert metadata[name].value == _four_digits(measured), name
    assert isinstance(metadata[f"{name}.limit"], dg.FloatMetadataValue), name
    assert metadata[f"{name}.limit"].value == _four_digits(limit), name


def _write_policy(home, policy) -> None:
    (home / "governance.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))


@pytest.fixture(scope="module")
def monitored_copy(default_run, tmp_path_factory):
    """A copy of the session's graph (the session's home stays as the graph left it), with batch 2001
    monitored; the batch checks as the run reported them and as the instance stored them."""
    original, _, _ = default_run
    home = tmp_path_factory.mktemp("check_metadata") / "home"
    shutil.copytree(original, home, symlinks=True)
    with monitor_batch(home, "2001") as (result, instance):
        assert result.success, [e.event_specific_data.error.message for e in result.get_step_failure_events()]
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        stored = {name: _stored(instance, c.BATCH_MONITORING, name, result.run_id) for name in BATCH_CHECKS}
        materialization = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=c.BATCH_MONITORING, asset_partitions=["2001"]), limit=1
        ).records[0]
    return home, result.run_id, checks, stored, materialization


@pytest.fixture(scope="module")
def tightened_copy(monitored_copy):
    """The same copy under limits no figure meets: the fairness report alone, then batch 2002."""
    home = monitored_copy[0]
    policy = default_policy()
    policy["gates"]["fairness"]["max_demographic_parity_difference"] = 0.001
    policy["monitoring"].update({"max_score_ks": 0.0, "max_outlier_share": 0.0, "max_positive_rate_change": 0.0})
    _write_policy(home, policy)
    with materialize(home, c.FAIRNESS_REPORT.path[-1]) as (result, instance):
        assert not result.success  # the blocking fairness check stops the report from being published
        (fairness,) = [e for e in result.get_asset_check_evaluations() if e.check_name == c.FAIRNESS_WITHIN_THRESHOLDS]
        stored_fairness = _stored(instance, c.FAIRNESS_REPORT, c.FAIRNESS_WITHIN_THRESHOLDS, result.run_id)
    with monitor_batch(home, "2002") as (result, _):
        assert result.success  # batch alarms are warnings: the batch is still monitored
        batch_checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return home, policy, fairness, stored_fairness, batch_checks


def test_fairness_check_carries_each_gap_next_to_its_limit(default_run):
    home, result, instance = default_run
    paths = ProjectPaths(home)
    policy = parse_policy(yaml.safe_load((home / "governance.yaml").read_text()))
    report = json.loads((paths.reports_dir / "fairness_report.json").read_text())
    evaluation = _stored(instance, c.FAIRNESS_REPORT, c.FAIRNESS_WITHIN_THRESHOLDS, result.run_id)
    metadata = evaluation.metadata
    limits = {
        "demographic_parity_difference": policy.gates.fairness.max_demographic_parity_difference,
        "equalized_odds_difference": policy.gates.fairness.max_equalized_odds_difference,
        "demographic_parity_ratio": policy.gates.fairness.min_demographic_parity_ratio,
    }
    evaluable = {name: r for name, r in report["attributes"].items() if r["evaluable"]}
    assert {"sex", "colour", "citizen"} <= set(evaluable)
    for name, figures in report["attributes"].items():
        key = analysis_key(name)
        assert metadata[f"{key}.status"].value == ("passed" if figures["evaluable"] else "not evaluated")
        for metric in FAIRNESS_METRICS:
            if figures["evaluable"]:
                _assert_figure(metadata, f"{metric}.{key}", figures[metric], limits[metric])
            else:  # no number is invented for what was not measured
                assert f"{metric}.{key}" not in metadata and metadata[f"{key}.reason"].value
    _assert_figure(
        metadata,
        "largest_equalized_odds_difference",
        max(r["equalized_odds_difference"] for r in evaluable.values()),
        limits["equalized_odds_difference"],
    )
    assert metadata["status"].value == "passed" == report["gate"]["status"]
    assert metadata["verdict"].value == report["gate"]["verdict"] == evaluation.description
    assert metadata["report"] == dg.MetadataValue.url(f"{REPORTS_URL}/reports/fairness_report.json")


def test_evaluation_and_explanation_checks_carry_their_figures_and_limits(default_run):
    home, result, instance = default_run
    paths = ProjectPaths(home)
    policy = parse_policy(yaml.safe_load((home / "governance.yaml").read_text()))
    report = json.loads((paths.reports_dir / "model_evaluation.json").read_text())
    performance = _stored(instance, c.MODEL_EVALUATION, c.MEETS_PERFORMANCE_MINIMUM, result.run_id).metadata
    gate = policy.gates.evaluation
    for metric, minimum in (
        ("roc_auc", gate.min_roc_auc),
        ("accuracy", gate.min_accuracy),
        ("balanced_accuracy", gate.min_balanced_accuracy),
    ):
        _assert_figure(performance, metric, report[metric], minimum)
    assert performance["roc_auc.leakage_limit"].value == _four_digits(policy.gates.leakage.max_holdout_auc)
    assert performance["status"].value == "passed" and performance["verdict"].value == report["gate"]["verdict"]
    assert performance["report"] == dg.MetadataValue.url(f"{REPORTS_URL}/reports/model_evaluation.json")

    record = json.loads((paths.reports_dir / "shap_explainer.json").read_text())
    faithful = _stored(instance, c.SHAP_EXPLAINER, c.EXPLANATIONS_ARE_FAITHFUL, result.run_id).metadata
    _assert_figure(
        faithful, "additivity_error", record["additivity_error"], policy.gates.explainability.max_additivity_error
    )
    assert faithful["additivity_error"].value > 0  # significant digits: a tiny error does not read as 0
    assert faithful["status"].value == "passed"
    assert faithful["plot"] == dg.MetadataValue.url(
        f"{REPORTS_URL}/{record['plot_path'].removeprefix('data/published/')}"
    )


def test_batch_checks_carry_the_batch_each_figure_and_its_limit(monitored_copy):
    home, run_id, checks, stored, materialization = monitored_copy
    policy = parse_policy(yaml.safe_load((home / "governance.yaml").read_text()))
    report = json.loads((ProjectPaths(home).monitoring_dir / "batch_monitoring/2001.json").read_text())
    for name in BATCH_CHECKS:
        metadata = stored[name].metadata
        assert metadata == checks[name].metadata  # what the run reported is what the instance keeps
        assert metadata["batch"] == dg.MetadataValue.text("2001")
        assert metadata["status"].value == "passed" and metadata["verdict"].value == stored[name].description
        # Unpartitioned checks of the partitioned asset (a partitioned check spec is a preview feature in
        # Dagster 1.13): no partition on the evaluation, but it targets the batch's own materialization.
        assert stored[name].partition is None
        target = stored[name].target_materialization_data
        assert (target.run_id, target.storage_id) == (run_id, materialization.storage_id)

    drift = stored[c.BATCH_NO_DATA_DRIFT].metadata
    _assert_figure(drift, "drift_share", report["data_drift"]["drift_share"], policy.gates.drift.drift_share)
    assert drift["drift_report"] == dg.MetadataValue.url(f"{REPORTS_URL}/batch_reports/drift-2001.html")
    prediction = stored[c.BATCH_NO_PREDICTION_DRIFT].metadata
    _assert_figure(prediction, "score_ks", report["prediction_drift"]["score_ks"], policy.monitoring.max_score_ks)
    _assert_figure(
        prediction,
        "positive_rate_change",
        report["prediction_drift"]["positive_rate_change"],
        policy.monitoring.max_positive_rate_change,
    )
    outliers = stored[c.BATCH_OUTLIERS_WITHIN_LIMIT].metadata
    assert outliers["outlier_share.limit"].value == policy.monitoring.max_outlier_share
    assert outliers["outlier_share"].value == pytest.approx(report["outlier_share"], abs=1e-5)  # 5 decimals there
    fairness = stored[c.BATCH_FAIRNESS_WITHIN_THRESHOLDS].metadata
    assert fairness["labeled_rows"].value == report["labeled_rows"] > 1000
    for metric in FAIRNESS_METRICS:
        limit = fairness[f"{metric}.colour.limit"].value
        _assert_figure(fairness, f"{metric}.colour", report["fairness"]["colour"][metric], limit)


def test_failing_checks_still_carry_their_measured_figures(default_run, tightened_copy):
    _, result, instance = default_run
    home, policy, fairness, stored_fairness, batch_checks = tightened_copy
    passing = _stored(instance, c.FAIRNESS_REPORT, c.FAIRNESS_WITHIN_THRESHOLDS, result.run_id)

    assert not fairness.passed and fairness.metadata == stored_fairness.metadata
    assert fairness.metadata["status"].value == "failed"
    assert fairness.metadata["verdict"].value.startswith("failed: ")
    # Same model, same holdout: the same measured gaps under the same keys; only the limit moved.
    measured, before = _floats(fairness), _floats(passing)
    assert set(measured) == set(before)
    for key, value in before.items():
        if "demographic_parity_difference" in key and key.endswith(".limit"):
            assert measured[key] == 0.001
        else:
            assert measured[key] == value, key
    assert "report" not in fairness.metadata  # nothing was published: no link to a stale report

    for name in (c.BATCH_NO_PREDICTION_DRIFT, c.BATCH_OUTLIERS_WITHIN_LIMIT, c.BATCH_FAIRNESS_WITHIN_THRESHOLDS):
        check = batch_checks[name]
        assert not check.passed and check.metadata["status"].value == "failed", name
        assert check.metadata["batch"].value == "2002"
    figures = batch_checks[c.BATCH_NO_PREDICTION_DRIFT].metadata
    assert figures["score_ks"].value > 0 and figures["score_ks.limit"].value == 0.0
    outliers = batch_checks[c.BATCH_OUTLIERS_WITHIN_LIMIT].metadata
    assert outliers["outlier_share"].value > 0 and outliers["outlier_share.limit"].value == 0.0
    report = json.loads((ProjectPaths(home).monitoring_dir / "batch_monitoring/2002.json").read_text())
    assert outliers["outlier_share"].value == pytest.approx(report["outlier_share"], abs=1e-5)
    fairness = batch_checks[c.BATCH_FAIRNESS_WITHIN_THRESHOLDS].metadata
    for analysis, figures in report["fairness"].items():
        key = analysis_key(analysis)
        if figures["evaluable"]:
            assert fairness[f"{key}.status"].value == "failed"  # every measured gap exceeds 0.001 on this batch
            _assert_figure(
                fairness, f"demographic_parity_difference.{key}", figures["demographic_parity_difference"], 0.001
            )
        else:  # too few labeled rows per group: a status and the reason, no number
            assert fairness[f"{key}.status"].value == "not evaluated" and fairness[f"{key}.reason"].value
            assert not {f"{m}.{key}" for m in FAIRNESS_METRICS} & set(fairness)


def test_what_was_not_measured_gets_a_status_and_a_reason_not_a_number():
    policy = parse_policy(default_policy())
    assert with_limit("score_ks", float("nan"), 0.2) == {
        "score_ks.status": "not evaluated",
        "score_ks.reason": "no finite value could be measured",
        "score_ks.limit": dg.MetadataValue.float(0.2),
    }
    report = {
        "attributes": {
            "sex": {
                "evaluable": True,
                "demographic_parity_difference": 0.0123456,
                "equalized_odds_difference": policy.gates.fairness.max_equalized_odds_difference + 0.06,
                "demographic_parity_ratio": 1.0,
            },
            "colour x sex": {
                "evaluable": False,
                "reason": "fewer than two groups with at least 30 rows",
                "groups": [{"too_small": False}, {"too_small": True}],
            },
        }
    }
    figures = fairness_figures(report["attributes"], assess(policy, today(), fairness=report), policy)
    assert figures["sex.status"] == "failed"
    assert figures["demographic_parity_difference.sex"] == dg.MetadataValue.float(0.01235)
    assert figures["colour_x_sex.status"] == "not evaluated"
    assert figures["colour_x_sex.reason"] == "fewer than two groups with at least 30 rows"
    assert not any(k in figures for k in (f"{m}.colour_x_sex" for m in FAIRNESS_METRICS))
    limit = policy.gates.fairness.max_demographic_parity_difference
    assert figures["demographic_parity_difference.colour_x_sex.limit"] == dg.MetadataValue.float(limit)
    eod = report["attributes"]["sex"]["equalized_odds_difference"]
    assert figures["largest_equalized_odds_difference"] == dg.MetadataValue.float(_four_digits(eod))
    assert rounded(1.23456e-14) == 1.235e-14 and rounded(0.0812) == 0.0812 and math.isnan(rounded(float("nan")))
