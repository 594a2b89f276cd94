"""Keep the MLflow SQLite store pointing at the artifact folder of the home it lives in.

MLflow writes absolute artifact locations into its SQLite store (experiments, runs, logged models,
model versions) and resolves even a relative location against the working directory at creation time
(``mlflow.utils.uri.resolve_uri_if_local``); ``mlflow-artifacts:`` URIs need a running tracking server.
So a copied or moved project would log its runs and models into the *original's* artifact folder.

``rehome_store`` fixes that before the store is used: every location column that is a local path
outside the current artifact root is rewritten to the same place under the current root (the part
after ``.mlflow/artifacts/``). A marker file beside the database records the root the store belongs
to, so the check costs one small file read when nothing moved. Run tags such as ``mlflow.source.name``
are history and stay as they were.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

MARKER_NAME = "store-home.json"
_ARTIFACTS_PART = "/.mlflow/artifacts"
_FILE_SCHEME = "file://"

# Every column of the MLflow 3.17 schema that holds an artifact location (inspected with
# ``PRAGMA table_info`` on a store the whole graph wrote). model_versions.source is a ``models:/m-…``
# URI in MLflow 3, but older versions stored a path there, so it is normalized too when it is one.
LOCATION_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (table, key column(s) joined by ",", location column)
    ("experiments", "experiment_id", "artifact_location"),
    ("runs", "run_uuid", "artifact_uri"),
    ("logged_models", "model_id", "artifact_location"),
    ("model_versions", "name,version", "source"),
    ("model_versions", "name,version", "storage_location"),
    ("workspaces", "name", "default_artifact_root"),
    ("workspaces", "name", "trace_archival_location"),
)


@dataclass(frozen=True)
class Rehomed:
    """What one call changed: rows per ``table.column``, and the root the store came from."""

    changed: dict[str, int]
    previous_root: str | None

    @property
    def total(self) -> int:
        return sum(self.changed.values())


def database_path(tracking_uri: str) -> Path:
    """The SQLite file of a ``sqlite:///`` tracking URI (the only backend this project uses)."""
    if not tracking_uri.startswith("sqlite:///"):
        raise ValueError(f"not a SQLite tracking URI: {tracking_uri!r}")
    return Path(tracking_uri.removeprefix("sqlite:///"))


def _marker(db: Path) -> Path:
    return db.parent / MARKER_NAME


def recorded_root(db: Path) -> str | None:
    """The artifact root the store was last aligned with, or None (never aligned, or unreadable)."""
    try:
        return json.loads(_marker(db).read_text(encoding="utf-8")).get("artifact_root")
    except (OSError, ValueError, AttributeError):
        return None


def relocated(value: str | None, root: str, fallback: str) -> str | None:
    """``value`` moved under ``root`` when it is a local path outside it, else None (leave it).

    A path under some other ``.mlflow/artifacts`` keeps its tail; any other local path (MLflow's
    ``<cwd>/mlruns/0`` for the Default experiment) becomes ``fallback``. URIs such as ``models:/…``
    or ``s3://…`` are not local paths and are left alone.
    """
    if not value:
        return None
    scheme = _FILE_SCHEME if value.startswith(_FILE_SCHEME) else ""
    path = value.removeprefix(scheme)
    if not path.startswith("/"):
        return None
    if path == root or path.startswith(root + "/"):
        return None
    index = path.rfind(_ARTIFACTS_PART + "/")
    if index >= 0:
        return scheme + root + path[index + len(_ARTIFACTS_PART) :]
    if path.endswith(_ARTIFACTS_PART):
        return scheme + root
    return scheme + fallback


def _existing_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}  # noqa: S608 (fixed names)


def _align(conn: sqlite3.Connection, root: str) -> dict[str, int]:
    changed: dict[str, int] = {}
    for table, keys, column in LOCATION_COLUMNS:
        key_columns = keys.split(",")
        if not {column, *key_columns} <= _existing_columns(conn, table):
            continue  # an older or newer schema without this column
        rows = conn.execute(f"SELECT {keys}, {column} FROM {table}").fetchall()  # noqa: S608
        for *key, value in rows:
            fallback = f"{root}/{'-'.join(str(k) for k in key)}"
            new = relocated(value, root, fallback)
            if new is None:
                continue
            where = " AND ".join(f"{k} = ?" for k in key_columns)
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (new, *key))  # noqa: S608
            changed[f"{table}.{column}"] = changed.get(f"{table}.{column}", 0) + 1
    return changed


def rehome_store(db: Path, artifact_root: Path) -> Rehomed:
    """Align the store at ``db`` with ``artifact_root``; a no-op (one file read) when it already is.

    The rewrite runs in one ``BEGIN IMMEDIATE`` transaction, so two processes opening a copied store
    at once cannot interleave (the second finds nothing left to change), and a crash leaves the old
    values in place to be rewritten next time. The marker is written after the commit.
    """
    root = str(artifact_root).rstrip("/")
    previous = recorded_root(db)
    if previous == root or not db.is_file():
        return Rehomed({}, previous)
    conn = sqlite3.connect(db, timeout=60, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            changed = _align(conn, root)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
    _write_marker(db, root)
    return Rehomed(changed, previous)


def _write_marker(db: Path, root: str) -> None:
    marker = _marker(db)
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"artifact_root": root}) + "\n", encoding="utf-8")
    tmp.replace(marker)


def foreign_locations(db: Path, artifact_root: Path) -> list[str]:
    """Every location column value that is a local path outside ``artifact_root`` (for checks and tests)."""
    root = str(artifact_root).rstrip("/")
    found = []
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        for table, keys, column in LOCATION_COLUMNS:
            if {column, *keys.split(",")} <= _existing_columns(conn, table):
                for (value,) in conn.execute(f"SELECT {column} FROM {table}"):  # noqa: S608
                    if relocated(value, root, root) is not None:
                        found.append(f"{table}.{column}={value}")
    return found


def main() -> None:
    """``python -m mlcomops_assets.lib.mlflow_store``: align the project's store (``make ui`` runs it
    before starting the MLflow UI, which would otherwise serve and write the original's artifacts)."""
    from mlcomops_assets.settings import ProjectPaths, default_home

    paths = ProjectPaths(default_home())
    result = rehome_store(database_path(paths.mlflow_tracking_uri), paths.mlflow_artifact_root)
    if result.total:
        print(f"MLflow store moved from {result.previous_root or 'another home'}: {result.changed}")


if __name__ == "__main__":
    main()
