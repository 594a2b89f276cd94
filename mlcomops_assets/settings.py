"""Where the project lives: every path is derived from one setting, ``MLCOMOPS_HOME``.

The home holds the policy file (``governance.yaml``), the data layers under ``data/``, the MLflow
store under ``.mlflow/`` and the Dagster instance under ``.dagster_home/``. It defaults to the
repository that contains this package, never to the current working directory, because Dagster's
code server, the webserver and ``dvc repro`` all start in different directories.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV_VAR = "MLCOMOPS_HOME"
POLICY_FILE_NAME = "governance.yaml"


# The repository holding this package: its lock files and requirement list belong to the code, not
# to a project home (a test's home is a temporary folder).
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


def default_home() -> Path:
    """The project home: ``$MLCOMOPS_HOME`` if set, else the repository holding this package."""
    configured = os.environ.get(HOME_ENV_VAR)
    if configured:
        return Path(configured).expanduser().resolve()
    return REPOSITORY_ROOT


@dataclass(frozen=True)
class ProjectPaths:
    """All locations of the project, derived from its home directory."""

    home: Path

    @property
    def policy_file(self) -> Path:
        return self.home / POLICY_FILE_NAME

    @property
    def params_file(self) -> Path:
        """DVC's params file: the validated policy with every default filled in (lib/policy_params.py)."""
        return self.home / "params.yaml"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def validated_dir(self) -> Path:
        return self.data_dir / "validated"

    @property
    def prepared_dir(self) -> Path:
        return self.data_dir / "prepared"

    @property
    def validation_dir(self) -> Path:
        """The contract verdict (which bytes passed under which policy); not published."""
        return self.data_dir / "validation"

    @property
    def published_dir(self) -> Path:
        """The publication folder: aggregate evidence only (reports, Data Docs, selection report, plots).

        The report server serves this folder and nothing else, so what reaches a browser is decided by
        what is written here. Nothing row-level may be written below it (``lib.publication`` scans it).
        """
        return self.data_dir / "published"

    @property
    def audit_dir(self) -> Path:
        """One signed evidence bundle per registered model version: ``<model>/v<N>/`` and ``v<N>.zip``."""
        return self.data_dir / "audit"

    @property
    def published_audit_dir(self) -> Path:
        """The compliance matrix as published (the bundles carry their own copies)."""
        return self.published_dir / "audit"

    @property
    def requirements_file(self) -> Path:
        """The requirements the compliance matrix evaluates; kept with the code, not in a project home."""
        return REPOSITORY_ROOT / "mlcomops_assets" / "compliance" / "requirements.yaml"

    @property
    def data_docs_dir(self) -> Path:
        return self.published_dir / "data_docs"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def monitoring_dir(self) -> Path:
        return self.data_dir / "monitoring"

    @property
    def batch_reports_dir(self) -> Path:
        """Per-batch HTML evidence: published, unlike the batch data itself."""
        return self.published_dir / "batch_reports"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def selection_dir(self) -> Path:
        return self.published_dir / "selection"

    @property
    def reports_dir(self) -> Path:
        return self.published_dir / "reports"

    @property
    def explainers_dir(self) -> Path:
        """Fitted SHAP explainers: model-side objects, never published (only their plots are)."""
        return self.data_dir / "explainers"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / ".mlflow"

    @property
    def mlflow_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def dagster_home(self) -> Path:
        return self.home / ".dagster_home"

    @property
    def run_lock_file(self) -> Path:
        """The lock every writing run holds (``lib.run_lock``); its content names the holder."""
        return self.home / ".mlcomops" / "run.lock"

    def raw_file(self, suffix: str) -> Path:
        """The ingested copy of the source; one fixed name so DVC tracks a single path."""
        return self.raw_dir / f"source{suffix}"
