"""Settings of the scoring service: host and port, the decision log's URL, the keys it needs.

Everything is derived from the project home (``ProjectPaths``) and the policy; the decision log lives at
``data/serving/decisions.db`` unless ``--decision-log`` or ``$MLCOMOPS_DECISION_LOG_URL`` names another
SQLAlchemy URL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlcomops_assets.settings import ProjectPaths, default_home

if TYPE_CHECKING:
    from mlcomops_assets.policy import Policy

DECISION_LOG_ENV = "MLCOMOPS_DECISION_LOG_URL"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# The project rule: every server binds to the loopback interface only (docs/security.md).
ALLOWED_HOSTS = ("127.0.0.1",)
# Largest request body and batch the service accepts: 10,000 applications (about 1 MB of JSON for the
# default policy's columns; 8 MiB leaves room for longer text fields and identifiers). A batch of that
# size is decided and logged in about a second (docs/performance.md).
MAX_BODY_BYTES = 8 * 1_048_576
MAX_BATCH = 10_000


class ServingConfigError(ValueError):
    """The service cannot start as configured; the message says what to change."""


def check_host(host: str) -> None:
    """Refuse any interface but the loopback one: put a reverse proxy in front for anything else."""
    if host not in ALLOWED_HOSTS:
        raise ServingConfigError(
            f"--host {host}: the scoring service binds to 127.0.0.1 only (every server of the project does); "
            "reach it from elsewhere through a reverse proxy with TLS and a login (docs/security.md)"
        )


def serving_dir(paths: ProjectPaths) -> Path:
    """Where the service keeps its state: the decision log (personal data: never published)."""
    return paths.data_dir / "serving"


def prepare_serving_dir(paths: ProjectPaths) -> Path:
    """Create ``data/serving/`` for the owner only, with a ``.gitignore`` that keeps the decision log (personal
    data) out of git; DVC does not track the folder either."""
    folder = serving_dir(paths)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# The scoring service's decision log holds personal data: never in git.\n*\n")
    return folder


def default_decision_log_url(paths: ProjectPaths) -> str:
    return f"sqlite:///{serving_dir(paths) / 'decisions.db'}"


def decision_log_url(paths: ProjectPaths, override: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``override`` (``--decision-log``), else ``$MLCOMOPS_DECISION_LOG_URL``, else the project's SQLite file."""
    env = os.environ if environ is None else environ
    url = override or env.get(DECISION_LOG_ENV) or default_decision_log_url(paths)
    import sqlalchemy as sa

    try:
        sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ServingConfigError(f"the decision log URL is not a SQLAlchemy URL: {exc}") from None
    return url


@dataclass(frozen=True)
class ServingSettings:
    """Everything the service is started with."""

    paths: ProjectPaths
    policy: Policy
    decision_log_url: str
    input_key: bytes  # the pseudonym key: identifiers' pseudonyms and the decision log's keyed input hashes
    poll_seconds: float

    @classmethod
    def from_home(
        cls,
        home: Path | None = None,
        decision_log: str | None = None,
        poll_seconds: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ServingSettings:
        """Load the policy and the pseudonym key of ``home`` (default: ``$MLCOMOPS_HOME``). A policy error is
        raised as ``PolicyError``; a missing key or bad URL as ``ServingConfigError``."""
        from mlcomops_assets.lib.pseudonyms import PseudonymKeyError, load_key
        from mlcomops_assets.policy import load_policy

        paths = ProjectPaths(home or default_home())
        policy = load_policy(paths.policy_file)
        try:
            key = load_key(policy.pseudonymization, environ)
        except PseudonymKeyError as exc:
            raise ServingConfigError(
                f"{exc}. The scoring service needs it to pseudonymize identifiers and to key the hash of every "
                "decision's inputs in the decision log"
            ) from None
        if poll_seconds is not None and poll_seconds <= 0:
            raise ServingConfigError(f"--poll-seconds must be positive, got {poll_seconds}")
        return cls(
            paths=paths,
            policy=policy,
            decision_log_url=decision_log_url(paths, decision_log, environ),
            input_key=key,
            poll_seconds=poll_seconds if poll_seconds is not None else policy.serving.poll_seconds,
        )
