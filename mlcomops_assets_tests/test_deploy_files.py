"""The monitoring files under deploy/ stay in step with the scoring service's metrics.

The Grafana dashboard must parse, and every PromQL expression in it (panels and template variables)
may name only metrics the service's metrics module defines: a renamed metric fails here, not as an
empty panel in production. The Prometheus scrape configuration must parse and target 127.0.0.1 only.
"""

from __future__ import annotations

import json
import re

import yaml

from mlcomops_assets.settings import REPOSITORY_ROOT

DEPLOY = REPOSITORY_ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "mlcomops-serving.json"
PROMETHEUS = DEPLOY / "prometheus.yml"

# Sample names Prometheus exposes per metric type (prometheus_client's text format).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def service_metric_names() -> set[str]:
    """Every sample name the service can expose, from the registry of its metrics module."""
    from prometheus_client import CollectorRegistry

    from mlcomops_assets.serving import metrics

    registries = [value for value in vars(metrics).values() if isinstance(value, CollectorRegistry)]
    if hasattr(metrics, "ServiceMetrics"):
        registries.append(metrics.ServiceMetrics().registry)
    assert registries, "mlcomops_assets.serving.metrics defines no Prometheus registry"
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
            names.update(sample.name for sample in family.samples)
    return names


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label names, functions and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)  # label lists
    text = re.sub(r"\boffset\s+\S+", " ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, rest = match.group(), text[match.end() :]
        if name in _KEYWORDS or rest.lstrip().startswith("(") or text[: match.start()].endswith("$"):
            continue  # a keyword, a function or aggregation, a Grafana variable
        names.add(name)
    return names


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target, nested panels of rows included, and every query variable."""
    found = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((f"panel {panel.get('title')!r} target {target.get('refId')}", target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query or ""
        selector = re.fullmatch(r"\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*", query)
        found.append((f"variable {variable['name']!r}", selector.group(1) if selector else query))
    return found


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{job="$job", route=~"/x/{id}"}[$__rate_interval])))'
        " / ignoring(route) sum without (status) (b_total offset 5m) > bool 0 and on (le) c"
    )
    assert metric_names_in(expr) == {"a_bucket", "b_total", "c"}


def test_dashboard_queries_only_name_metrics_the_service_defines() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    defined = service_metric_names()
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 10
    unknown = {
        where: sorted(metric_names_in(expr) - defined) for where, expr in queries if metric_names_in(expr) - defined
    }
    assert not unknown, f"the dashboard names metrics mlcomops_assets/serving/metrics.py does not define: {unknown}"
    assert all(metric_names_in(expr) for _, expr in queries), "every query selects at least one metric"


def test_dashboard_uses_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"

    def walk(panels: list[dict]):
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    for panel in walk(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in panel["targets"]), panel["title"]
    assert len({p["id"] for p in walk(dashboard["panels"])}) == len(list(walk(dashboard["panels"])))


def test_prometheus_scrapes_the_service_on_loopback_only() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["mlcomops_serving"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["scrape_interval"] == "15s"
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert targets == ["127.0.0.1:8000"]
    for other in jobs.values():
        for group in other.get("static_configs", []):
            assert all(t.startswith("127.0.0.1:") for t in group["targets"]), other["job_name"]
