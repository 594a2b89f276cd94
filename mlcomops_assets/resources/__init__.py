"""Dagster resources: the project (paths and policy), the MLflow session and the evidence catalog."""

from mlcomops_assets.resources.evidence_catalog import EvidenceCatalog
from mlcomops_assets.resources.mlflow_session import MlflowSession
from mlcomops_assets.resources.project import ProjectResource

__all__ = ["EvidenceCatalog", "MlflowSession", "ProjectResource"]
