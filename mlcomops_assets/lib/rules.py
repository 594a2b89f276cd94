"""The data contract: validation rules derived from the policy, one Dagster check each.

Rules are plain data, built without importing Great Expectations, so the code location can declare a
check per rule at load time; ``gx_validation`` turns them into a GX suite when a check runs.
Besides the rules derived from the policy, hand-written expectations can be kept as versioned JSON
(``data.extra_expectations``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mlcomops_assets.policy import ColumnRole, ColumnType, DataSpec, PolicyError

# pandas dtypes accepted for each declared column type (GX ExpectColumnValuesToBeInTypeList).
_TYPE_LISTS: dict[ColumnType, list[str]] = {
    ColumnType.INTEGER: ["int64", "int32", "int16", "int8", "Int64", "Int32", "uint8", "uint16", "uint32"],
    ColumnType.FLOAT: ["float64", "float32", "Float64", "int64", "int32", "Int64"],
    ColumnType.CATEGORY: ["object", "str", "string", "category"],
    ColumnType.STRING: ["object", "str", "string"],
}

# Direct identifiers that must never sit in a non-identifier text column: e-mail addresses and
# phone numbers (8+ digits with the usual separators).
IDENTIFIER_PATTERN = r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}|\+?\d[\d\s().\-/]{6,}\d"
# A text feature where almost every value is distinct behaves like an identifier, not a feature.
MAX_UNIQUE_SHARE_OF_TEXT_FEATURE = 0.9


class Severity(StrEnum):
    CRITICAL = "critical"  # blocks everything downstream
    WARNING = "warning"  # reported, does not block


class Kind(StrEnum):
    """How a rule's outcome is read back into a message."""

    ROWS = "rows"  # N rows break it
    SHARE = "share"  # a class makes up too small a share
    GROUP = "group"  # a protected group has too few rows
    TABLE = "table"  # a property of the whole table or column


@dataclass(frozen=True)
class Rule:
    """One expectation of the data contract."""

    name: str
    expectation: str
    kwargs: dict[str, Any]
    description: str
    column: str | None = None
    severity: Severity = Severity.CRITICAL
    kind: Kind = Kind.ROWS
    min_count: int | None = None  # GROUP rules: at least this many rows in the group
    parse_dates: str | None = None  # validate the column parsed with this strftime format (see parsed_column)
    policy_key: str | None = None  # the policy key that would change the rule, named in its failure message

    @property
    def blocking(self) -> bool:
        return self.severity == Severity.CRITICAL

    def resolved_kwargs(self, n_rows: int) -> dict[str, Any]:
        """Keyword arguments for GX; a group's minimum size becomes a share of this dataset's rows."""
        if self.min_count is None:
            return dict(self.kwargs)
        mostly = min(1.0, self.min_count / n_rows) if n_rows else 1.0
        return {**self.kwargs, "mostly": mostly}


class _ExtraExpectation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    expectation: str
    kwargs: dict[str, Any]
    severity: Severity = Severity.WARNING
    description: str


class _ExtraFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expectations: list[_ExtraExpectation]


def parsed_column(name: str) -> str:
    """The name of the helper column holding ``name`` parsed as dates, which date-window rules check."""
    return f"{name} (parsed as date)"


def check_name(*parts: str) -> str:
    """A Dagster-safe check name (letters, digits, underscores) from rule parts."""
    return re.sub(r"[^A-Za-z0-9_]", "_", "__".join(parts))


def load_extra_rules(path: Path) -> list[Rule]:
    """Hand-written expectations from a versioned JSON file."""
    try:
        parsed = _ExtraFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, ValidationError) as exc:
        raise PolicyError(f"data.extra_expectations: cannot load {path}: {exc}") from None
    return [
        Rule(
            name=check_name(e.name),
            policy_key="data.extra_expectations",
            expectation=e.expectation,
            kwargs=e.kwargs,
            description=e.description,
            column=e.kwargs.get("column"),
            severity=e.severity,
            kind=Kind.TABLE,
        )
        for e in parsed.expectations
    ]


