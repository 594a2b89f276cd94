"""Turning plain records and measured figures into Dagster metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

_TYPES = {bool: "bool", int: "int", float: "float", str: "string"}

# Figures are shown to four significant digits: 0.08123 against a limit of 0.15, 1.235e-14 against 1e-06.
# Significant digits, not decimals, so a tiny figure (an additivity error) does not read as 0.
SIGNIFICANT_DIGITS = 4


def rounded(value: float) -> float:
    """``value`` to ``SIGNIFICANT_DIGITS`` significant digits, as every check and asset shows a figure."""
    return float(f"{float(value):.{SIGNIFICANT_DIGITS}g}")


def figure(value: float) -> dg.FloatMetadataValue:
    """A measured figure or a limit as float metadata (rounded), so the UI plots it across runs."""
    return dg.MetadataValue.float(rounded(value))


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
