"""Turning plain records into Dagster metadata tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

_TYPES = {bool: "bool", int: "int", float: "float", str: "string"}


def table(records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> dg.TableMetadataValue:
    """A metadata table of ``records`` (first record decides the column types)."""
    columns = list(columns or (records[0].keys() if records else []))
    first = records[0] if records else {}
    schema = dg.TableSchema(columns=[dg.TableColumn(c, _TYPES.get(type(first.get(c)), "string")) for c in columns])
    rows = [
        dg.TableRecord(
            {c: (r.get(c) if isinstance(r.get(c), (bool, int, float, str)) else str(r.get(c))) for c in columns}
        )
        for r in records
    ]
    return dg.MetadataValue.table(records=rows, schema=schema)
