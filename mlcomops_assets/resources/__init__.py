"""Dagster resources: the project (paths and policy) and the MLflow session."""

from mlcomops_assets.resources.mlflow_session import MlflowSession
from mlcomops_assets.resources.project import ProjectResource

__all__ = ["MlflowSession", "ProjectResource"]