def _column_rules(spec: DataSpec, name: str) -> list[Rule]:
    col = spec.columns[name]
    if col.dtype is None:
        return []  # a dropped column without a declared type: only its presence is part of the contract
    rules = [
        Rule(
            name=check_name(name, "type"),
            policy_key=f"data.columns.{name}.dtype",
            expectation="ExpectColumnValuesToBeInTypeList",
            kwargs={"column": name, "type_list": _TYPE_LISTS[col.dtype]},
            description=f"'{name}' holds {col.dtype.value} values.",
            column=name,
            kind=Kind.TABLE,
        )
    ]
    nulls = col.max_null_fraction
    rules.append(
        Rule(
            name=check_name(name, "not_null"),
            policy_key=f"data.columns.{name}.max_null_fraction",
            expectation="ExpectColumnValuesToNotBeNull",
            kwargs={"column": name, "mostly": 1.0 - nulls} if nulls else {"column": name},
            description=f"'{name}' has no missing values."
            if not nulls
            else f"'{name}' is at most {nulls:.0%} missing.",
            column=name,
        )
    )
    if col.allowed_values is not None:
        rules.append(
            Rule(
                name=check_name(name, "allowed_values"),
                policy_key=f"data.columns.{name}.allowed_values",
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
                policy_key=f"data.columns.{name}.min / data.columns.{name}.max",
                expectation="ExpectColumnValuesToBeBetween",
                kwargs={"column": name, "min_value": col.min, "max_value": col.max},
                description=f"'{name}' lies within [{col.min}, {col.max}].",
                column=name,
            )
        )
    if col.date_format:
        rules.append(
            Rule(
                name=check_name(name, "date_format"),
                policy_key=f"data.columns.{name}.date_format",
                expectation="ExpectColumnValuesToMatchStrftimeFormat",
                kwargs={"column": name, "strftime_format": col.date_format},
                description=f"'{name}' holds dates formatted as {col.date_format}.",
                column=name,
            )
        )
    if col.min_date or col.max_date:
        low = f"{col.min_date.isoformat()}T00:00:00" if col.min_date else None
        high = f"{col.max_date.isoformat()}T23:59:59" if col.max_date else None
        rules.append(
            Rule(
                name=check_name(name, "date_window"),
                policy_key=f"data.columns.{name}.min_date / data.columns.{name}.max_date",
                expectation="ExpectColumnValuesToBeBetween",
                # GX compares dates with dates: the rule runs on the column parsed with its format;
                # values that do not parse are left to the date_format rule.
                kwargs={"column": parsed_column(name), "min_value": low, "max_value": high},
                description=f"'{name}' lies between {col.min_date or 'any'} and {col.max_date or 'any'}.",
                column=name,
                parse_dates=col.date_format,
            )
        )
    if col.dtype == ColumnType.STRING and col.role not in (ColumnRole.IDENTIFIER, ColumnRole.TIME):
        rules.append(
            Rule(
                name=check_name(name, "no_direct_identifiers"),
                policy_key=f"data.columns.{name}.role (identifier)",
                expectation="ExpectColumnValuesToNotMatchRegex",
                kwargs={"column": name, "regex": IDENTIFIER_PATTERN},
                description=f"'{name}' contains no e-mail addresses or phone numbers (identifiers belong in "
                "identifier columns).",
                column=name,
            )
        )
        rules.append(
            Rule(
                name=check_name(name, "not_identifier_like"),
                policy_key=f"data.columns.{name}.role (identifier or ignored)",
                expectation="ExpectColumnProportionOfUniqueValuesToBeBetween",
                kwargs={"column": name, "max_value": MAX_UNIQUE_SHARE_OF_TEXT_FEATURE},
                description=f"'{name}' is not unique per row (at most {MAX_UNIQUE_SHARE_OF_TEXT_FEATURE:.0%} distinct "
                "values), which would make it an identifier.",
                column=name,
                kind=Kind.TABLE,
            )
        )
    return rules


