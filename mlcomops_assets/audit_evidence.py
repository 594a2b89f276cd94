"""The MLflow part of a model version's audit evidence: its runs, its artifact and its verdict.

An auditor must not need the MLflow server to check what a bundle says, so each run is exported as
JSON (parameters, metrics, tags and the SHA-256 of every artifact file) and the registered artifact is
copied as it will be loaded. Kept apart from the asset so the asset only decides what goes in.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from mlcomops_assets.lib.files import file_sha256
from mlcomops_assets.lib.promotion_record import RECORD_TAG, SIGNATURE_TAG, record_of
from mlcomops_assets.registry import CHAMPION_ALIAS, download_and_hash


def export_run(client: MlflowClient, run_id: str) -> dict[str, Any]:
    """One MLflow run as plain JSON, with the hash and size of each artifact file it holds."""
    import mlflow

    run = client.get_run(run_id)
    artifacts = []
    with tempfile.TemporaryDirectory(prefix="mlcomops-audit-run-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="", dst_path=tmp))
        for file in sorted(p for p in local.rglob("*") if p.is_file()):
            artifacts.append(
                {"path": file.relative_to(local).as_posix(), "size": file.stat().st_size, "sha256": file_sha256(file)}
            )
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "status": run.info.status,
        "start_time_ms": run.info.start_time,
        "end_time_ms": run.info.end_time,
        "artifact_uri": run.info.artifact_uri,
        "params": dict(sorted(run.data.params.items())),
        "metrics": dict(sorted(run.data.metrics.items())),
        "tags": dict(sorted(run.data.tags.items())),
        "artifacts": artifacts,
    }


def version_verdict(client: MlflowClient, name: str, version: str, public_key: str) -> dict[str, Any]:
    """What the registry records about the version's promotion: the verdict text (also for a blocked
    version), its date, the waivers, whether a validly signed promotion record is attached and whether
    the version holds the champion alias now."""
    found = client.get_model_version(name, version)
    tags = found.tags or {}
    record = record_of(tags, public_key)
    return {
        "registered_model": name,
        "version": str(version),
        "run_id": found.run_id,
        "verdict": tags.get("promotion.verdict"),
        "decided_on": tags.get("promotion.decided_on"),
        "waivers": [tags[k] for k in sorted(tags) if k.startswith("waiver.")],
        "promoted": record is not None,
        "promotion_record": json.loads(tags[RECORD_TAG]) if record is not None else None,
        "promotion_signature": tags.get(SIGNATURE_TAG) if record is not None else None,
        "replaced_by": tags.get("promotion.replaced_by"),
        "champion_now": CHAMPION_ALIAS in (found.aliases or []),
        "description": found.description or "",
    }


def copy_model(client: MlflowClient, name: str, version: str, target: Path) -> tuple[Path, str]:
    """The registered artifact copied below ``target`` as it will be loaded, and its tree SHA-256 (the
    hash a promotion record signs)."""
    return download_and_hash(client, name, version, target)
