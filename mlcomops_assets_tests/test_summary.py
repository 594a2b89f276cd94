"""The summary lists only the current data source's monitored batches, read from a real instance."""

import json

import dagster as dg
import pytest

from mlcomops_assets.constants import BATCH_MONITORING, PRODUCTION_BATCH
from mlcomops_assets.lib.batches import DATA_SOURCE_KEY, source_identity
from mlcomops_assets.policy import load_policy, parse_policy
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets.summary import render
from mlcomops_assets_tests.conftest import default_policy, write_home


def _previous_source() -> str:
    """The source the project read before its policy switched datasets: another name and file."""
    raw = default_policy()
    raw["data"]["name"] = "previous_dataset"
    raw["data"]["source"] = {"kind": "file", "path": "data/source/previous.csv"}
    return source_identity(parse_policy(raw).data)


def _monitored(instance, paths: ProjectPaths, key: str, source: str | None) -> None:
    """What one run of monitor_batch leaves: the batch (with its data source), then its monitoring result."""
    metadata = {DATA_SOURCE_KEY: source} if source else {}
    instance.report_runless_asset_event(dg.AssetMaterialization(PRODUCTION_BATCH, partition=key, metadata=metadata))
    instance.report_runless_asset_event(dg.AssetMaterialization(BATCH_MONITORING, partition=key))
    record = {
        "batch": key,
        "rows": 300,
        "model_uri": "models:/arrests_release_model/1",
        "data_drift": {"drifted_columns": 0, "columns": [{}] * 6},
        "prediction_drift": {"score_ks": 0.03},
        "outlier_share": 0.01,
        "alarms": [],
    }
    folder = paths.monitoring_dir / "batch_monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key}.json").write_text(json.dumps(record))


@pytest.fixture
def paths(tmp_path) -> ProjectPaths:
    return ProjectPaths(write_home(tmp_path / "home"))


def test_batches_of_a_previous_data_source_are_not_listed(paths):
    current = source_identity(load_policy(paths.policy_file).data)
    with dg.instance_for_test() as instance:
        _monitored(instance, paths, "2001", _previous_source())
        _monitored(instance, paths, "old-week", None)  # monitored before batches recorded their source
        _monitored(instance, paths, "2002", current)
        _monitored(instance, paths, "week-1", current)
        # 2001 of the current data was validated again, but its monitoring failed: the result on disk is
        # still the previous source's, so it stays unlisted.
        instance.report_runless_asset_event(
            dg.AssetMaterialization(PRODUCTION_BATCH, partition="2001", metadata={DATA_SOURCE_KEY: current})
        )
        text = render(paths, instance)
    listed = [line.split()[2] for line in text.splitlines() if line.startswith("monitored batch ")]
    assert listed == ["2002", "week-1"]
    assert (
        "monitored batches   not listed (not of the current data source, arrests): 1 of another data source, "
        "1 with no data source recorded" in text
    )


def test_every_batch_of_the_current_source_is_listed(paths):
    current = source_identity(load_policy(paths.policy_file).data)
    with dg.instance_for_test() as instance:
        for key in ("2001", "2002"):
            _monitored(instance, paths, key, current)
        # Left by a project materialized before drift_report was retired: no longer evidence, never read.
        paths.reports_dir.mkdir(parents=True)
        legacy = {"batches": {"2001": {"dataset_drift": True, "drifted_columns": 6, "columns": [], "html_path": ""}}}
        (paths.reports_dir / "drift_report.json").write_text(json.dumps(legacy))
        text = render(paths, instance)
    listed = [line.split()[2] for line in text.splitlines() if line.startswith("monitored batch ")]
    assert listed == ["2001", "2002"] and "not listed" not in text
    assert "production batches  periods of year after data.training_cutoff=2000, and files in data/inbox" in text
    # Drift is the batches' (one verdict per period, in the monitored batch lines), never a separate report.
    assert (
        "drift               per production batch (batch_monitoring, in the monitored batch lines): the periods "
        "after the cutoff and the inbox files" in text
    )
    assert sum(line.startswith("drift") for line in text.splitlines()) == 1


def test_source_identity_changes_with_the_dataset_not_with_thresholds():
    base = parse_policy(default_policy()).data
    tightened = default_policy()
    tightened["data"]["min_class_share"] = 0.1
    tightened["data"]["columns"]["age"]["max"] = 90
    assert source_identity(parse_policy(tightened).data) == source_identity(base)
    untimed = default_policy()
    untimed["data"].pop("time_column")
    untimed["data"].pop("training_cutoff")
    del untimed["data"]["columns"]["year"]
    assert source_identity(parse_policy(untimed).data) != source_identity(base)
    assert source_identity(base) != _previous_source()


def test_make_run_monitors_again_what_another_source_left_under_a_current_key(paths):
    """After a switch of dataset, a batch key the current source has too (here an inbox file) is monitored
    again; a key only the previous source had is left alone; a never-monitored key is monitored."""
    from mlcomops_assets.monitor_all import to_monitor

    policy = load_policy(paths.policy_file)
    inbox = paths.home / policy.monitoring.inbox
    inbox.mkdir(parents=True)
    for key in ("week-1", "week-2", "week-3"):
        (inbox / f"{key}.csv").write_text("x\n")
    current = source_identity(policy.data)
    with dg.instance_for_test() as instance:
        _monitored(instance, paths, "week-1", _previous_source())  # in the inbox again: monitor again
        _monitored(instance, paths, "week-2", None)  # monitored before sources were recorded: again
        _monitored(instance, paths, "week-3", current)  # current: done
        _monitored(instance, paths, "gone", _previous_source())  # only the previous source had it: left
        keys = ["week-1", "week-2", "week-3", "gone", "week-4"]  # week-4: registered, never monitored
        assert to_monitor(instance, paths, policy, keys) == ["week-1", "week-2", "week-4"]
