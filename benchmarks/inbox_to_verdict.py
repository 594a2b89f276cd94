"""From a file in the inbox to a verdict, with nobody clicking: time it against a running daemon.

Run ``make ui`` (Dagster webserver + daemon) in one terminal, then ``make inbox-demo`` in another. This
writes a drifted copy of the default data's 2001 batch (ages +15, 70% Black, 50% female) into the inbox
under a new batch name and waits for: the inbox sensor's monitoring run, then the retraining run the
alarm triggers, then that run's promotion verdict. It prints each step's time since the file landed.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pandas as pd

from mlcomops_assets.constants import BATCH_TAG, TRIGGER_TAG
from mlcomops_assets.policy import load_policy
from mlcomops_assets.settings import ProjectPaths, default_home

_DONE = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _wait(instance: dg.DagsterInstance, tags: dict[str, str], accept, start: float, timeout: float) -> dg.DagsterRun:
    while time.monotonic() - start < timeout:
        runs = [r for r in instance.get_runs(filters=dg.RunsFilter(tags=tags)) if accept(r)]
        finished = [r for r in runs if r.status in _DONE]
        if finished:
            return finished[0]
        time.sleep(2)
    raise SystemExit(f"no finished run with tags {tags} after {timeout:.0f} s: is `make ui` (the daemon) running?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    paths = ProjectPaths(default_home())
    policy = load_policy(paths.policy_file)
    production = pd.read_parquet(paths.prepared_dir / "production_data.parquet")
    batch = production[production["batch"] == production["batch"].min()].drop(columns="batch").copy()
    rng = np.random.default_rng(policy.seed)
    batch["age"] = np.clip(batch["age"] + 15, 10, 100)
    batch["colour"] = np.where(rng.random(len(batch)) < 0.7, "Black", "White")
    batch["sex"] = np.where(rng.random(len(batch)) < 0.5, "Female", "Male")
    key = f"drifted-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    inbox = paths.home / policy.monitoring.inbox
    inbox.mkdir(parents=True, exist_ok=True)
    tmp = inbox / f".{key}.csv.partial"
    batch.to_csv(tmp, index=False)
    start = time.monotonic()
    tmp.rename(inbox / f"{key}.csv")  # appears whole: the sensor never sees half a file
    print(f"{0:7.1f} s  {key}.csv ({len(batch)} rows) dropped into {policy.monitoring.inbox}")

    instance = dg.DagsterInstance.get()
    monitor = _wait(instance, {BATCH_TAG: key, TRIGGER_TAG: "inbox_sensor"}, lambda r: True, start, args.timeout)
    print(f"{time.monotonic() - start:7.1f} s  monitoring run {monitor.run_id[:8]} {monitor.status.value}")
    retrain = _wait(
        instance, {BATCH_TAG: key}, lambda r: r.tags.get(TRIGGER_TAG, "").startswith("check:"), start, args.timeout
    )
    print(
        f"{time.monotonic() - start:7.1f} s  retraining run {retrain.run_id[:8]} "
        f"({retrain.tags[TRIGGER_TAG]}) {retrain.status.value}"
    )
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=paths.mlflow_tracking_uri, registry_uri=paths.mlflow_tracking_uri)
    versions = client.search_model_versions(f"name='{policy.model.registered_name}'")
    mine = [v for v in versions if v.tags.get("registered_by.dagster_run_id") == retrain.run_id]
    if mine:
        print(f"verdict: v{mine[0].version} {mine[0].tags.get('promotion.verdict', '(no promotion verdict)')}")
    else:
        failures = [
            e.dagster_event.event_specific_data.error.message.splitlines()[0]
            for e in instance.all_logs(retrain.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        ]
        print("verdict: nothing registered; " + ("; ".join(failures) or "see the run in the Dagster UI"))


if __name__ == "__main__":
    main()
