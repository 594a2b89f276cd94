"""Runs that are killed or raced keep the record straight (issue 11, items 1 and 2).

Real CLI materializations (``dagster asset materialize``, as ``dvc repro`` starts them) are killed with
SIGKILL inside an open MLflow run, or started at the same instant; then the Dagster instance, the
MLflow store and the model registry are read back. The last test starts the real daemon on the
project's instance config with a run queued behind a killed one.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mlcomops_assets.automation import dead_run_sensor
from mlcomops_assets.constants import END_TO_END_JOB, TRIGGER_TAG
from mlcomops_assets.definitions import build_defs
from mlcomops_assets.lib.files import FAULT_MARKER_ENV, FAULT_PAUSE_ENV
from mlcomops_assets.resources import ProjectResource
from mlcomops_assets.run_guard import LOCK_WAIT_ENV
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets.stale_runs import ENDED_BY_TAG
from mlcomops_assets_tests.conftest import REPO, default_policy, materialize, write_home

pytestmark = pytest.mark.e2e

POLICY = default_policy()
REGISTERED = POLICY["model"]["registered_name"]
FIRST_CANDIDATE = next(iter(POLICY["model"]["candidates"]))
TRAIN = "model_candidates,model_selection_report,trained_model"
UPSTREAM = "raw_data,validated_data,training_data,holdout_data,production_data"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A project with validated, split data and nothing trained yet (its own registry)."""
    home = write_home(tmp_path_factory.mktemp("concurrency"))
    with materialize(home, UPSTREAM) as (result, _):
        assert result.success
    return home


def _instance(home: Path):
    return dg.instance_for_test(temp_dir=str(home / ".dagster_home"))


def _mlflow(home: Path):
    from mlflow.tracking import MlflowClient

    uri = ProjectPaths(home).mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _cli(home: Path, selection: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {"MLCOMOPS_HOME": str(home), "DAGSTER_HOME": str(home / ".dagster_home"), **(extra_env or {})}
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "mlcomops_assets.definitions"]
    return subprocess.Popen(
        [*command, "--select", selection],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill_inside_mlflow_run(home: Path, tmp_path: Path) -> None:
    """SIGKILL a training run while its first candidate's MLflow run is open."""
    marker = tmp_path / "paused"
    marker.unlink(missing_ok=True)
    process = _cli(
        home, "model_candidates", {FAULT_PAUSE_ENV: f"mlflow_run:{FIRST_CANDIDATE}", FAULT_MARKER_ENV: str(marker)}
    )
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert process.poll() is None, process.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "training never reached the fault point"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def _started(instance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])))


def _running_mlflow(home: Path) -> list:
    client = _mlflow(home)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'"))


def _assert_killed_state(home: Path, instance) -> tuple[dg.DagsterRun, str]:
    """The fault as reported: the Dagster run STARTED forever, its MLflow run RUNNING."""
    (killed,) = _started(instance)
    running = [r for r in _running_mlflow(home) if r.data.tags.get("dagster.run_id") == killed.run_id]
    assert len(running) == 1, "the kill must hit an open MLflow run"
    return killed, running[0].info.run_id


def _assert_ended(home: Path, instance, killed: dg.DagsterRun, mlflow_run_id: str) -> None:
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(killed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
    assert "is gone" in failure.message and "pid" in failure.message
    ended = _mlflow(home).get_run(mlflow_run_id)
    assert ended.info.status == "FAILED" and "is gone" in ended.data.tags[ENDED_BY_TAG]
    assert _started(instance) == [] and _running_mlflow(home) == []


def test_killed_training_is_ended_by_the_sensor_and_the_next_run_starts(home, tmp_path):
    _kill_inside_mlflow_run(home, tmp_path)
    with _instance(home) as instance:
        killed, mlflow_run = _assert_killed_state(home, instance)
        project = ProjectResource(home=str(home))
        with dg.build_sensor_context(instance=instance, resources={"project": project}) as context:
            start = time.monotonic()
            verdict = dead_run_sensor(context)
            seconds = time.monotonic() - start
        assert isinstance(verdict, dg.SkipReason) and killed.run_id in verdict.skip_message
        assert seconds < 15, f"the sweep took {seconds:.1f} s"
        _assert_ended(home, instance, killed, mlflow_run)

        # The next run, executed as the daemon executes a sensor's run request, starts without cleanup.
        job = build_defs(home).resolve_job_def(END_TO_END_JOB)
        result = job.execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey("model_candidates")],
            tags={TRIGGER_TAG: "retraining_sensor"},
            raise_on_error=False,
        )
        assert result.success
        assert _started(instance) == [] and _running_mlflow(home) == []


def test_next_cli_run_ends_a_killed_run_by_itself(home, tmp_path):
    """No daemon, no sensor: the next run's lock acquisition sweeps the dead run before it works."""
    _kill_inside_mlflow_run(home, tmp_path)
    with _instance(home) as instance:
        killed, mlflow_run = _assert_killed_state(home, instance)
    start = time.time()
    rerun = _cli(home, "model_candidates")
    output = rerun.communicate(timeout=300)[0].decode()
    assert rerun.returncode == 0, output[-3000:]
    with _instance(home) as instance:
        _assert_ended(home, instance, killed, mlflow_run)
        failed_at = instance.all_logs(killed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1].timestamp
        assert failed_at - start < 60, f"marked failed {failed_at - start:.1f} s after the next run started"


