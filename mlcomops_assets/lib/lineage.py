"""Code provenance: which commit of this repository produced an artefact."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(repo: Path) -> str:
    """The HEAD commit, suffixed ``-dirty`` when tracked files differ; ``unknown`` outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def registration_mismatches(
    selection: dict, candidates: dict, mlflow_run_tags: dict[str, str], latest_candidates_run: str | None
) -> list[str]:
    """Why the chosen candidate may not be registered as the selection report's choice; [] if it may.

    The model must come from the one ``model_candidates`` materialization the selection report was
    made for: the report names that Dagster run, the candidates record loaded here must be its output
    and the latest one recorded, and the chosen MLflow run must have been opened by it. Two runs that
    overwrote each other's files (or a stale file) otherwise mix one run's model with another's record.
    """
    named = selection.get("candidates_run_id")
    produced = candidates.get("dagster_run_id")
    problems = []
    if not named or not produced:
        problems.append("the selection report or the candidates record names no producing Dagster run")
    elif named != produced:
        problems.append(f"the selection report was made for candidates of run {named}, these are of run {produced}")
    if produced and latest_candidates_run and produced != latest_candidates_run:
        problems.append(
            f"the candidates record is of run {produced}, the latest materialization is of run {latest_candidates_run}"
        )
    owner = mlflow_run_tags.get("dagster.run_id")
    if produced and owner != produced:
        problems.append(f"the chosen MLflow run was opened by Dagster run {owner}, not {produced}")
    return problems
