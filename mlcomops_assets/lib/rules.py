"""The data contract: validation rules derived from the policy, one Dagster check each.

Rules are plain data, built without importing Great Expectations, so the code location can declare a
check per rule at load time; ``gx_validation`` turns them into a GX suite when a check runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlcomops_assets.policy import ColumnType, DataSpec

# pandas dtypes accepted for each declared column type (GX ExpectColumnValuesToBeInTypeList).
_TYPE_LISTS: dict[ColumnType, list[str]] = {
    ColumnType.INTEGER: ["int64", "int32", "int16", "int8", "Int64", "Int32", "uint8", "uint16", "uint32"],
    ColumnType.FLOAT: ["float64", "float32", "Float64", "int64", "int32", "Int64"],
    ColumnType.CATEGORY: ["object", "str", "string", "category"],
    ColumnType.STRING: ["object", "str", "string"],
}


class Severity(StrEnum):
    CRITICAL = "critical"  # blocks everything downstream
    WARNING = "warning"  # reported, does not block


@dataclass(frozen=True)
class Rule:
    """One expectation of the data contract."""

    name: str
    expectation: str
    kwargs: dict[str, Any]
    description: str
    column: str | None = None
    severity: Severity = Severity.CRITICAL
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.severity == Severity.CRITICAL


def check_name(*parts: str) -> str:
    """A Dagster-safe check name (letters, digits, underscores) from rule parts."""
    raw = "__".join(parts)
    return re.sub(r"[^A-Za-z0-9_]", "_", raw)


def rules_from_policy(spec: DataSpec) -> list[Rule]:
    """Every rule the raw data must satisfy, in a stable order."""
    declared = list(spec.columns)
    rules = [
        Rule(
            name="columns_match_policy",
            expectation="ExpectTableColumnsToMatchSet",
            kwargs={"column_set": declared, "exact_match": True},
            description=f"The file has exactly the {len(declared)} columns declared in the policy.",
        ),
        Rule(
            name="row_count_within_bounds",
            expectation="ExpectTableRowCountToBeBetween",
            kwargs={"min_value": spec.row_count.min, "max_value": spec.row_count.max},
            description=f"Between {spec.row_count.min:,} and {spec.row_count.max:,} rows.",
        ),
    ]
    for name, col in spec.columns.items():
        rules.append(
            Rule(
                name=check_name(name, "type"),
                expectation="ExpectColumnValuesToBeInTypeList",
                kwargs={"column": name, "type_list": _TYPE_LISTS[col.dtype]},
                description=f"'{name}' holds {col.dtype.value} values.",
                column=name,
            )
        )
        allowed_nulls = col.max_null_fraction
        rules.append(
            Rule(
                name=check_name(name, "not_null"),
                expectation="ExpectColumnValuesToNotBeNull",
                kwargs={"column": name, "mostly": 1.0 - allowed_nulls} if allowed_nulls else {"column": name},
                description=(
                    f"'{name}' has no missing values."
                    if not allowed_nulls
                    else f"'{name}' is at most {allowed_nulls:.0%} missing."
                ),
                column=name,
            )
        )
        if col.allowed_values is not None:
            rules.append(
                Rule(
                    name=check_name(name, "allowed_values"),
                    expectation="ExpectColumnValuesToBeInSet",
                    kwargs={"column": name, "value_set": list(col.allowed_values)},
                    description=f"'{name}' only takes the values {col.allowed_values}.",
                    column=name,
                )
            )
        if col.min is not None or col.max is not None:
            rules.append(
                Rule(
                    name=check_name(name, "range"),
                    expectation="ExpectColumnValuesToBeBetween",
                    kwargs={"column": name, "min_value": col.min, "max_value": col.max},
                    description=f"'{name}' lies within [{col.min}, {col.max}].",
                    column=name,
                )
            )
    labels = spec.columns[spec.target].allowed_values or []
    rules.append(
        Rule(
            name=check_name(spec.target, "both_classes_present"),
            expectation="ExpectColumnDistinctValuesToContainSet",
            kwargs={"column": spec.target, "value_set": list(labels)},
            description=f"The label '{spec.target}' contains both classes {labels}.",
            column=spec.target,
        )
    )
    return rules
