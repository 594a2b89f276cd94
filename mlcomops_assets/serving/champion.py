"""The champion the service decides with, and its replacement without downtime.

A background thread looks at the registry's ``champion`` alias every ``poll_seconds``. When it names
another version, that version is loaded and verified *completely* before anything changes: the
pipeline's signed promotion record and the artifact's SHA-256 (``registry.verified_champion``, the same
check as batch scoring), the explainer rebuilt and checked against the signed evidence, the outlier
watch refitted, and one application scored and explained. Only then is one reference swapped; a request
takes the reference once, so requests in flight finish with the version they started with and none is
dropped.

A version that fails any step is never served: the last good champion keeps serving, the refusal is
reported in ``/ready`` and ``/health`` (``champion_check``) and counted in
``mlcomops_model_reloads_total{result="failure"}``, and ``mlcomops_champion_refused`` is 1 until the alias
points at a version that verifies. Without any verified champion, ``/ready`` and decisions answer 503
with the reason. While the alias keeps naming the version being served nothing is reloaded: the bytes
that were verified are the ones in memory.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlcomops_assets.lib.promotion_record import ChampionIntegrityError, PromotionRecord

if TYPE_CHECKING:
    from mlcomops_assets.serving.explanations import ServedExplainer
    from mlcomops_assets.serving.fastpath import Scorer
    from mlcomops_assets.serving.metrics import ServiceMetrics
    from mlcomops_assets.serving.outliers import OutlierWatch
    from mlcomops_assets.serving.settings import ServingSettings

log = logging.getLogger("mlcomops_assets.serving")


@dataclass(frozen=True)
class Champion:
    """A verified model version with everything needed to decide and explain."""

    name: str
    version: str
    artifact_sha256: str
    record: PromotionRecord
    model: Any
    explainer: ServedExplainer
    outliers: OutlierWatch
    loaded_at: str
    scorer: Scorer | None = None  # the checked fast path (None: the pipeline itself)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "artifact_sha256": self.artifact_sha256}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def mlflow_client(settings: ServingSettings):
    """The project's MLflow registry, as the pipeline opens it (``resources/mlflow_session.py``) but
    without Dagster; a missing store is an integrity error (nothing was ever promoted), never created."""
    from mlcomops_assets.lib.mlflow_store import database_path
    from mlcomops_assets.profile import mlflow_client, mlflow_locations

    paths = settings.paths
    locations = mlflow_locations(paths)  # the profile's store (a team's is on PostgreSQL)
    if locations.is_sqlite:
        db = database_path(locations.tracking_uri)
        if not db.is_file():
            raise ChampionIntegrityError(f"no MLflow store at {db}: no model was ever trained here (run `make run`)")
    return mlflow_client(paths)  # a copied project reads its own artifacts (profile.activate_mlflow)


def promotion_public_key() -> str:
    """The public half of the project's promotion signing key (``$MLCOMOPS_SIGNING_KEY_FILE``)."""
    from mlcomops_assets.lib.promotion_record import default_key_file, load_private_key, public_key_hex

    return public_key_hex(load_private_key(default_key_file()))


def load_champion(client, settings: ServingSettings, public_key: str) -> Champion:
    """Load, verify and try out the current champion; ``ChampionIntegrityError`` (or any error of the
    trial) when it must not be served."""
    from mlcomops_assets.lib.modeling import positive_scores
    from mlcomops_assets.registry import verified_champion
    from mlcomops_assets.serving.explanations import attributions, rebuild_explainer
    from mlcomops_assets.serving.fastpath import build_scorer, verification_rows
    from mlcomops_assets.serving.outliers import build_outlier_watch
    from mlcomops_assets.serving.scoring import application_frame, warm_up_row

    policy = settings.policy
    verified = verified_champion(client, policy.model.registered_name, public_key)
    explainer = rebuild_explainer(verified.model, settings.paths, policy, verified.record)
    outliers = build_outlier_watch(settings.paths, policy)
    champion = Champion(
        name=verified.name,
        version=verified.version,
        artifact_sha256=verified.record.artifact_sha256,
        record=verified.record,
        model=verified.model,
        explainer=explainer,
        outliers=outliers,
        loaded_at=_now(),
    )
    trial = application_frame([warm_up_row(policy)], policy)
    positive_scores(champion.model, trial, policy)
    attributions(explainer, champion.model, trial, policy)  # raises if not faithful
    outliers.flags(trial, policy)
    rows = verification_rows(policy, _sample(settings))
    scorer = build_scorer(champion.model, explainer, outliers, policy, rows)
    if not scorer.status.get("fast_path"):
        log.warning("%s v%s: the fast path is off (%s)", champion.name, champion.version, scorer.status.get("reason"))
    return dataclasses.replace(champion, scorer=scorer)


