"""The scaling targets `make bench` reports against, and their verdicts from measured workloads.

A workload is the whole graph (the ``end_to_end`` job, in-process, default policy) on synthesized rows;
its wall time and peak RSS come from ``run.py``. Growth between two sizes is the ratio of graph wall
times: at most linear means it grows no faster than the rows.
"""

from __future__ import annotations

# rows -> (graph wall seconds, peak RSS MiB) at most
LIMITS: dict[int, tuple[float, int]] = {
    1_000_000: (5 * 60, 6 * 1024),
    10_000_000: (10 * 60, 8 * 1024),
}
# (smaller, larger) rows: graph wall at the larger size <= (larger / smaller) x the smaller's
GROWTH: list[tuple[int, int]] = [(100_000, 1_000_000), (1_000_000, 10_000_000)]
# The default data's size, and the orchestration overhead allowed there: graph wall / plain-script wall.
DEFAULT_ROWS = 5226
MAX_OVERHEAD = 1.3


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "not evaluated"
    return "met" if ok else "**missed**"


def verdicts(workloads: list[dict]) -> list[dict]:
    """One row per target: what it asks, what was measured, met / missed / not evaluated (a size that was
    not run, or a graph run that did not succeed, is never counted as met)."""
    by_rows = {w["rows"]: w["graph"] for w in workloads}
    rows: list[dict] = []
    default = next((w for w in workloads if w["rows"] == DEFAULT_ROWS), None)
    ratio = default.get("overhead_ratio") if default else None
    ran = ratio is not None and default["graph"].get("success") is True and default["baseline"].get("exit", 0) == 0
    rows.append(
        {
            "target": f"overhead at the default size ({DEFAULT_ROWS:,} rows) <= {MAX_OVERHEAD}x the plain script",
            "measured": (
                f"{ratio}x ({default['graph']['wall_s']} s / {default['baseline']['wall_s']} s)"
                if ratio is not None
                else "not run"
            ),
            "verdict": _verdict(ratio <= MAX_OVERHEAD if ran else None),
        }
    )
    for size, (wall, rss) in LIMITS.items():
        graph = by_rows.get(size)
        ran = graph is not None and graph.get("success") is True
        failed = "" if graph is None or ran else " (the graph run failed)"
        rows.append(
            {
                "target": f"{size:,} rows through the whole graph in <= {wall / 60:g} min",
                "measured": f"{graph['wall_s']} s{failed}" if graph else "not run",
                "verdict": _verdict(graph["wall_s"] <= wall if ran else None),
            }
        )
        rows.append(
            {
                "target": f"... and <= {rss / 1024:g} GB peak memory",
                "measured": f"{graph['peak_rss_mb']:,} MB{failed}" if graph else "not run",
                "verdict": _verdict(graph["peak_rss_mb"] <= rss if ran else None),
            }
        )
    for small, large in GROWTH:
        first, second = by_rows.get(small), by_rows.get(large)
        both = first is not None and second is not None
        ran = both and first.get("success") is True and second.get("success") is True
        factor = round(second["wall_s"] / first["wall_s"], 2) if both and first["wall_s"] else None
        rows.append(
            {
                "target": f"{small:,} -> {large:,} rows grows at most linearly (<= {large / small:g}x)",
                "measured": f"{first['wall_s']} s -> {second['wall_s']} s: x{factor}" if both else "not run",
                "verdict": _verdict(factor <= large / small if ran and factor is not None else None),
            }
        )
    return rows


def markdown_table(workloads: list[dict]) -> list[str]:
    lines = ["| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {r['target']} | {r['measured']} | {r['verdict']} |" for r in verdicts(workloads)]
    return lines
