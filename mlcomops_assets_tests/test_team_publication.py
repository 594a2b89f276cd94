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


def test_the_team_audit_bundle_holds_the_evidence_kept_in_the_object_store(team):  # noqa: F811
    """The reports and data layers the IO manager keeps in the bucket reach the bundle: nothing is listed
    as never written, the data version names all four layers, and the bundle verifies."""
    import json

    from mlcomops_assets.lib import audit_bundle as ab

    services, instance, graph = team
    with environment(services.env):
        assert dg.execute_job(_job(c.AUDIT_JOB), instance=instance).success
    (model_dir,) = [p for p in (services.home / "data" / "audit").iterdir() if p.is_dir()]
    (number, folder), *_ = sorted(ab.version_dirs(model_dir), reverse=True)
    manifest = json.loads((folder / ab.MANIFEST).read_text())
    assert not [m for m in manifest["meta"]["missing_evidence"] if "never written" in m], manifest["meta"]
    names = {item["name"] for item in manifest["items"]}
    assert {"model_evaluation.json", "fairness_report.json", "shap_explainer.json", "trained_model.json"} <= names
    sources = {item["name"]: item["source"] for item in manifest["items"]}
    assert sources["model_evaluation.json"].startswith("s3://")
    data_version = json.loads((folder / "items" / "data_version" / "data_version.json").read_text())
    assert len(data_version["layers"]) == 4 and all(v["rows"] > 0 for v in data_version["layers"].values())
    assert ab.verify_chain(model_dir).ok
