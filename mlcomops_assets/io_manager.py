"""Stores asset values as files: DataFrames as Parquet, records as JSON, one layout in two places.

* ``DataFolderIOManager`` (local profile): ``<home>/data/<folder>/<asset>.<ext>``. Files, not Dagster's
  pickles, because DVC versions them, reviewers can open them, and any process (UI run, CLI,
  ``dvc repro``) finds the same data. Writes are atomic (temp file + rename).
* ``ObjectStoreIOManager`` (team profile): the same layout under ``<object store>/data/``, so a step on
  any Dask worker reads what a step on another one wrote.

Both are one implementation over a root that is either a local ``Path`` or a ``UPath`` (universal
pathlib on s3fs); only the write differs (see ``_StoredValues._write``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import dagster as dg

from mlcomops_assets.constants import STORAGE_FOLDER
from mlcomops_assets.lib.files import write_atomic, write_json
from mlcomops_assets.settings import ProjectPaths

_SUFFIXES = (".parquet", ".json")


def value_folder(root: Any, name: str) -> Any:
    """Where asset ``name``'s value lives below a data root (``Path`` or ``UPath``), without suffix:
    ``<root>/<folder>/<name>``; a partitioned asset's partitions are files inside it."""
    return root / STORAGE_FOLDER.get(name, "assets") / name


def stored_value(home: Path, name: str, suffix: str = ".json", profile: Any = None) -> Any:
    """Where asset ``name``'s value is stored for the project at ``home`` under the current (or given)
    profile: a ``Path`` under data/, or a ``UPath`` in the object store. For readers outside a run."""
    base = value_folder(stored_root(home, profile), name)
    return base.with_name(base.name + suffix)


def stored_root(home: Path, profile: Any = None) -> Any:
    """The data root the IO manager writes below under the current (or given) profile: ``<home>/data``,
    or ``<object store>/data`` (a ``UPath``) in the team profile. For readers outside a run."""
    from mlcomops_assets.profile import load_profile

    profile = profile or load_profile()
    if profile.is_team:
        return ObjectStoreIOManager(url=profile.data_url(), endpoint_url=profile.s3_endpoint_url).root()
    return ProjectPaths(home).data_dir


def read_parquet(path: Any, **kwargs: Any) -> Any:
    """A stored DataFrame, from a local file or an object (fetched in one GET)."""
    import pandas as pd

    return pd.read_parquet(path if isinstance(path, Path) else io.BytesIO(path.read_bytes()), **kwargs)


class _StoredValues(dg.ConfigurableIOManager):
    """The layout, reads and partition handling shared by both IO managers."""

    def _root(self) -> Any:
        raise NotImplementedError

    def _write(self, target: Any, obj: Any) -> None:
        """Write ``obj`` (a DataFrame as Parquet, else JSON text) at ``target`` so no reader sees a part."""
        raise NotImplementedError

    def _base(self, context: dg.InputContext | dg.OutputContext) -> Any:
        base = value_folder(self._root(), context.asset_key.path[-1])
        if context.has_asset_partitions:
            return base / context.asset_partition_key  # one file per partition
        return base

    @staticmethod
    def _read(path: Any) -> Any:
        if path.suffix == ".parquet":
            # A local file is read in place; an object is fetched in one GET and parsed from memory.
            return read_parquet(path)
        return json.loads(path.read_text(encoding="utf-8"))

    def _load_partitions(self, context: dg.InputContext) -> dict[str, Any]:
        """Every stored partition of a partitioned upstream, by key. A partition that was never written
        (e.g. a quarantined batch) is absent, not an error: there is nothing valid to read for it."""
        folder = value_folder(self._root(), context.asset_key.path[-1])
        # One listing, not an existence check per partition and suffix (one request on object storage).
        present = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        found: dict[str, Any] = {}
        for key in context.asset_partition_keys:
            for suffix in _SUFFIXES:
                if f"{key}{suffix}" in present:
                    found[key] = self._read(folder / f"{key}{suffix}")
                    break
        return found

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        import pandas as pd  # imported where used, so loading the code location does not import pandas

        base = self._base(context)
        if isinstance(obj, pd.DataFrame):
            path = base.with_name(base.name + ".parquet")
        elif isinstance(obj, dict):
            path = base.with_name(base.name + ".json")
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store a {type(obj).__name__}")
        self._write(path, obj)
        context.add_output_metadata({"storage_path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> Any:
        if context.has_asset_partitions and not context.has_partition_key:
            return self._load_partitions(context)
        base = self._base(context)
        parquet, record = (base.with_name(base.name + s) for s in _SUFFIXES)
        for path in (parquet, record):
            if path.exists():
                return self._read(path)
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()} has not been materialized yet (no {parquet.name} "
            f"or {record.name} in {base.parent})"
        )


class DataFolderIOManager(_StoredValues):
    """Parquet/JSON files at ``<home>/data/<folder>/<asset>.<ext>``."""

    home: str

    def _root(self) -> Path:
        return ProjectPaths(Path(self.home)).data_dir

    def _write(self, target: Path, obj: Any) -> None:
        if isinstance(obj, dict):
            write_json(target, obj)
        else:
            write_atomic(target, lambda p: obj.to_parquet(p, index=False))


class ObjectStoreIOManager(_StoredValues):
    """Parquet/JSON objects at ``<url>/<folder>/<asset>.<ext>`` on S3 or an S3-compatible server.

    ``url`` is ``s3://bucket/prefix/data`` (the team profile's object store + ``/data``);
    ``endpoint_url`` names an S3-compatible server (None: AWS); credentials come from the standard
    ``AWS_*`` variables of the process, so none are stored in the run's configuration.
    """

    url: str
    endpoint_url: str | None = None

    def root(self) -> Any:
        """The object-store folder holding the values, as a ``UPath``."""
        return self._root()

    def _root(self) -> Any:
        from upath import UPath

        options: dict[str, Any] = {"use_listings_cache": False}  # another worker's writes must be seen
        if self.endpoint_url:
            options["client_kwargs"] = {"endpoint_url": self.endpoint_url}
        return UPath(self.url, **options)

    def _write(self, target: Any, obj: Any) -> None:
        # No temporary key + rename here: S3 has no rename (a copy then delete is two operations, and
        # a reader could see neither). A PUT is atomic instead: an object becomes visible only when
        # its upload is complete (a multipart upload only at CompleteMultipartUpload), and a reader
        # sees the whole previous value or the whole new one, never a part. So the value is
        # serialized in memory first and written with one upload to its final key; a writer killed
        # before completing leaves the previous object untouched.
        if isinstance(obj, dict):
            data = (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
        else:
            buffer = io.BytesIO()
            obj.to_parquet(buffer, index=False)
            data = buffer.getvalue()
        target.write_bytes(data)