def _group_rules(spec: DataSpec) -> list[Rule]:
    """Every group of every protected attribute needs enough rows for the fairness analysis."""
    rules: list[Rule] = []
    if not spec.min_group_size:
        return rules
    for name in spec.protected_attributes:
        col = spec.columns[name]
        if col.allowed_values:
            for value in col.allowed_values:
                rules.append(
                    Rule(
                        name=check_name(name, "group", value, "min_size"),
                        policy_key="data.min_group_size",
                        expectation="ExpectColumnValuesToBeInSet",
                        kwargs={"column": name, "value_set": [value]},
                        description=f"Group '{name}={value}' has at least {spec.min_group_size} rows.",
                        column=name,
                        kind=Kind.GROUP,
                        min_count=spec.min_group_size,
                    )
                )
        elif col.fairness_bins:
            edges = col.fairness_bins
            for low, high in zip(edges[:-1], edges[1:], strict=True):
                label = f"{low:g}-{high:g}"
                rules.append(
                    Rule(
                        name=check_name(name, "group", label, "min_size"),
                        policy_key=f"data.min_group_size / data.columns.{name}.fairness_bins",
                        expectation="ExpectColumnValuesToBeBetween",
                        kwargs={"column": name, "min_value": low, "max_value": high, "strict_max": True},
                        description=f"Group '{name} in [{label})' has at least {spec.min_group_size} rows.",
                        column=name,
                        kind=Kind.GROUP,
                        min_count=spec.min_group_size,
                    )
                )
    return rules


def rules_from_policy(spec: DataSpec, home: Path | None = None) -> list[Rule]:
    """Every rule the raw data must satisfy, in a stable order."""
    declared = list(spec.columns)
    helpers = [parsed_column(n) for n, c in spec.columns.items() if c.min_date or c.max_date]
    rules = [
        Rule(
            name="file_is_readable",
            policy_key="data.source (delimiter, encoding)",
            expectation="(read)",
            kwargs={},
            description=f"The source file parses as {spec.source.suffix.lstrip('.')} with the declared "
            f"delimiter {spec.source.delimiter!r} and encoding {spec.source.encoding}.",
            kind=Kind.TABLE,
        ),
        Rule(
            name="columns_match_policy",
            policy_key="data.columns",
            expectation="ExpectTableColumnsToMatchSet",
            kwargs={"column_set": declared + helpers, "exact_match": True},
            description=f"The file has exactly the {len(declared)} columns declared in the policy.",
            kind=Kind.TABLE,
        ),
        Rule(
            name="row_count_within_bounds",
            policy_key="data.row_count",
            expectation="ExpectTableRowCountToBeBetween",
            kwargs={"min_value": spec.row_count.min, "max_value": spec.row_count.max},
            description=f"Between {spec.row_count.min:,} and {spec.row_count.max:,} rows.",
            kind=Kind.TABLE,
        ),
    ]
    for name in spec.columns:
        rules.extend(_column_rules(spec, name))
    if spec.record_key:
        rules.append(
            Rule(
                name=check_name(spec.record_key, "unique"),
                policy_key="data.record_key",
                expectation="ExpectColumnValuesToBeUnique",
                kwargs={"column": spec.record_key},
                description=f"The record key '{spec.record_key}' identifies each row once (no duplicated records).",
                column=spec.record_key,
            )
        )
    labels = spec.columns[spec.target].allowed_values or []
    rules.append(
        Rule(
            name=check_name(spec.target, "both_classes_present"),
            policy_key=f"data.columns.{spec.target}.allowed_values",
            expectation="ExpectColumnDistinctValuesToContainSet",
            kwargs={"column": spec.target, "value_set": list(labels)},
            description=f"The label '{spec.target}' contains both classes {labels}.",
            column=spec.target,
            kind=Kind.TABLE,
        )
    )
    if spec.min_class_share:
        for label in labels:
            rules.append(
                Rule(
                    name=check_name(spec.target, "class_share", label),
                    policy_key="data.min_class_share",
                    expectation="ExpectColumnValuesToBeInSet",
                    kwargs={"column": spec.target, "value_set": [label], "mostly": spec.min_class_share},
                    description=f"Class '{label}' makes up at least {spec.min_class_share:.0%} of the labels.",
                    column=spec.target,
                    kind=Kind.SHARE,
                )
            )
    rules.extend(_group_rules(spec))
    if spec.extra_expectations:
        if home is None:
            raise PolicyError("data.extra_expectations needs the project home to resolve its path")
        rules.extend(load_extra_rules(home / spec.extra_expectations))
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PolicyError(f"rule names must be unique; repeated: {duplicates}")
    return rules
