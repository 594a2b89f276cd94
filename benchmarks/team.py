"""The whole graph on the team profile, next to the default profile's figures (issue 16).

Starts the team profile's services on 127.0.0.1 (the same ones the team tests use,
``mlcomops_assets_tests/team_services.py``): PostgreSQL from the pgserver wheel for Dagster's instance and
MLflow, moto's S3 server as the stand-in for cloud object storage (asset values, MLflow artifacts), and a
Dask scheduler with two worker processes (each step a task). Then runs the ``end_to_end`` job once on a
home with the given number of synthesized rows (``synthesize.py``, as ``run.py``) and prints one JSON line
(wall time, per-step times from the instance, peak memory of all processes together) to
``benchmarks/out/team-<rows>.json`` and prints one Markdown line (``make bench`` appends it to results.md).

Peak memory is sampled every 0.2 s as the sum of the resident sets of this process (which orchestrates
the run) and the Dask worker processes; the S3 stand-in runs in this process and holds every object in
memory, so the figure includes the stored values, which a real object store would hold elsewhere.

Usage: python benchmarks/team.py [--rows 1000000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))


class PeakMemory:
    """The largest sum of resident memory of this process and the given processes' trees, sampled."""

    def __init__(self, pids: set[int], interval: float = 0.2) -> None:
        import psutil

        self._processes = [psutil.Process(os.getpid())] + [psutil.Process(p) for p in pids]
        self._interval = interval
        self._stop = threading.Event()
        self.peak_mb = 0.0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for process in self._processes:
                try:
                    total += process.memory_info().rss
                    total += sum(c.memory_info().rss for c in process.children(recursive=True))
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthesized rows; 0 = the default data")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    args = parser.parse_args()

    from run import make_home

    from mlcomops_assets_tests.conftest import dvc_executable, run
    from mlcomops_assets_tests.team_services import (
        _free_port,
        dask_cluster,
        environment,
        postgres_server,
        s3_server,
        team_env,
        team_job,
    )

    root = Path(tempfile.mkdtemp(prefix="mlcomops-team-bench-"))
    try:
        home = make_home(args.rows or None, root)
        shutil.copy(REPO / "config" / "dagster.team.yaml", home / ".dagster_home" / "dagster.yaml")
        run(["git", "init", "-q"], home)
        run([dvc_executable(), "init", "-q"], home)
        with s3_server() as s3, postgres_server(root / "pgdata") as postgres:
            env = team_env(home, s3, postgres)
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            SqlAlchemyStore(env["MLCOMOPS_MLFLOW_TRACKING_URI"], s3.url("team/mlflow"))
            port = _free_port()
            env["MLCOMOPS_DASK_SCHEDULER"] = f"tcp://127.0.0.1:{port}"
            with dask_cluster(env, root / "dask", port=port, workers=args.workers) as dask, environment(env):
                import dagster as dg

                instance = dg.DagsterInstance.get()
                with PeakMemory(dask.worker_pids()) as memory:
                    began = time.perf_counter()
                    result = dg.execute_job(team_job("end_to_end"), instance=instance)
                    wall = time.perf_counter() - began
                steps = {
                    s.step_key: round(s.end_time - s.start_time, 2)
                    for s in instance.get_run_step_stats(result.run_id)
                    if s.start_time and s.end_time
                }
                instance.dispose()
        figures = {
            "profile": "team",
            "rows": args.rows,
            "workers": args.workers,
            "success": result.success,
            "wall_s": round(wall, 1),
            "peak_memory_mb": round(memory.peak_mb),
            "steps_s": steps,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        out = HERE / "out"
        out.mkdir(exist_ok=True)
        (out / f"team-{args.rows}.json").write_text(json.dumps(figures, indent=2) + "\n")
        rows = f"{args.rows:,} rows" if args.rows else "the default data"
        print(
            f"| team profile, {rows}, {args.workers} Dask workers | whole graph {figures['wall_s']} s | peak "
            f"{figures['peak_memory_mb']:,} MB (all processes) | success={result.success} | load "
            f"{figures['load_average'][0]} |",
            flush=True,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        os._exit(0)  # the servers are stopped; skip the interpreter's slow teardown (as graph.py)


if __name__ == "__main__":
    main()
