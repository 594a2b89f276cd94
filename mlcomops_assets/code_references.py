"""Code references: every asset links to the file and line of its function, at the recorded git commit.

With a GitHub or GitLab ``origin`` the reference is a link to that file and line at the checked-out
commit, so the evidence names the exact code; otherwise (no remote, a copied project, the tests'
temporary homes) it is the local path and line.
"""

from __future__ import annotations

import functools
import re
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

# The repository holding this package (not MLCOMOPS_HOME: the code lives here, the data there).
SOURCE_ROOT = Path(__file__).resolve().parent.parent
# scp-like remotes (git@host:owner/repo.git) and URLs with a scheme, user info optional.
_SCP_REMOTE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")
_URL_REMOTE = re.compile(r"^(?:https?|ssh|git)://(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?/(?P<path>.+)$")


def git_web_url(remote: str) -> str | None:
    """The browsable ``https://`` address of a GitHub or GitLab remote, or None for any other remote.

    Credentials and ports in the remote are dropped: the address ends up in asset metadata that every
    UI viewer, auditors included, can read.
    """
    match = _URL_REMOTE.match(remote.strip()) or _SCP_REMOTE.match(remote.strip())
    if not match:
        return None
    host, path = match["host"].lower(), match["path"].strip("/").removesuffix(".git")
    # Dagster builds links for these two platforms only (it infers the platform from the address).
    if not path or not ("github" in host or "gitlab" in host):
        return None
    return f"https://{host}/{path}"


def _git(root: Path, *args: str) -> str | None:
    """Output of a git command in ``root``, or None without git, outside a repository or on error."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


@functools.cache
def source_control(root: Path = SOURCE_ROOT) -> tuple[str, str] | None:
    """(web address of ``origin``, checked-out commit) of the repository at ``root``, or None.

    None when git, the repository, the remote or the commit is missing, and when ``root`` is only
    inside some other repository (a copied project in another checkout must not link to that one).
    """
    toplevel = _git(root, "rev-parse", "--show-toplevel")
    if toplevel is None or Path(toplevel).resolve() != root.resolve():
        return None
    remote = _git(root, "remote", "get-url", "origin")
    url = git_web_url(remote) if remote else None
    commit = _git(root, "rev-parse", "--verify", "HEAD")
    return (url, commit) if url and commit else None


def with_code_references(
    assets: Sequence[dg.AssetsDefinition], root: Path = SOURCE_ROOT, git: tuple[str, str] | None = None
) -> list[dg.AssetsDefinition]:
    """The assets with a code reference to the file and line of their function, in the UI's asset page.

    With a GitHub or GitLab ``origin`` (or ``git`` = (web address, commit)), each reference is a link to
    that file and line at the checked-out commit, so the evidence names the exact code; otherwise it is
    the local path and line (a checkout without remote, a copied project, the tests' temporary homes).
    """
    git = git or source_control(root)
    # Both functions are Beta in Dagster 1.13 (BetaWarning on every call); they are the documented way
    # to show code references, so their warning is silenced here and nowhere else.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        referenced = dg.with_source_code_references(assets)
        if git is not None:
            url, commit = git
            referenced = dg.link_code_references_to_git(
                referenced,
                git_url=url,
                git_branch=commit,
                # Paths in the repository are relative to its root, which is ``root`` here.
                file_path_mapping=dg.AnchorBasedFilePathMapping(
                    local_file_anchor=root, file_anchor_path_in_repository=""
                ),
            )
    return list(referenced)
