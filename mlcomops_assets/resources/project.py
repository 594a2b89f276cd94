"""The project resource: where everything lives and which policy governs it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from mlcomops_assets.policy import Policy, load_policy
from mlcomops_assets.settings import ProjectPaths


class ProjectResource(dg.ConfigurableResource):
    """The project home (one setting) and the validated governance policy found there."""

    home: str
    reports_url: str = "http://127.0.0.1:3001"

    @property
    def paths(self) -> ProjectPaths:
        return ProjectPaths(Path(self.home))

    def policy(self) -> Policy:
        # Read on every call, not cached: a materialization uses the policy as it is at run time,
        # and the policy fingerprint recorded with the model says which one that was.
        return load_policy(self.paths.policy_file)

    def report_link(self, path: Path) -> str:
        """The URL under which the report server shows a published file.

        Only files in the publication folder have a link: asking for one elsewhere is a programming
        error (the server would not serve it), so it raises instead of producing a dead or leaky link.
        """
        relative = path.resolve().relative_to(self.paths.published_dir.resolve())
        return f"{self.reports_url.rstrip('/')}/{relative.as_posix()}"