def _assert_consistent_registry(home: Path, instance) -> list:
    """Each version: built from an MLflow run opened by one Dagster run, which registered it from its
    own candidates and succeeded; no MLflow run behind two versions."""
    client = _mlflow(home)
    versions = client.search_model_versions(f"name = '{REGISTERED}'")
    assert len({v.run_id for v in versions}) == len(versions), "two versions built from one MLflow run"
    for v in versions:
        owner = client.get_run(v.run_id).data.tags["dagster.run_id"]
        assert v.tags["registered_by.dagster_run_id"] == owner, v.version
        assert v.tags["candidates.dagster_run_id"] == owner, v.version
        assert v.tags["dagster.run_id"] == owner, v.version
        assert instance.get_run_by_id(owner).status == dg.DagsterRunStatus.SUCCESS, v.version
    return versions


def _race(home: Path, env: dict[str, str]) -> list[tuple[int, str]]:
    """Two training-to-registration runs started at the same instant."""
    processes = [_cli(home, TRAIN, env), _cli(home, TRAIN, env)]
    return [(p.wait(timeout=600), p.stdout.read().decode()) for p in processes]


def test_simultaneous_runs_take_turns_and_register_two_consistent_versions(home):
    with _instance(home) as instance:
        before = len(_mlflow(home).search_model_versions(f"name = '{REGISTERED}'"))
        outcomes = _race(home, {})
        assert [code for code, _ in outcomes] == [0, 0], "\n".join(out[-2000:] for _, out in outcomes)
        versions = _assert_consistent_registry(home, instance)
        assert len(versions) == before + 2
        assert _started(instance) == [] and _running_mlflow(home) == []


def test_a_run_that_cannot_wait_is_refused_naming_the_other(home):
    with _instance(home) as instance:
        before = {v.version for v in _mlflow(home).search_model_versions(f"name = '{REGISTERED}'")}
        outcomes = _race(home, {LOCK_WAIT_ENV: "0"})
        codes = sorted(code for code, _ in outcomes)
        assert codes == [0, 1], "\n".join(out[-2000:] for _, out in outcomes)
        refused = next(out for code, out in outcomes if code)
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="__ASSET_JOB"), limit=2)
        winner = next(r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS)
        loser = next(r for r in runs if r.status == dg.DagsterRunStatus.FAILURE)
        assert f"refused: the project {home} is being written by Dagster run {winner.run_id}" in refused
        # The refusal is in the refused run's own record, readable in the UI.
        messages = [e.message for e in instance.all_logs(loser.run_id)]
        assert any(m.startswith("refused:") and winner.run_id in m for m in messages)
        versions = _assert_consistent_registry(home, instance)
        assert len({v.version for v in versions} - before) == 1
        assert _started(instance) == [] and _running_mlflow(home) == []


def test_instance_config_turns_run_monitoring_on(tmp_path):
    """config/dagster.yaml is a valid 1.13 instance with the monitoring daemon and no resume attempts
    (the DefaultRunLauncher cannot resume; a non-zero value makes the instance refuse to load)."""
    shutil.copy(REPO / "config" / "dagster.yaml", tmp_path / "dagster.yaml")
    settings = yaml.safe_load((tmp_path / "dagster.yaml").read_text())["run_monitoring"]
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert instance.run_monitoring_max_runtime_seconds == settings["max_runtime_seconds"] > 0
        assert "MONITORING" in instance.get_required_daemon_types()


def test_daemon_frees_the_queue_after_a_kill(tmp_path_factory, tmp_path):
    """The reported jam: a killed run STARTED forever and a queued run waiting behind it
    ("1 runs are currently in progress. Maximum is 1"). With the project's instance config, the daemon
    marks the dead run failed and launches the queued run, within two minutes of its start."""
    home = write_home(tmp_path_factory.mktemp("daemon"))
    with materialize(home, UPSTREAM) as (result, instance):
        assert result.success
        instance.add_dynamic_partitions("production_batches", ["2001"])
    _kill_inside_mlflow_run(home, tmp_path)
    dagster_home = home / ".dagster_home"
    shutil.copy(REPO / "config" / "dagster.yaml", dagster_home / "dagster.yaml")  # max_concurrent_runs: 1
    env = {**os.environ, "MLCOMOPS_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    workspace = ["-w", str(REPO / "workspace.yaml")]
    launch = [sys.executable, "-m", "dagster", "job", "launch", *workspace, "-j", "monitor_batch"]
    queued = subprocess.run(
        [*launch, "--tags", '{"dagster/partition": "2001"}'], env=env, capture_output=True, text=True, timeout=180
    )
    assert queued.returncode == 0, queued.stderr[-2000:]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (killed,) = _started(instance)
        (waiting,) = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
        log = tmp_path / "daemon.log"
        with open(log, "w") as sink:
            daemon = subprocess.Popen(
                [str(Path(sys.executable).parent / "dagster-daemon"), "run", *workspace],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        start = time.monotonic()
        try:
            while instance.get_run_by_id(waiting.run_id).status not in {
                dg.DagsterRunStatus.SUCCESS,
                dg.DagsterRunStatus.FAILURE,
            }:
                assert daemon.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() - start < 120, log.read_text()[-3000:]
                time.sleep(1)
        finally:
            os.killpg(daemon.pid, signal.SIGINT)
            daemon.wait(timeout=60)
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
        assert "is gone" in instance.all_logs(killed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1].message
        assert _started(instance) == [] and _running_mlflow(home) == []
