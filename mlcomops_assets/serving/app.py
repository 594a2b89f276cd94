"""The scoring service's HTTP API (FastAPI): decisions with receipts, outcomes, health, metrics.

``create_app(settings)`` builds the application; ``run`` serves it with uvicorn on 127.0.0.1. Endpoints
(their schemas: ``/openapi.json``; what a person can be told from them: docs/serving.md):

- ``POST /decisions``: one application (a JSON object) or ``{"applications": [...]}``; each decision is
  logged before it is answered, and the answer is its receipt (``{"decisions": [...]}`` for a batch);
- ``GET /decisions/{receipt_id}``: the stored receipt, identical to the answer;
- ``POST /outcomes``: ``{receipt_id, outcome}``, the true label once known, stored once;
- ``GET /health`` (the process answers), ``GET /ready`` (a verified champion is served), ``GET /metrics``.

Requests must name ``127.0.0.1`` or ``localhost`` as Host (a DNS-rebound name is refused) and send JSON
as ``application/json`` (a browser cannot send that cross-origin without a preflight, which is not
answered), at most ``MAX_BODY_BYTES`` (8 MiB) and ``MAX_BATCH`` (10,000) applications.
"""

import datetime as dt
import logging
import threading
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from mlcomops_assets.lib.decision_log import DecisionLog, OutcomeAlreadyRecordedError, UnknownReceiptError
from mlcomops_assets.serving.champion import ChampionHolder
from mlcomops_assets.serving.metrics import RequestMetrics, ServiceMetrics
from mlcomops_assets.serving.schema import (
    InvalidRequest,
    Problem,
    application_schema,
    parse_applications,
    parse_json,
    parse_outcome,
)
from mlcomops_assets.serving.scoring import decide
from mlcomops_assets.serving.settings import MAX_BATCH, MAX_BODY_BYTES, ServingConfigError, ServingSettings

log = logging.getLogger("mlcomops_assets.serving")
PURGE_EVERY = dt.timedelta(hours=1)


# --- response schemas (for /openapi.json; the answers are built by the decision log) ---------------


class ModelRef(BaseModel):
    name: str
    version: str
    artifact_sha256: str = Field(description="SHA-256 of the model artifact, as signed at promotion.")


class Reason(BaseModel):
    feature: str = Field(description="The input column, as named in the policy.")
    description: str
    contribution: float = Field(description="Its exact SHAP contribution on the attribution's scale.")
    direction: str = Field(description="'favourable' or 'unfavourable': where it pushed the decision.")


class Attribution(BaseModel):
    scale: str = Field(description="'log_odds' (or 'probability' for a single tree) of the favourable outcome.")
    base_value: float
    value: float = Field(description="The model's output for this person: base_value + sum of contributions.")
    contributions: dict[str, float] = Field(description="Every input column's exact SHAP contribution.")


class Receipt(BaseModel):
    receipt_id: str
    created_at: str
    expires_at: str = Field(description="When the inputs kept to re-explain the decision are blanked.")
    model: ModelRef
    decision: str
    favourable: bool
    score: float = Field(description="Probability of the favourable outcome.")
    threshold: float
    reasons: list[Reason]
    attribution: Attribution
    explanation: str | None = Field(description="The policy's text for adverse decisions (null if favourable).")
    record_hash: str = Field(description="SHA-256 of the decision's record in the hash-chained decision log.")


class DecisionBatchResult(BaseModel):
    decisions: list[Receipt]


class ProblemOut(BaseModel):
    field: str
    rule: str
    message: str


class Problems(BaseModel):
    error: str
    problems: list[ProblemOut]


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    error: str
    reason: str | None = None


class OutcomeStored(BaseModel):
    receipt_id: str
    outcome: str
    stored: bool


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


# --- the application -------------------------------------------------------------------------------


class _Refusal(Exception):
    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.error, self.reason = status, error, reason


