"""A copied project runs on its own stores and never writes into the original (issue 11, item 5).

The original is the session's ``default_run`` home (the whole graph ran there). It is copied with
its Dagster instance and MLflow store, the graph runs again in the copy, and the original's tree
(every file's path, size, mtime and SHA-256) must be exactly as before. As root, a read-only
``chmod`` would not stop a write, so the snapshot is the proof.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from mlcomops_assets.lib.mlflow_store import (
    MARKER_NAME,
    database_path,
    foreign_locations,
    recorded_root,
    rehome_store,
    relocated,
)
from mlcomops_assets.policy import load_policy
from mlcomops_assets.resources import MlflowSession
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.conftest import materialize


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root`` (hidden stores included): size, mtime in ns and SHA-256."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns, digest)
    return out


def _runs(db: Path) -> dict[str, str]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return dict(conn.execute("SELECT run_uuid, artifact_uri FROM runs"))


def _session(paths: ProjectPaths) -> MlflowSession:
    return MlflowSession(tracking_uri=paths.mlflow_tracking_uri, artifact_root=str(paths.mlflow_artifact_root))


def test_a_copied_project_runs_on_its_own_stores(default_run, tmp_path):
    original, first, _ = default_run
    assert first.success
    source = ProjectPaths(original)
    assert (source.mlflow_dir / MARKER_NAME).is_file(), "the session records which home its store belongs to"
    copy = ProjectPaths(tmp_path / "moved")
    shutil.copytree(original, copy.home, symlinks=True)
    assert (copy.dagster_home).is_dir() and (copy.mlflow_dir / "mlflow.db").is_file()
    # Before anything runs, the copied store still points into the original: the bug being fixed.
    assert foreign_locations(database_path(copy.mlflow_tracking_uri), copy.mlflow_artifact_root)
    old_runs = _runs(database_path(copy.mlflow_tracking_uri))
    before = _snapshot(original)

    with materialize(copy.home) as (result, _):
        assert result.success, [e.event_specific_data.error.message for e in result.get_step_failure_events()]

    assert _snapshot(original) == before, "the copy wrote into the original project"
    db = database_path(copy.mlflow_tracking_uri)
    assert foreign_locations(db, copy.mlflow_artifact_root) == []
    assert recorded_root(db) == str(copy.mlflow_artifact_root)
    new_runs = {k: v for k, v in _runs(db).items() if k not in old_runs}
    assert new_runs, "the copy's run logged no MLflow runs"
    for uri in new_runs.values():
        assert uri.startswith(str(copy.mlflow_artifact_root) + "/"), uri
    assert any(Path(uri).is_dir() for uri in new_runs.values()), "no run wrote its artifacts under the copy"

    # The copy's champion is a version registered by the copy's run, stored under the copy, and it
    # passes the same verification every consumer runs (signed record + artifact hash).
    name = load_policy(copy.policy_file).model.registered_name
    champion = _session(copy).verified_champion(name)
    client = _session(copy).client()
    assert client.get_model_version(name, champion.version).run_id in new_runs
    location = client.get_model_version_download_uri(name, champion.version)
    assert location.startswith(str(copy.mlflow_artifact_root) + "/"), location
    assert Path(location).is_dir()


def test_relocation_rewrites_only_local_paths_outside_the_root():
    root = "/new/home/.mlflow/artifacts"
    moved = relocated("/old/home/.mlflow/artifacts/exp/run1/artifacts", root, root + "/x")
    assert moved == root + "/exp/run1/artifacts"
    assert relocated("file:///old/.mlflow/artifacts/exp", root, "-") == "file://" + root + "/exp"
    assert relocated("/old/cwd/mlruns/0", root, root + "/0") == root + "/0"  # MLflow's Default experiment
    assert relocated(root + "/exp/run1", root, "-") is None  # already home
    assert relocated("models:/m-123", root, "-") is None  # an MLflow 3 model URI, not a path
    assert relocated("s3://bucket/x", root, "-") is None
    assert relocated(None, root, "-") is None


def test_rehoming_is_idempotent_and_leaves_history_alone(default_run, tmp_path):
    """A second alignment changes nothing and does not touch the database; run tags (history) keep
    the paths they recorded."""
    original, _, _ = default_run
    copy = ProjectPaths(tmp_path / "copy")
    shutil.copytree(original / ".mlflow", copy.mlflow_dir)
    db = database_path(copy.mlflow_tracking_uri)
    with closing(sqlite3.connect(db)) as conn:
        tags_before = conn.execute("SELECT * FROM tags ORDER BY run_uuid, key").fetchall()
    first = rehome_store(db, copy.mlflow_artifact_root)
    assert first.previous_root == str(ProjectPaths(original).mlflow_artifact_root)
    assert first.changed.get("runs.artifact_uri", 0) >= 2 and first.changed.get("model_versions.storage_location")
    mtime = db.stat().st_mtime_ns
    again = rehome_store(db, copy.mlflow_artifact_root)
    assert again.total == 0 and db.stat().st_mtime_ns == mtime
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT * FROM tags ORDER BY run_uuid, key").fetchall() == tags_before
