"""The project resource: where everything lives and which policy governs it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from mlcomops_assets.policy import Policy, load_policy
from mlcomops_assets.settings import ProjectPaths


class ProjectResource(dg.ConfigurableResource):
    """The project home (one setting) and the validated governance policy found there."""

    home: str

    @property
    def paths(self) -> ProjectPaths:
        return ProjectPaths(Path(self.home))

    def policy(self) -> Policy:
        # Read on every call, not cached: a materialization uses the policy as it is at run time,
        # and the policy fingerprint recorded with the model says which one that was.
        return load_policy(self.paths.policy_file)
