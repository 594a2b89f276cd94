"""The audit on the team profile mirrors the publication folder to the object store (real services:
PostgreSQL, moto's S3 server as the stand-in for a cloud bucket, two Dask worker processes)."""

from __future__ import annotations

import dagster as dg
import pytest

from mlcomops_assets import constants as c
from mlcomops_assets.lib.publication import served_files
from mlcomops_assets.publication_mirror import PUBLISHED_PREFIX
from mlcomops_assets_tests.team_services import environment
from mlcomops_assets_tests.test_team_profile import _job, team  # noqa: F401 (the graph run on the services)

pytestmark = pytest.mark.team


def test_the_audit_mirrors_exactly_the_served_files(team):  # noqa: F811
    services, instance, graph = team
    assert graph.success
    with environment(services.env):
        audit = dg.execute_job(_job(c.AUDIT_JOB), instance=instance)
    assert audit.success
    published = services.home / "data" / "published"
    served, _ = served_files(published)
    expected = sorted(p.relative_to(published).as_posix() for p in served)
    prefix = f"team/{PUBLISHED_PREFIX}/"
    assert expected and [k.removeprefix(prefix) for k in services.s3.keys(prefix)] == expected
    assert all(services.s3.read(prefix + name) == (published / name).read_bytes() for name in expected)
    (matrix,) = [
        e.step_materialization_data.materialization
        for e in audit.get_asset_materialization_events()
        if e.step_materialization_data.materialization.asset_key == c.COMPLIANCE_MATRIX
    ]
    summary = matrix.metadata["published_mirror"].value
    assert f"{len(expected)} uploaded" in summary and "0 refused" in summary
