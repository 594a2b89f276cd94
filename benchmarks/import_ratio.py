"""How much loading the code location costs on top of Dagster itself, as a ratio measured in one run.

Absolute import times differ between machines (and between runs on a busy one), so each pair is a
fresh process running ``import dagster`` and a fresh process running ``import mlcomops_assets.definitions``,
back to back in alternating order; the wall time of each process is ``time.perf_counter`` around
``subprocess.run``. Reports both medians and the median of the per-pair ratios against the target
(<= 1.2x, issue 16), prints one Markdown line and writes ``benchmarks/out/import_ratio.json``.

    python benchmarks/import_ratio.py [pairs]      # 5 pairs by default
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
PY = sys.executable
TARGET = 1.2
DAGSTER = "import dagster"
LOCATION = "import mlcomops_assets.definitions"


def wall(statement: str, env: dict[str, str]) -> float:
    """Seconds for a fresh interpreter to run ``statement`` and exit."""
    began = time.perf_counter()
    subprocess.run([PY, "-c", statement], env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def measure(pairs: int = 5) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)
    wall(LOCATION, env)  # warm the file cache and the bytecode once; not counted
    dagster_s: list[float] = []
    location_s: list[float] = []
    for i in range(pairs):
        order = [DAGSTER, LOCATION] if i % 2 == 0 else [LOCATION, DAGSTER]
        timed = {statement: wall(statement, env) for statement in order}
        dagster_s.append(round(timed[DAGSTER], 3))
        location_s.append(round(timed[LOCATION], 3))
    ratio = statistics.median(loc / dag for loc, dag in zip(location_s, dagster_s, strict=True))
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}",
        "pairs": pairs,
        "dagster_s": dagster_s,
        "location_s": location_s,
        "dagster_median_s": round(statistics.median(dagster_s), 2),
        "location_median_s": round(statistics.median(location_s), 2),
        "ratio_median": round(ratio, 2),
        "target": TARGET,
        "met": ratio <= TARGET,
    }


def markdown(result: dict) -> str:
    verdict = "met" if result["met"] else "missed"
    return (
        f"Code location import against `import dagster` (fresh processes, median of {result['pairs']} pairs): "
        f"**{result['ratio_median']}x** ({result['location_median_s']} s vs {result['dagster_median_s']} s), "
        f"target <= {result['target']}x: {verdict}."
    )


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    result = measure(pairs)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "import_ratio.json").write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
