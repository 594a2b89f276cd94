"""A materialization killed hard (SIGKILL) mid-write leaves the previous version complete and readable,
and the next run succeeds without manual cleanup."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mlcomops_assets.lib.files import FAULT_MARKER_ENV, FAULT_PAUSE_ENV, file_md5

pytestmark = pytest.mark.e2e


def _materialize_cli(home: Path, selection: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "MLCOMOPS_HOME": str(home),
        "DAGSTER_HOME": str(home / ".dagster_home"),
        **(extra_env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "mlcomops_assets.definitions",
        "--select",
        selection,
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_mid_write(home: Path, selection: str, target: Path, tmp_path: Path) -> None:
    marker = tmp_path / f"{target.name}.paused"
    process = _materialize_cli(home, selection, {FAULT_PAUSE_ENV: target.name, FAULT_MARKER_ENV: str(marker)})
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert process.poll() is None, process.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the writer never reached the rename"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    leftovers = list(target.parent.glob(f".{target.name}.*.tmp"))
    assert leftovers and leftovers[0].stat().st_size > 0, "the kill must hit a complete temporary file"


@pytest.mark.parametrize(
    ("selection", "relative", "read"),
    [
        ("validated_data", "data/validated/validated_data.parquet", pd.read_parquet),
        ("fairness_report", "data/published/reports/fairness_report.json", lambda p: pd.read_json(p, typ="series")),
    ],
    ids=["dataset", "report"],
)
def test_sigkill_mid_write_keeps_previous_version(default_run, tmp_path, selection, relative, read):
    home = default_run[0]
    target = home / relative
    before = file_md5(target)

    _kill_mid_write(home, selection, target, tmp_path)
    assert file_md5(target) == before  # the previous version is complete
    read(target)  # and readable

    rerun = _materialize_cli(home, selection)
    output = rerun.communicate(timeout=300)[0].decode()
    assert rerun.returncode == 0, output[-3000:]
    assert list(target.parent.glob(f".{target.name}.*.tmp")) == []  # no manual cleanup was needed
    read(target)
