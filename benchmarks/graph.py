"""One run of the end-to-end job in-process on a persistent Dagster instance; prints timings as JSON.

Usage: python benchmarks/graph.py HOME   (DAGSTER_HOME must point at HOME/.dagster_home)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

start = time.perf_counter()
import dagster as dg  # noqa: E402

from mlcomops_assets.constants import END_TO_END_JOB  # noqa: E402
from mlcomops_assets.definitions import build_defs  # noqa: E402
from mlcomops_assets.pipeline_run import INPUTS_TAG, finish, inputs, inputs_hash  # noqa: E402
from mlcomops_assets.settings import ProjectPaths  # noqa: E402


def main() -> None:
    home = Path(sys.argv[1])
    loaded = time.perf_counter()
    defs = build_defs(home)
    instance = dg.DagsterInstance.get()
    began = time.perf_counter()
    # Tagged like `make run`, so the re-run (python -m mlcomops_assets.pipeline_run) can tell it is up to date.
    tags = {INPUTS_TAG: inputs_hash(inputs(ProjectPaths(home), instance))}
    result = defs.resolve_job_def(END_TO_END_JOB).execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    ended = time.perf_counter()
    steps = {
        s.step_key: round(s.end_time - s.start_time, 2)
        for s in instance.get_run_step_stats(result.run_id)
        if s.start_time and s.end_time
    }
    print(
        json.dumps(
            {
                "success": result.success,
                "import_s": round(loaded - start, 2),
                "run_s": round(ended - began, 2),
                "steps_s": steps,
                "until_output_s": round(time.perf_counter() - start, 2),  # the rest of the wall time is exit
            }
        )
    )


if __name__ == "__main__":
    main()
    finish(0)  # exits as `make run` does (python -m mlcomops_assets.pipeline_run)
