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
