"""The orphan decision on run tags alone (no MLflow store); the sweep itself is tested in ../test_stale_runs.py."""

import subprocess
import sys

from mlcomops_assets.lib.processes import ProcessId
from mlcomops_assets.lib.stale_runs import DAGSTER_RUN_TAG, TAG_PREFIX, orphan_reason, process_tags


def _never_ended(_run_id: str) -> None:
    return None


def test_dead_process_or_ended_dagster_run_is_orphaned():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    dead = ProcessId(ProcessId.current().host, child.pid).as_tags(TAG_PREFIX)

    assert f"pid {child.pid}" in orphan_reason(dead, _never_ended)
    ended = orphan_reason({DAGSTER_RUN_TAG: "d1"}, lambda run_id: "FAILURE" if run_id == "d1" else None)
    assert ended == "its Dagster run d1 has ended (FAILURE)"


def test_live_or_unknown_runs_are_left_alone():
    assert orphan_reason(process_tags(), _never_ended) is None
    assert orphan_reason({DAGSTER_RUN_TAG: "d2"}, _never_ended) is None
    assert orphan_reason({}, _never_ended) is None
