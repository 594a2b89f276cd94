"""The champion cannot be moved past the gates: a hand-set alias, a hand-made rollback, a forged or
copied record and a changed artifact byte are each refused by scoring and monitoring, with a message
naming the version and what failed; the pipeline's own promotion and the restore command work."""

import json
from pathlib import Path

import pytest

from mlcomops_assets import constants as c
from mlcomops_assets.champion import restore, verify
from mlcomops_assets.lib.promotion_record import RECORD_TAG, SIGNATURE_TAG, ChampionIntegrityError, verify_signature
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.conftest import materialize, monitor_batch, write_home

pytestmark = pytest.mark.e2e

NAME = "arrests_release_model"


def _client(paths: ProjectPaths):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(paths.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=paths.mlflow_tracking_uri, registry_uri=paths.mlflow_tracking_uri)


def _scoring_failure(home, batch: str) -> str:
    """Score and monitor one batch; return the failure description ('' when it succeeded). A refused
    champion must leave the batch unscored: no prediction is materialized in that run."""
    with monitor_batch(home, batch) as (result, _):
        if result.success:
            return ""
        scored = [e for e in result.get_asset_materialization_events() if e.asset_key == c.BATCH_PREDICTIONS]
        failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert failures and not scored
        data = failures[0].step_failure_data
        return (data.user_failure_data.description if data.user_failure_data else None) or str(data.error)


@pytest.fixture(scope="module")
def promoted_home(tmp_path_factory):
    """The whole graph twice: v1 promoted, then v2 retrained and promoted by the pipeline."""
    home = write_home(tmp_path_factory.mktemp("integrity"))
    for _ in range(2):
        with materialize(home) as (result, _):
            assert result.success
    client = _client(ProjectPaths(home))
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "2"
    return home


def test_the_pipelines_promotion_is_signed_and_used(promoted_home):
    paths = ProjectPaths(promoted_home)
    tags = _client(paths).get_model_version(NAME, "2").tags
    record = verify_signature(tags[RECORD_TAG], tags[SIGNATURE_TAG], json.loads(tags[RECORD_TAG])["public_key"])
    assert (record.version, record.previous_champion, record.kind) == ("2", "1", "promotion")
    assert len(record.artifact_sha256) == 64 and "data/published/reports/fairness_report.json" in record.evidence_sha256
    published = json.loads((paths.published_dir / "promotion" / f"{NAME}-v2.json").read_text())
    assert published["signature"] == tags[SIGNATURE_TAG]
    assert verify(paths).startswith(f"{NAME} v2: signed promotion record")
    assert _scoring_failure(promoted_home, "2001") == ""


def test_an_alias_set_by_hand_stops_scoring(promoted_home):
    paths = ProjectPaths(promoted_home)
    client = _client(paths)
    v2 = client.get_model_version(NAME, "2")
    unvetted = client.create_model_version(NAME, source=v2.source, run_id=v2.run_id)  # never judged by a gate
    # Loading it through models:/ makes MLflow rewrite a bookkeeping file in the folder it shares with
    # v2: that must not count as a change of v2's artifact.
    import mlflow

    mlflow.sklearn.load_model(f"models:/{NAME}/{unvetted.version}")
    client.set_registered_model_alias(NAME, "champion", unvetted.version)
    try:
        message = _scoring_failure(promoted_home, "2002")
        assert f"v{unvetted.version} carries no signed promotion record" in message
        assert "restore --version 2" in message
        with pytest.raises(ChampionIntegrityError, match=f"v{unvetted.version}"):
            verify(paths)
    finally:
        client.set_registered_model_alias(NAME, "champion", "2")
    assert _scoring_failure(promoted_home, "2002") == ""


def test_a_copied_or_edited_record_is_refused(promoted_home):
    client = _client(ProjectPaths(promoted_home))
    tags = client.get_model_version(NAME, "2").tags
    v2 = client.get_model_version(NAME, "2")
    copy = client.create_model_version(NAME, source=v2.source, run_id=v2.run_id)
    client.set_model_version_tag(NAME, copy.version, RECORD_TAG, tags[RECORD_TAG])
    client.set_model_version_tag(NAME, copy.version, SIGNATURE_TAG, tags[SIGNATURE_TAG])
    client.set_registered_model_alias(NAME, "champion", copy.version)
    try:
        assert f"carries the promotion record of {NAME} v2" in _scoring_failure(promoted_home, "2001")
        edited = tags[RECORD_TAG].replace('"version":"2"', f'"version":"{copy.version}"')
        client.set_model_version_tag(NAME, copy.version, RECORD_TAG, edited)
        assert "signature does not verify" in _scoring_failure(promoted_home, "2001")
    finally:
        client.set_registered_model_alias(NAME, "champion", "2")


def test_a_hand_made_rollback_is_refused_and_restore_works(promoted_home):
    paths = ProjectPaths(promoted_home)
    client = _client(paths)
    client.set_registered_model_alias(NAME, "champion", "1")  # promoted once, but not the last promotion
    message = _scoring_failure(promoted_home, "2001")
    assert "points at v1, but the pipeline's last promotion" in message and "made v2 champion" in message
    record = restore(paths, "1", "v2 misbehaves in production", who="tester")
    assert (record.kind, record.previous_champion, record.extra["original_verdict"][:8]) == ("restore", "1", "promoted")
    assert _scoring_failure(promoted_home, "2001") == ""
    assert verify(paths).startswith(f"{NAME} v1: signed restore record")
    with pytest.raises(ChampionIntegrityError, match="no signed promotion record"):
        v2 = client.get_model_version(NAME, "2")
        never = client.create_model_version(NAME, source=v2.source, run_id=v2.run_id)
        restore(paths, never.version, "try to restore a version no gate judged")
    restore(paths, "2", "back to the retrained version", who="tester")
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "2"


def test_one_flipped_byte_of_the_artifact_stops_scoring(promoted_home):
    paths = ProjectPaths(promoted_home)
    client = _client(paths)
    folder = paths.home / client.get_model_version_download_uri(NAME, "2").split(str(paths.home) + "/", 1)[1]
    target = max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    original = target.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    target.write_bytes(bytes(flipped))
    try:
        message = _scoring_failure(promoted_home, "2002")
        assert f"{NAME} v2: the model artifact changed since promotion" in message
    finally:
        target.write_bytes(original)
    assert _scoring_failure(promoted_home, "2002") == ""


def test_a_swapped_artifact_is_refused(promoted_home):
    """Another model's valid file in place of the champion's (the gradient-boosting candidate's skops
    file over the chosen logistic regression's): a loadable model, but not the promoted one."""
    import mlflow

    paths = ProjectPaths(promoted_home)
    client = _client(paths)
    candidates = json.loads((paths.models_dir / "model_candidates.json").read_text())["candidates"]
    other = next(c for c in candidates if c["name"] == "gradient_boosting")
    other_dir = Path(mlflow.artifacts.download_artifacts(other["model_uri"], tracking_uri=paths.mlflow_tracking_uri))
    champion_dir = Path(client.get_model_version_download_uri(NAME, "2"))
    target = champion_dir / "model.skops"
    original = target.read_bytes()
    assert (other_dir / "model.skops").read_bytes() != original
    target.write_bytes((other_dir / "model.skops").read_bytes())
    try:
        assert f"{NAME} v2: the model artifact changed since promotion" in _scoring_failure(promoted_home, "2002")
    finally:
        target.write_bytes(original)
    assert _scoring_failure(promoted_home, "2002") == ""
