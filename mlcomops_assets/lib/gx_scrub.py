"""Counts, never values: reduce a GX validation result to what may leave the validation step.

GX keeps cell values in several places of a result even with ``partial_unexpected_count: 0``:
``details.value_counts`` of ExpectColumnDistinctValuesToContainSet (every distinct value of the column),
``observed_value`` of min/max/quantile/distinct-value expectations, and the exception message and
traceback of an expectation that could not be evaluated (pandas quotes the column: a mean over a text
column of ages fails with "Could not convert string '2117244627...'", 10,444 characters on the default
data). The result is scrubbed in place before Data Docs are rendered and before any message is built.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# Result fields that are counts or shares of rows.
_COUNT_KEYS = {
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
    "missing_count",
    "missing_percent",
}
# Expectations whose observed_value is an aggregate over many rows (or table structure), not a cell value.
AGGREGATE_OBSERVED = {
    "ExpectColumnMeanToBeBetween",
    "ExpectColumnMedianToBeBetween",
    "ExpectColumnStdevToBeBetween",
    "ExpectColumnSumToBeBetween",
    "ExpectColumnProportionOfUniqueValuesToBeBetween",
    "ExpectColumnUniqueValueCountToBeBetween",
    "ExpectTableRowCountToBeBetween",
    "ExpectTableColumnsToMatchSet",
    "ExpectColumnValuesToBeInTypeList",
}
# Expectations that need numbers (or dates) in their column; on text they fail inside pandas.
NUMERIC_EXPECTATIONS = {
    "ExpectColumnValuesToBeBetween",
    "ExpectColumnMeanToBeBetween",
    "ExpectColumnMedianToBeBetween",
    "ExpectColumnStdevToBeBetween",
    "ExpectColumnSumToBeBetween",
    "ExpectColumnMinToBeBetween",
    "ExpectColumnMaxToBeBetween",
    "ExpectColumnQuantileValuesToBeBetween",
}


def _table_columns_details(details: Any) -> dict[str, Any]:
    """Missing/undeclared column names are the file's structure, kept for the schema message."""
    mismatched = details.get("mismatched") if isinstance(details, dict) else None
    if not isinstance(mismatched, dict):
        return {}
    return {"mismatched": {k: list(mismatched.get(k) or []) for k in ("missing", "unexpected")}}


def scrub_result(expectation: str, result: dict[str, Any] | None) -> dict[str, Any]:
    """The counts of ``result``, plus observed_value only where it is an aggregate or structure."""
    result = result or {}
    out = {k: result[k] for k in _COUNT_KEYS if k in result}
    if expectation in AGGREGATE_OBSERVED and "observed_value" in result:
        out["observed_value"] = result["observed_value"]
    if expectation == "ExpectTableColumnsToMatchSet" and result.get("details"):
        out["details"] = _table_columns_details(result["details"])
    return out


def error_type(exception_info: Any) -> str | None:
    """The exception's class name (e.g. 'TypeError') from GX's exception info, never its message."""
    if not isinstance(exception_info, dict):
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception"):
            lines = [ln for ln in str(info.get("exception_traceback") or "").splitlines() if ln.strip()]
            name = lines[-1].split(":", 1)[0].strip().rsplit(".", 1)[-1] if lines else ""
            return name if name.isidentifier() else "error"
    return None


def non_numeric_count(frame: pd.DataFrame, column: str | None) -> int | None:
    """How many present values of ``column`` are not numbers (None when the column is numeric/absent)."""
    if column is None or column not in frame.columns:
        return None
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return None
    present = values.dropna()
    return int(pd.to_numeric(present, errors="coerce").isna().sum())


def safe_error(expectation: str, kind: str, column: str | None, frame: pd.DataFrame) -> str:
    """What stopped a rule from being evaluated, with the column and a count: never the data itself."""
    bad = non_numeric_count(frame, column) if expectation in NUMERIC_EXPECTATIONS else None
    if bad is not None:
        total = int(frame[column].notna().sum())
        return f"{kind}: {bad:,} of {total:,} values of '{column}' are not numbers, so the rule cannot be computed"
    return f"{kind} while evaluating the rule (message withheld: it can quote the data)"


def scrub_exception(exception_info: Any, text: str) -> Any:
    """GX's exception info with the message replaced by ``text`` and the traceback removed."""
    if not isinstance(exception_info, dict):
        return exception_info
    if "raised_exception" in exception_info:
        if not exception_info.get("raised_exception"):
            return exception_info
        return {"raised_exception": True, "exception_message": text, "exception_traceback": text}
    return {key: scrub_exception(info, text) for key, info in exception_info.items()}
