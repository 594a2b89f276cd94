"""``make bench``: what the orchestration costs, and how the pipeline scales.

For each workload (the default data, then synthetic data of the given sizes, see synthesize.py):
the whole graph (end_to_end, in-process, persistent instance) with per-step times and peak RSS, the
same graph again with nothing changed, and the plain-script baseline (baseline.py) with the same
libraries and settings. The scaling workloads (10M rows by default, ``--scale-sizes``) run the graph
only; every graph figure is judged against the targets of targets.py, with the load average before and
after it (other work on the cores moves every figure). Also: the time to import the code location and
the time until `dagster dev` answers with the code location loaded. Then the scoring service under
load next to `mlflow models serve` on the default home's champion (serving.py; `--no-serving` leaves
it out). Writes benchmarks/out/results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
PY = sys.executable


def measured(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[dict, float, int]:
    """Run ``cmd``; return its JSON output, wall seconds and peak RSS in MB, from ``wait4``'s rusage of
    that child alone (in-process execution keeps all the work in that one process)."""
    import tempfile
    import threading

    with tempfile.TemporaryFile(mode="w+") as sink:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.DEVNULL, text=True)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - began
        sink.seek(0)
        text = sink.read()
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if not lines:
        last = (text.strip().splitlines() or [""])[-1][:600]
        return {"exit": proc.returncode, "output": last}, round(wall, 2), usage.ru_maxrss // 1024
    return json.loads(lines[-1]), round(wall, 2), usage.ru_maxrss // 1024


def synthesized(rows: int, seed: int) -> Path:
    """The synthetic source of ``rows`` rows, made once per size, seed and version of synthesize.py (10M rows
    take ~25 s to make)."""
    import hashlib

    from synthesize import synthesize

    version = hashlib.sha256((HERE / "synthesize.py").read_bytes()).hexdigest()[:12]
    path = OUT / "sources" / f"rows-{rows}-seed-{seed}-{version}.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        synthesize(rows, seed).to_csv(partial, index=False)
        partial.rename(path)  # only a complete file is reused
    return path


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # the home's source must be a file inside it (the source confinement rule)
    except OSError:
        shutil.copyfile(source, target)


def make_home(rows: int | None, root: Path) -> Path:
    home = root / (f"rows-{rows}" if rows else "default")
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    shutil.copytree(REPO / "expectations", home / "expectations")
    policy = yaml.safe_load((REPO / "governance.yaml").read_text())
    if rows:
        _link_or_copy(synthesized(rows, policy["seed"]), home / "source.csv")
        policy["data"]["source"] = {"kind": "file", "path": "source.csv"}
        # The contract's row-count bound is the policy's for the real data (5M rows at most); a synthetic
        # workload above it would fail that rule by design, so its policy admits its own size.
        bounds = policy["data"]["row_count"]
        bounds["max"] = max(bounds["max"], rows)
    (home / "governance.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    (home / ".dagster_home").mkdir()
    shutil.copy(REPO / "config/dagster.yaml", home / ".dagster_home/dagster.yaml")
    return home


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MLCOMOPS_HOME=str(home), DAGSTER_HOME=str(home / ".dagster_home"), PYTHONPATH=str(REPO))
    return env


def import_time(repeats: int = 3) -> list[float]:
    code = "import time; t=time.perf_counter(); import mlcomops_assets.definitions; print(time.perf_counter()-t)"
    return [round(float(subprocess.check_output([PY, "-c", code], text=True).split()[-1]), 2) for _ in range(repeats)]


def dev_ready(home: Path, port: int = 3310, timeout: float = 180) -> float | None:
    """Seconds from starting `dg dev` until GraphQL lists the code location's repository."""
    query = json.dumps({"query": "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"})
    cmd = [
        str(Path(PY).parent / "dg"),
        "dev",
        "-w",
        str(REPO / "workspace.yaml"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    began = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env_for(home), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    ready = None
    try:
        while time.perf_counter() - began < timeout:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql",
                    data=query.encode(),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=2) as response:
                    if '"name"' in response.read().decode():
                        ready = round(time.perf_counter() - began, 2)
                        break
            except OSError:
                pass
            time.sleep(0.25)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # own session: SIGINT is not ignored there
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return ready


def load_average() -> str:
    """The 1/5/15-minute load averages: other work on the machine's cores moves every figure."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def workload(rows: int | None, root: Path, timeout: float, graph_only: bool = False) -> dict:
    home = make_home(rows, root)
    env = env_for(home)
    load_before = load_average()
    graph, graph_wall, graph_rss = measured([PY, str(HERE / "graph.py"), str(home)], env, timeout)
    graph_result = {**graph, "wall_s": graph_wall, "peak_rss_mb": graph_rss, "load": [load_before, load_average()]}
    if graph_only:
        return {"rows": rows or 5226, "graph": graph_result}
    again, again_wall, _ = measured([PY, "-m", "mlcomops_assets.pipeline_run"], env, timeout)
    base, base_wall, base_rss = measured([PY, str(HERE / "baseline.py"), str(home)], env, timeout)
    return {
        "rows": rows or 5226,
        "graph": graph_result,
        "rerun_unchanged": {"wall_s": again_wall, **again},
        "baseline": {**base, "wall_s": base_wall, "peak_rss_mb": base_rss},
        "overhead_ratio": round(graph_wall / base_wall, 2) if base_wall else None,
        "overhead_ratio_run_only": round(graph["run_s"] / base["steps_s"]["total"], 2)
        if "run_s" in graph and "steps_s" in base
        else None,
    }


def markdown(results: dict) -> str:
    from targets import markdown_table

    full = [w for w in results["workloads"] if "baseline" in w]
    lines = [f"# Benchmark results ({results['date']})", "", f"Machine: {results['machine']}", ""]
    if "import_s" in results:
        lines += [
            f"Code location import: {results['import_s']} s (3 fresh processes). "
            f"`dagster dev` answering with the code location loaded: {results['dev_ready_s']} s.",
            "",
        ]
    lines += [
        "| rows | graph wall | graph run | peak RSS | load (1/5/15 min, before; after) | re-run unchanged "
        "| baseline wall | baseline compute | baseline RSS | overhead (wall) | overhead (compute) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in results["workloads"]:
        g, b = w["graph"], w.get("baseline")
        ok = "" if g.get("success") else " (failed)"
        head = (
            f"| {w['rows']:,} | {g['wall_s']} s{ok} | {g.get('run_s')} s | {g['peak_rss_mb']:,} MB "
            f"| {'; '.join(g.get('load', []))} "
        )
        if b is None:
            lines.append(head + "| - | - | - | - | - | - |")  # a scaling workload: the graph only
            continue
        lines.append(
            head + f"| {w['rerun_unchanged']['wall_s']} s | {b['wall_s']} s | {b.get('steps_s', {}).get('total')} s "
            f"| {b['peak_rss_mb']:,} MB | {w['overhead_ratio']}x | {w['overhead_ratio_run_only']}x |"
        )
    lines += ["", "Against the targets (benchmarks/targets.py):", "", *markdown_table(results["workloads"])]
    if full:
        lines += ["", "Re-run with nothing changed (`python -m mlcomops_assets.pipeline_run`):", ""]
        for w in full:
            lines.append(
                f"- {w['rows']:,} rows: {w['rerun_unchanged']['wall_s']} s: {w['rerun_unchanged'].get('output', '')}"
            )
    lines += ["", "Per step (graph, seconds):", ""]
    for w in results["workloads"]:
        steps = w["graph"].get("steps_s", {})
        lines.append(
            f"- {w['rows']:,} rows: " + ", ".join(f"{k} {v}" for k, v in sorted(steps.items(), key=lambda i: -i[1]))
        )
    if full:
        lines += ["", "Per stage (baseline, seconds):", ""]
        for w in full:
            lines.append(
                f"- {w['rows']:,} rows: " + ", ".join(f"{k} {v}" for k, v in w["baseline"].get("steps_s", {}).items())
            )
    text = "\n".join(lines) + "\n"
    if "serving" in results:
        from serving import markdown_section

        text += "\n" + markdown_section(results["serving"])
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="0,100000,1000000", help="rows per workload; 0 = the default data")
    parser.add_argument(
        "--scale-sizes",
        default="10000000",
        help="rows per scaling workload: the graph only (no re-run, no baseline), checked against the targets "
        "(benchmarks/targets.py); '' for none",
    )
    parser.add_argument(
        "--graph-only",
        action="store_true",
        help="every workload without the re-run and the baseline, and no import or `dagster dev` timing "
        "(for iterating on one size)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="per measured process")
    parser.add_argument("--no-serving", action="store_true", help="leave out the scoring-service benchmark")
    parser.add_argument(
        "--serving-args", default="", help="options for serving.py, e.g. '--duration 20 --no-mlflow' (see its --help)"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    root = OUT / "work"
    root.mkdir(parents=True, exist_ok=True)
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}",
    }
    if not args.graph_only:
        results["import_s"] = import_time()
        results["dev_ready_s"] = dev_ready(make_home(None, root / "dev"))
    results["workloads"] = []
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    plan = [(size, args.graph_only) for size in sizes]
    plan += [(int(s), True) for s in args.scale_sizes.split(",") if s.strip() and int(s) not in sizes]
    for size, graph_only in plan:
        results["workloads"].append(workload(size or None, root, args.timeout, graph_only))
        if size > 1_000_000:
            shutil.rmtree(root / f"rows-{size}", ignore_errors=True)  # gigabytes of data per home
        (OUT / "results.json").write_text(json.dumps(results, indent=2))
        (OUT / "results.md").write_text(markdown(results))
        print(markdown(results))
    if not args.no_serving:
        import serving

        from mlcomops_assets.settings import default_home

        options = argparse.ArgumentParser()
        serving.add_arguments(options)
        # The default home (MLCOMOPS_HOME, as `make bench` exports it): the champion `make run` promoted.
        results["serving"] = serving.benchmark(default_home(), options.parse_args(shlex.split(args.serving_args)))
        (OUT / "results.json").write_text(json.dumps(results, indent=2))
        (OUT / "results.md").write_text(markdown(results))
        print(serving.markdown_section(results["serving"]))


if __name__ == "__main__":
    main()
