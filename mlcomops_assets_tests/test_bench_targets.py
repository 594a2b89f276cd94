"""`make bench` judges the scaling workloads against their targets: met, missed, or not evaluated when a
size was not run or its graph run failed (never met). Nothing here runs a workload."""

import importlib.util

from mlcomops_assets_tests.conftest import REPO


def _targets():
    spec = importlib.util.spec_from_file_location("bench_targets", REPO / "benchmarks" / "targets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _workload(rows: int, wall: float, rss: int, success: bool = True) -> dict:
    return {"rows": rows, "graph": {"success": success, "wall_s": wall, "peak_rss_mb": rss}}


def test_each_target_is_met_missed_or_not_evaluated():
    targets = _targets()
    found = {
        r["target"]: r
        for r in targets.verdicts(
            [_workload(100_000, 60.0, 700), _workload(1_000_000, 700.0, 1200), _workload(10_000_000, 599.0, 9000)]
        )
    }
    ten = found["10,000,000 rows through the whole graph in <= 10 min"]
    assert ten["verdict"] == "met" and ten["measured"] == "599.0 s"
    assert found["1,000,000 rows through the whole graph in <= 5 min"]["verdict"] == "**missed**"
    memory = [r for r in found.values() if r["target"] == "... and <= 8 GB peak memory"]
    assert memory[0]["verdict"] == "**missed**" and memory[0]["measured"] == "9,000 MB"
    growth = found["1,000,000 -> 10,000,000 rows grows at most linearly (<= 10x)"]
    assert growth["verdict"] == "met" and "x0.86" in growth["measured"]
    assert found["100,000 -> 1,000,000 rows grows at most linearly (<= 10x)"]["verdict"] == "**missed**"


def test_a_size_not_run_or_a_failed_run_is_not_evaluated():
    targets = _targets()
    rows = targets.verdicts([_workload(1_000_000, 90.0, 1000), _workload(10_000_000, 100.0, 1000, success=False)])
    by_target = {r["target"]: r for r in rows}
    ten = by_target["10,000,000 rows through the whole graph in <= 10 min"]
    assert ten["verdict"] == "not evaluated" and "failed" in ten["measured"]
    assert by_target["100,000 -> 1,000,000 rows grows at most linearly (<= 10x)"]["measured"] == "not run"
    assert {r["verdict"] for r in rows if "10,000,000" in r["target"]} == {"not evaluated"}
    assert "| target | measured | verdict |" in targets.markdown_table([])[0]


def test_the_default_size_overhead_is_judged_against_its_limit():
    targets = _targets()

    def overhead(graph_wall: float, base_wall: float, success: bool = True) -> dict:
        workload = _workload(5226, graph_wall, 600, success)
        workload |= {"baseline": {"wall_s": base_wall}, "overhead_ratio": round(graph_wall / base_wall, 2)}
        (row,) = [r for r in targets.verdicts([workload]) if r["target"].startswith("overhead")]
        return row

    assert overhead(26.0, 20.0)["verdict"] == "met" and overhead(26.0, 20.0)["measured"].startswith("1.3x")
    assert overhead(28.0, 16.0)["verdict"] == "**missed**" and "1.75x" in overhead(28.0, 16.0)["measured"]
    assert overhead(26.0, 20.0, success=False)["verdict"] == "not evaluated"
    (absent,) = [r for r in targets.verdicts([]) if r["target"].startswith("overhead")]
    assert absent["verdict"] == "not evaluated" and absent["measured"] == "not run"
