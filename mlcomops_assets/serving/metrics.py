"""Prometheus metrics of the scoring service (``GET /metrics``), in a registry of its own.

Routes are labelled by their template (``/decisions/{receipt_id}``), never by the requested path, so a
receipt id never becomes a label; no label carries an input value.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from mlcomops_assets.serving.schema import RULES

SCORE_BUCKETS = tuple(round(i / 10, 1) for i in range(1, 11))
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """Every metric the service exposes."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "mlcomops_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "mlcomops_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "mlcomops_decisions",
            "Decisions made and logged, by model version and decision label.",
            ["model_version", "decision"],
            registry=r,
        )
        self.favourable = Counter(
            "mlcomops_favourable_decisions",
            "Favourable decisions, by model version (favourable rate = this / mlcomops_decisions_total).",
            ["model_version"],
            registry=r,
        )
        self.favourable_rate = Gauge(
            "mlcomops_favourable_rate",
            "Share of favourable decisions since the service started, by model version.",
            ["model_version"],
            registry=r,
        )
        self.scores = Histogram(
            "mlcomops_decision_score",
            "Scores (probability of the favourable outcome), by model version.",
            ["model_version"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.outliers = Counter(
            "mlcomops_outlier_applications",
            "Scored applications the outlier detector flags, by model version.",
            ["model_version"],
            registry=r,
        )
        self.outlier_checked = Counter(
            "mlcomops_outlier_checked_applications",
            "Scored applications the outlier detector examined, by model version.",
            ["model_version"],
            registry=r,
        )
        self.outlier_share = Gauge(
            "mlcomops_outlier_share",
            "Share of examined applications flagged as outliers since the service started, by model version.",
            ["model_version"],
            registry=r,
        )
        self.validation_failures = Counter(
            "mlcomops_validation_failures",
            "Refused request fields, by rule (nothing refused is logged as a decision).",
            ["rule"],
            registry=r,
        )
        self.outcomes = Counter("mlcomops_outcomes", "Outcomes reported, by label.", ["outcome"], registry=r)
        self.reloads = Counter(
            "mlcomops_model_reloads",
            "Champion loads: success (verified and swapped in) or failure (refused or unloadable; counted once per "
            "version and reason).",
            ["result"],
            registry=r,
        )
        self.refused = Gauge(
            "mlcomops_champion_refused",
            "1 while the champion alias points at a version the service refuses, else 0.",
            registry=r,
        )
        self.model_info = Gauge(
            "mlcomops_model_info",
            "The model version being served (value 1).",
            ["name", "version", "artifact_sha256"],
            registry=r,
        )
        self.ready = Gauge("mlcomops_ready", "1 when a verified champion is being served, else 0.", registry=r)
        for rule in RULES:
            self.validation_failures.labels(rule=rule)
        for result in ("success", "failure"):
            self.reloads.labels(result=result)
        self._served: tuple[str, str, str] | None = None
        self._counts: dict[str, list[int]] = {}
        self._lock = threading.Lock()  # the running shares are read-modify-write

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def serving(self, name: str, version: str, artifact_sha256: str) -> None:
        if self._served is not None:
            self.model_info.remove(*self._served)
        self._served = (name, version, artifact_sha256)
        self.model_info.labels(name=name, version=version, artifact_sha256=artifact_sha256).set(1)
        self.ready.set(1)

    def record_decisions(self, version: str, entries: list[dict], outlier_flags: list[bool] | None) -> None:
        with self._lock:
            self._record(version, entries, outlier_flags)

    def _record(self, version: str, entries: list[dict], outlier_flags: list[bool] | None) -> None:
        counts = self._counts.setdefault(version, [0, 0, 0, 0])  # decisions, favourable, checked, outliers
        by_decision: dict[str, int] = {}
        scores = self.scores.labels(model_version=version)
        favourable = 0
        for entry in entries:
            by_decision[entry["decision"]] = by_decision.get(entry["decision"], 0) + 1
            scores.observe(entry["score"])
            favourable += bool(entry["favourable"])
        for decision, count in by_decision.items():
            self.decisions.labels(model_version=version, decision=decision).inc(count)
        counts[0] += len(entries)
        counts[1] += favourable
        self.favourable.labels(model_version=version).inc(favourable)  # present at 0 too
        self.favourable_rate.labels(model_version=version).set(counts[1] / counts[0] if counts[0] else 0.0)
        if outlier_flags is not None:
            flagged = sum(outlier_flags)
            counts[2] += len(outlier_flags)
            counts[3] += flagged
            self.outlier_checked.labels(model_version=version).inc(len(outlier_flags))
            self.outliers.labels(model_version=version).inc(flagged)
            self.outlier_share.labels(model_version=version).set(counts[3] / counts[2] if counts[2] else 0.0)


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by route template, method and status."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            labels = {"route": template, "method": scope.get("method", ""), "status": str(status["code"])}
            self.metrics.requests.labels(**labels).inc()
            self.metrics.latency.labels(**labels).observe(time.perf_counter() - start)
