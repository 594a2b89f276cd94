"""A thin MLflow resource: one MLflow run per asset materialization, always closed.

dagster-mlflow is not used: it is a legacy beta resource that leaves MLflow runs RUNNING unless a hook
runs on the last step of the job, which is not true for UI, CLI, sensor or test materializations of a
subset. Here the run is a context manager, so it ends FINISHED or FAILED however the asset was launched.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import dagster as dg

if TYPE_CHECKING:
    import mlflow
    from mlflow.tracking import MlflowClient


# MLflow 3's UI opens in its GenAI view: the view comes from the URL's `workflowType` parameter, else
# from the browser's last choice, "genai" by default, and an experiment opened there lands on an empty
# Traces or Overview page. Links therefore name the machine-learning view (and the Runs tab). Checked in
# headless Chromium against MLflow 3.17.2: an `mlflow.experimentKind` experiment tag does not change the
# view there, the URL parameter does.
CLASSIC_ML_VIEW = "workflowType=machine_learning"


# Models loaded in this process, by (tracking URI, model URI, artifact tree SHA-256). The in-process
# executor runs every step of a run in one process, where the selection report, registration,
# evaluation, fairness and SHAP each load the same model; a changed artifact or another version has
# another key, so it is a miss. A few entries: a run needs the candidates and the registered version.
_LOADED: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
_LOADED_MAX = 8


def seed_store(db: Path, cache: Path | None = None) -> bool:
    """Start a new store as a copy of an empty one made by this very MLflow version; True if seeded.

    Creating a SQLite store runs MLflow's ~50 schema migrations, each committed: about 2 s of CPU and 5 s
    of wall time here, the same for every new project home. The empty store is made once per MLflow
    version, by MLflow itself, in the user's cache (``$XDG_CACHE_HOME/mlcomops``), holding the schema and
    no experiment: MLflow adds its Default experiment on first use, as it does in a store it created."""
    import os
    import shutil
    import sqlite3
    import tempfile
    from contextlib import closing
    from importlib.metadata import version

    if db.exists():
        return False
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlcomops"
    template = cache / f"mlflow-{version('mlflow')}-empty.db"
    if not template.is_file():
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            fresh = Path(tmp) / "empty.db"
            SqlAlchemyStore(f"sqlite:///{fresh}", str(Path(tmp) / "artifacts")).engine.dispose()
            with closing(sqlite3.connect(fresh)) as conn:
                conn.execute("DELETE FROM experiments")  # its location names this temporary folder
                conn.commit()
            os.replace(fresh, template)  # atomic: a concurrent maker's copy is as good
    db.parent.mkdir(parents=True, exist_ok=True)
    staged = db.with_name(f".{db.name}.{os.getpid()}.seed")
    shutil.copyfile(template, staged)
    try:
        os.link(staged, db)  # never over a store another process created meanwhile
    except FileExistsError:
        return False
    finally:
        staged.unlink()
    return True


class MlflowSession(dg.ConfigurableResource):
    """MLflow tracking and registry with a pinned artifact location: SQLite and a local folder (local
    profile) or PostgreSQL and object storage (team profile; ``profile.Profile.mlflow``)."""

    tracking_uri: str
    artifact_root: str
    # The S3-compatible server holding the artifacts (team profile); credentials come from AWS_*.
    s3_endpoint_url: str | None = None
    ui_url: str = "http://127.0.0.1:5000"

    def _activate(self) -> None:
        from mlcomops_assets.profile import MlflowLocations, activate_mlflow

        # A copied or moved project must log into its own artifact folder, not the one its store
        # was created in: MLflow keeps absolute locations (lib.mlflow_store says why and how).
        locations = MlflowLocations(self.tracking_uri, self.artifact_root, self.s3_endpoint_url)
        activate_mlflow(locations)
        if locations.is_sqlite:
            from mlcomops_assets.lib.mlflow_store import database_path

            # After the rehoming, as when MLflow creates the store: the next activation aligns it.
            seed_store(database_path(self.tracking_uri))

    def client(self) -> MlflowClient:
        from mlflow.tracking import MlflowClient

        self._activate()
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """The experiment's id, created with an explicit artifact location (never the CWD default)."""
        client = self.client()
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = f"{self.artifact_root.rstrip('/')}/{name}"
        return client.create_experiment(name, artifact_location=location)

    @contextmanager
    def start_run(self, experiment: str, run_name: str, tags: dict[str, str]) -> Iterator[mlflow.ActiveRun]:
        """Open a run; it ends FINISHED on success and FAILED on any exception, which is re-raised."""
        import mlflow

        experiment_id = self.experiment_id(experiment)
        # A run left open by a crashed step in this process must not swallow ours.
        while mlflow.active_run() is not None:
            mlflow.end_run("KILLED")
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags)
        try:
            yield run
        except BaseException:
            mlflow.end_run("FAILED")
            raise
        mlflow.end_run("FINISHED")

    def experiment_url(self, experiment_id: str) -> str:
        """The experiment's Runs tab in the MLflow UI's machine-learning view."""
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs?{CLASSIC_ML_VIEW}"

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The run's page in the MLflow UI's machine-learning view."""
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}?{CLASSIC_ML_VIEW}"

    def model_version_url(self, name: str, version: str | int) -> str:
        """The registered model version's page in the MLflow UI's machine-learning view."""
        return f"{self.ui_url}/#/models/{quote(name, safe='')}/versions/{version}?{CLASSIC_ML_VIEW}"

    def load_model(self, model_uri: str, expected_sha256: str | None = None):
        """Load the exact model named by ``model_uri`` (``models:/<name>/<version>`` or a logged model);
        with ``expected_sha256``, only if its artifact still has that tree SHA-256 (``load_model_with_hash``)."""
        return self.load_model_with_hash(model_uri, expected_sha256)[0]

    def load_model_with_hash(self, model_uri: str, expected_sha256: str | None = None) -> tuple[Any, str]:
        """The model at ``model_uri`` and its artifact's tree SHA-256 (as the promotion record signs it).

        The artifact is downloaded into a private folder and hashed there on every call, so the hash is
        that of the bytes in the store now; another hash than ``expected_sha256`` raises
        ``ChampionIntegrityError``. The model is deserialized from those bytes once per process and hash:
        a later call for the same URI and the same bytes returns the model already loaded."""
        import tempfile

        import mlflow

        from mlcomops_assets.lib.promotion_record import ChampionIntegrityError, tree_sha256

        self._activate()
        with tempfile.TemporaryDirectory(prefix="mlcomops-load-") as tmp:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
            digest = tree_sha256(local)
            if expected_sha256 is not None and digest != expected_sha256:
                raise ChampionIntegrityError(
                    f"{model_uri}: the model artifact's SHA-256 is {digest[:12]}..., not the {expected_sha256[:12]}... "
                    "recorded when it was registered: it changed since; evidence is only made of the registered bytes"
                )
            key = (self.tracking_uri, model_uri, digest)
            if key in _LOADED:
                _LOADED.move_to_end(key)
                return _LOADED[key], digest
            model = mlflow.sklearn.load_model(str(local))
        _LOADED[key] = model
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)
        return model, digest

    def signing_key(self, create: bool = False):
        """The promotion signing key (outside the repository); only promotion may ``create`` it."""
        from mlcomops_assets.lib.promotion_record import default_key_file, load_private_key

        return load_private_key(default_key_file(), create=create)

    def verified_champion(self, name: str):
        """The champion as the pipeline promoted it (``registry.verified_champion``), or
        ``ChampionIntegrityError`` naming the version and what failed."""
        from mlcomops_assets.lib.promotion_record import public_key_hex
        from mlcomops_assets.registry import verified_champion

        self._activate()
        return verified_champion(self.client(), name, public_key_hex(self.signing_key()))

    def verified_version(self, name: str, version: str):
        """A promoted version with its record and artifact checked (``registry.load_verified``)."""
        from mlcomops_assets.lib.promotion_record import public_key_hex
        from mlcomops_assets.registry import load_verified

        self._activate()
        return load_verified(self.client(), name, str(version), public_key_hex(self.signing_key()))

    def log_evidence(self, run_id: str, metrics: dict[str, float], artifacts: dict[str, object]) -> None:
        """Attach metrics and JSON artifacts to an existing (finished) run without reopening it."""
        client = self.client()
        for key, value in metrics.items():
            client.log_metric(run_id, key, float(value))
        for path, payload in artifacts.items():
            client.log_dict(run_id, payload, path)

    # Writes the assets make, so no asset calls mlflow itself: every write goes through this session.

    def log_to_active_run(
        self,
        params: dict[str, object],
        metrics: dict[str, float],
        documents: dict[str, object],
        tags: dict[str, str],
    ) -> None:
        """Params, metrics, JSON documents (by artifact path) and tags on the run opened by ``start_run``."""
        import mlflow

        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        for path, payload in documents.items():
            mlflow.log_dict(payload, path)
        mlflow.set_tags(tags)

    def log_model_to_active_run(self, model, inputs, outputs, trusted_types: list[str]) -> str:
        """Log a fitted scikit-learn pipeline to the run opened by ``start_run``; returns its model URI.

        Saved with skops trusting only ``trusted_types``, with a signature inferred from ``inputs`` and
        ``outputs`` and exact pip requirements. No input example: it would copy rows of personal data
        into the model artifact."""
        import mlflow
        from mlflow.models import infer_signature

        from mlcomops_assets.lib.model_registry import pip_requirements

        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(inputs, outputs),
            skops_trusted_types=trusted_types,
            pip_requirements=pip_requirements(),
        )
        return info.model_uri

    def record_run(self, experiment: str, run_name: str, tags: dict[str, str], params: dict[str, object]) -> str:
        """A finished run holding only ``params`` and ``tags`` (evidence is attached with ``log_evidence``)."""
        import mlflow

        with self.start_run(experiment, run_name, tags) as run:
            mlflow.log_params(params)
            return run.info.run_id

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Tags on an existing (finished) run, without reopening it."""
        client = self.client()
        for key, value in tags.items():
            client.set_tag(run_id, key, value)

    def register_model(self, model_uri: str, name: str) -> str:
        """Register the logged model at ``model_uri`` as a new version of ``name``; returns the version."""
        import mlflow

        self._activate()
        return str(mlflow.register_model(model_uri, name).version)

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None when the alias (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client().get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None
