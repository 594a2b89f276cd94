"""Stores asset values as files under ``data/``: DataFrames as Parquet, records as JSON.

Files, not Dagster's pickles, because DVC versions them, reviewers can open them, and any process
(UI run, CLI, ``dvc repro``) finds the same data. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg

from mlcomops_assets.constants import STORAGE_FOLDER
from mlcomops_assets.lib.files import write_atomic, write_json
from mlcomops_assets.settings import ProjectPaths


class DataFolderIOManager(dg.ConfigurableIOManager):
    """Parquet/JSON files at ``<home>/data/<folder>/<asset>.<ext>``."""

    home: str

    def _load_partitions(self, context: dg.InputContext) -> dict[str, Any]:
        """Every stored partition of a partitioned upstream, by key. A partition that was never written
        (e.g. a quarantined batch) is absent, not an error: there is nothing valid to read for it."""
        import pandas as pd

        name = context.asset_key.path[-1]
        folder = ProjectPaths(Path(self.home)).data_dir / STORAGE_FOLDER.get(name, "assets") / name
        found: dict[str, Any] = {}
        for key in context.asset_partition_keys:
            parquet, record = folder / f"{key}.parquet", folder / f"{key}.json"
            if parquet.exists():
                found[key] = pd.read_parquet(parquet)
            elif record.exists():
                found[key] = json.loads(record.read_text(encoding="utf-8"))
        return found

    def _base(self, context: dg.InputContext | dg.OutputContext) -> Path:
        name = context.asset_key.path[-1]
        folder = ProjectPaths(Path(self.home)).data_dir / STORAGE_FOLDER.get(name, "assets")
        if context.has_asset_partitions:
            return folder / name / context.asset_partition_key  # one file per partition
        return folder / name

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        import pandas as pd  # imported where used, so loading the code location does not import pandas

        base = self._base(context)
        if isinstance(obj, pd.DataFrame):
            path = base.with_suffix(".parquet")
            write_atomic(path, lambda p: obj.to_parquet(p, index=False))
        elif isinstance(obj, dict):
            path = write_json(base.with_suffix(".json"), obj)
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store a {type(obj).__name__}")
        context.add_output_metadata({"storage_path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> Any:
        if context.has_asset_partitions and not context.has_partition_key:
            return self._load_partitions(context)
        import pandas as pd

        base = self._base(context)
        parquet, record = base.with_suffix(".parquet"), base.with_suffix(".json")
        if parquet.exists():
            return pd.read_parquet(parquet)
        if record.exists():
            return json.loads(record.read_text(encoding="utf-8"))
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()} has not been materialized yet (no {parquet.name} "
            f"or {record.name} in {base.parent})"
        )