async def _read_json(request: Request) -> Any:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise _Refusal(415, "unsupported media type", "send the body as application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _Refusal(413, "body too large", f"at most {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _Refusal(413, "body too large", f"at most {MAX_BODY_BYTES} bytes")
    return parse_json(bytes(body))


def create_app(
    settings: ServingSettings,
    *,
    decision_log: DecisionLog | None = None,
    poll: bool = True,
) -> FastAPI:
    """The service over ``settings``' stores (or the given ``decision_log``); ``poll`` starts the champion
    checks with the app (``app.state.holder.refresh()`` runs one by hand)."""
    policy = settings.policy
    metrics = ServiceMetrics()
    owns_log = decision_log is None
    if decision_log is None:
        try:
            decision_log = DecisionLog(settings.decision_log_url, settings.input_key)
        except Exception as exc:  # noqa: BLE001 - any driver or database error: say which log
            raise ServingConfigError(f"the decision log cannot be opened: {type(exc).__name__}: {exc}") from None
    schema = application_schema(policy, MAX_BATCH)
    last_purge: dict[str, dt.datetime | None] = {"at": None}
    purge_lock = threading.Lock()

    def housekeeping() -> None:
        """Blank the inputs of decisions past their retention, at most once an hour."""
        now = dt.datetime.now(dt.UTC)
        with purge_lock:
            if last_purge["at"] is not None and now - last_purge["at"] < PURGE_EVERY:
                return
            last_purge["at"] = now
        purged = decision_log.purge_expired(now)
        if purged:
            log.info("blanked the inputs of %d decision(s) past their retention", purged)

    holder = ChampionHolder(settings, metrics, housekeeping)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if poll:
            holder.start()
        try:
            yield
        finally:
            holder.stop()
            if owns_log:
                decision_log.close()

    app = FastAPI(
        title="mlcomops scoring service",
        version="1",
        description="Decisions of the verified champion, with receipts and per-person explanations (docs/serving.md).",
        docs_url=None,  # Swagger UI and ReDoc load from CDNs: offline they show nothing
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings, app.state.metrics, app.state.holder, app.state.decision_log = (
        settings,
        metrics,
        holder,
        decision_log,
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])
    app.add_middleware(RequestMetrics, metrics=metrics)

    def invalid(problems: list[Problem]) -> JSONResponse:
        for problem in problems:
            metrics.validation_failures.labels(rule=problem.rule).inc()
        return JSONResponse({"error": "invalid request", "problems": [p.as_dict() for p in problems]}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _path_problems(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
            rule = "wrong_type" if err.get("type", "").endswith(("_type", "_parsing")) else "invalid"
            problems.append(Problem(name, rule, str(err.get("msg", "invalid"))))
        return invalid(problems)

    @app.exception_handler(_Refusal)
    async def _refused(_request: Request, exc: _Refusal) -> JSONResponse:
        return JSONResponse({"error": exc.error, "reason": exc.reason}, status_code=exc.status)

    def unavailable() -> JSONResponse:
        refused = holder.check.get("refused") or {}
        reason = refused.get("reason") or "starting: the champion is being loaded and verified"
        return JSONResponse(
            {"error": "no verified champion", "reason": reason, "champion_check": holder.check}, status_code=503
        )

    def decide_and_log(champion, applications: list, batch: bool) -> tuple[list[dict], bytes, list[bool] | None]:
        """Decide, log, and the answer's body: the receipts as the decision log wrote them (the same JSON
        as ``JSONResponse`` of the receipts, without parsing and serializing the stored JSON again)."""
        entries, flags = decide(champion, applications, schema, policy, settings.input_key)
        receipts = decision_log.append_many_json(entries)
        body = '{"decisions":[' + ",".join(receipts) + "]}" if batch else receipts[0]
        return entries, body.encode("utf-8"), flags

    @app.post(
        "/decisions",
        summary="Decide on one application or a batch; each decision is logged and answered with its receipt.",
        openapi_extra=_json_body({"oneOf": [_ref("Application"), _ref("DecisionBatch")]}),
        responses={
            200: {
                "description": "The receipt (one application) or {decisions: [receipts]} (a batch).",
                "content": {"application/json": {"schema": {"oneOf": [_ref("Receipt"), _ref("DecisionBatchResult")]}}},
            },
            422: {"model": Problems, "description": "Invalid application(s): each field and rule; nothing is logged."},
            503: {"model": ErrorBody, "description": "No verified champion (the reason says why)."},
        },
    )
    async def post_decisions(request: Request) -> Response:
        try:
            parsed = parse_applications(await _read_json(request), schema, policy)
        except InvalidRequest as exc:
            return invalid(exc.problems)
        champion = holder.current  # taken once: a swap during this request does not affect it
        if champion is None:
            return unavailable()
        entries, body, flags = await run_in_threadpool(decide_and_log, champion, parsed.applications, parsed.batch)
        metrics.record_decisions(champion.version, entries, flags)
        return Response(body, media_type="application/json")

    @app.get(
        "/decisions/{receipt_id}",
        summary="The stored receipt of a decision, identical to the answer it was given with.",
        responses={200: {"model": Receipt}, 404: {"model": ErrorBody}, 422: {"model": Problems}},
    )
    async def get_decision(receipt_id: uuid.UUID) -> Response:
        receipt = await run_in_threadpool(decision_log.get, str(receipt_id))
        if receipt is None:
            return JSONResponse({"error": "unknown receipt", "reason": f"no decision has receipt {receipt_id}"}, 404)
        return JSONResponse(receipt)

    @app.post(
        "/outcomes",
        summary="Report the true outcome of a decision (stored once).",
        status_code=201,
        openapi_extra=_json_body(_ref("OutcomeReport")),
        responses={
            201: {"model": OutcomeStored},
            404: {"model": ErrorBody, "description": "Unknown receipt."},
            409: {"model": ErrorBody, "description": "The outcome was reported before."},
            422: {"model": Problems},
        },
    )
    async def post_outcome(request: Request) -> Response:
        try:
            report = parse_outcome(await _read_json(request), schema)
        except InvalidRequest as exc:
            return invalid(exc.problems)
        receipt_id = report.receipt_id.lower()
        try:
            await run_in_threadpool(decision_log.add_outcome, receipt_id, report.outcome)
        except UnknownReceiptError:
            return JSONResponse({"error": "unknown receipt", "reason": f"no decision has receipt {receipt_id}"}, 404)
        except OutcomeAlreadyRecordedError:
            reason = f"the outcome of receipt {receipt_id} was reported before; it is stored once"
            return JSONResponse({"error": "outcome already recorded", "reason": reason}, 409)
        metrics.outcomes.labels(outcome=report.outcome).inc()
        return JSONResponse({"receipt_id": receipt_id, "outcome": report.outcome, "stored": True}, status_code=201)

    @app.get("/health", summary="The process answers; which version it serves and the last champion check.")
    async def health() -> dict:
        champion = holder.current
        return {
            "status": "ok",
            "serving": champion.describe() if champion else None,
            "champion_check": holder.check,
        }

    @app.get(
        "/ready",
        summary="200 while a verified champion is served, else 503 with the reason.",
        responses={503: {"model": ErrorBody}},
    )
    async def ready() -> Response:
        champion = holder.current
        if champion is None:
            return unavailable()
        record = champion.record
        return JSONResponse(
            {
                "ready": True,
                "model": {**champion.describe(), "loaded_at": champion.loaded_at},
                "promotion": {"kind": record.kind, "decided_at": record.decided_at, "verdict": record.verdict},
                "explainer": champion.explainer.provenance,
                "outlier_detector": champion.outliers.status,
                "scoring": champion.scorer.status if champion.scorer else {"fast_path": False},
                "champion_check": holder.check,
            }
        )

    @app.get("/metrics", summary="Prometheus metrics.", response_class=Response)
    async def prometheus() -> Response:
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    def openapi() -> dict:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi
            from pydantic.json_schema import models_json_schema

            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            models = [(schema.model, "validation"), (schema.batch, "validation"), (schema.outcome, "validation")]
            models += [(m, "serialization") for m in (Receipt, DecisionBatchResult)]
            _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
            document.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi
    return app


def run(settings: ServingSettings, host: str, port: int) -> None:
    """Serve on ``host:port`` until SIGINT/SIGTERM (uvicorn's graceful stop, then the poll thread ends)."""
    import uvicorn

    from mlcomops_assets.serving.settings import default_decision_log_url, prepare_serving_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.decision_log_url == default_decision_log_url(settings.paths):
        prepare_serving_dir(settings.paths)
    app = create_app(settings)
    log.info("decision log: %s", _safe_url(settings.decision_log_url))
    # No access log: metrics count the requests; receipts and bodies stay out of the console.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info", timeout_graceful_shutdown=10)


def _safe_url(url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).render_as_string(hide_password=True)