def _sample(settings: ServingSettings):
    """Real rows to check the fast path on: the holdout (else the training reference), if present."""
    from mlcomops_assets.io_manager import read_parquet, stored_value

    for name in ("holdout_data", "training_data"):
        path = stored_value(settings.paths.home, name, ".parquet")  # data/, or the team's object store
        if path.is_file():
            return read_parquet(path).head(500)
    return None


def _settle_memory() -> None:
    """After a swap: collect what the previous champion left, then freeze every object that is left (the
    libraries, the champion) out of the garbage collector's scans, so a large batch does not pay for
    walking them again and again. Frozen objects are still freed by reference counting."""
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ChampionHolder:
    """The champion being served (``current``), replaced atomically by ``refresh``."""

    def __init__(
        self,
        settings: ServingSettings,
        metrics: ServiceMetrics,
        housekeeping: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._housekeeping = housekeeping
        self._current: Champion | None = None
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = None
        self._public_key: str | None = None
        self._last_failure: tuple[str | None, str] | None = None
        self.check: dict = {"ok": None, "checked_at": None, "alias_version": None, "refused": None}

    @property
    def current(self) -> Champion | None:
        return self._current

    def _connect(self):
        if self._client is None:
            self._client = mlflow_client(self._settings)
        if self._public_key is None:
            self._public_key = promotion_public_key()
        return self._client, self._public_key

    def _alias_version(self, client) -> str | None:
        from mlflow.exceptions import MlflowException

        from mlcomops_assets.registry import CHAMPION_ALIAS

        try:
            return str(
                client.get_model_version_by_alias(self._settings.policy.model.registered_name, CHAMPION_ALIAS).version
            )
        except MlflowException:
            return None

    def refresh(self) -> None:
        """Look at the alias once; load, verify and swap in a new champion, or record why not."""
        with self._refresh_lock:
            name = self._settings.policy.model.registered_name
            try:
                client, public_key = self._connect()
                alias = self._alias_version(client)
            except ChampionIntegrityError as exc:
                self._failed(None, str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - the registry is unreachable: keep serving, report it
                self._failed(None, f"the registry could not be read: {type(exc).__name__}: {exc}")
                return
            current = self._current
            if alias is None:
                self._failed(None, f"{name} has no champion: nothing was promoted, or the alias was removed")
                return
            if current is not None and alias == current.version:
                self._succeeded(alias)
                return
            try:
                loaded = load_champion(client, self._settings, public_key)
            except ChampionIntegrityError as exc:
                self._failed(alias, str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - a version that cannot be tried out is not served
                self._failed(alias, f"{name} v{alias} could not be loaded and tried out: {type(exc).__name__}: {exc}")
                return
            self._current = loaded  # the swap: one reference; requests in flight keep the one they took
            _settle_memory()
            self._metrics.reloads.labels(result="success").inc()
            self._metrics.serving(loaded.name, loaded.version, loaded.artifact_sha256)
            previous = f"v{current.version}" if current is not None else "nothing"
            log.info("now serving %s v%s (was %s)", loaded.name, loaded.version, previous)
            self._succeeded(loaded.version)

    def _succeeded(self, alias: str) -> None:
        self._last_failure = None
        self._metrics.refused.set(0)
        self.check = {"ok": True, "checked_at": _now(), "alias_version": alias, "refused": None}

    def _failed(self, version: str | None, reason: str) -> None:
        since = self.check.get("refused", {}) or {}
        if self._last_failure != (version, reason):  # counted and logged once per version and reason
            self._metrics.reloads.labels(result="failure").inc()
            serving = f"; still serving v{self._current.version}" if self._current else "; nothing is served"
            log.warning("champion refused: %s%s", reason, serving)
            since = {}
        self._last_failure = (version, reason)
        self._metrics.refused.set(1)
        self.check = {
            "ok": False,
            "checked_at": _now(),
            "alias_version": version,
            "refused": {"version": version, "reason": reason, "since": since.get("since") or _now()},
        }

    # --- the polling thread ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="champion-poll", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            if self._housekeeping is not None:
                try:
                    self._housekeeping()
                except Exception:  # noqa: BLE001 - housekeeping must never stop the champion checks
                    log.exception("decision log housekeeping failed")
            self._stop.wait(self._settings.poll_seconds)
