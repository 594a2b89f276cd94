"""Checking a valid policy against its data (``mlcomops policy check``): every problem at once.

The pipeline's data contract stops a run at the first failing check and is read in the Dagster UI;
this check is for the person writing the policy. It reads the source the way the pipeline does
(``lib.sources``: the confined path, labels as text, numbers inferred) and lists every mismatch between
the policy and the data, each naming the policy key that would fix it.

Messages hold counts, shares, column names, pandas dtypes and labels the policy itself declares; never
a cell of the data, which may be personal.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlcomops_assets.lib.rules import _TYPE_LISTS, IDENTIFIER_PATTERN, MAX_UNIQUE_SHARE_OF_TEXT_FEATURE
from mlcomops_assets.policy import ColumnRole, ColumnSpec, ColumnType, DataSpec, Policy

# Fewer non-empty values than this say nothing about whether a column is unique per row.
MIN_ROWS_FOR_UNIQUENESS = 20


@dataclass(frozen=True)
class Problem:
    """One mismatch between the policy and the data, and the policy key that would fix it."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


@dataclass(frozen=True)
class CheckResult:
    """What was checked and what was found."""

    source: str
    rows: int
    columns: int
    problems: list[Problem]


def load_source(spec: DataSpec, home: Path) -> tuple[pd.DataFrame, str]:
    """The source as the pipeline reads it, and a description of where it came from.

    Raises ``SourceError`` (confinement, missing file, unreadable file) with the pipeline's own message.
    """
    from mlcomops_assets.lib.sources import ingest_source, read_raw, resolve_source

    if spec.source.kind == "file":
        real = resolve_source(spec, home)
        return read_raw(real, spec), str(spec.source.path)
    # A bundled dataset: exported exactly as the pipeline's ingestion does, then read back like it.
    with tempfile.TemporaryDirectory(prefix="mlcomops-check-") as tmp:
        raw = Path(tmp) / f"source{spec.source.suffix}"
        ingest_source(spec, home, raw)
        return read_raw(raw, spec), f"the bundled {spec.source.kind} dataset"


def check_policy(policy: Policy, home: Path) -> CheckResult:
    """Read the policy's source and check the policy against it; an unreadable source is one problem."""
    from mlcomops_assets.lib.sources import SourceError

    spec = policy.data
    problems = _extra_expectations(spec, home)
    try:
        frame, source = load_source(spec, home)
    except SourceError as exc:
        return CheckResult(
            str(spec.source.path or spec.source.kind), 0, 0, [*problems, Problem("data.source", str(exc))]
        )
    return CheckResult(source, len(frame), len(frame.columns), problems + check_frame(policy, frame))


def check_frame(policy: Policy, frame: pd.DataFrame) -> list[Problem]:
    """Every problem of ``frame`` under ``policy``, table-level first, then column by column."""
    spec = policy.data
    problems = _columns_match(spec, frame) + _row_count(spec, frame)
    for name, col in spec.columns.items():
        if name in frame.columns:
            problems += _column(policy, name, col, frame[name])
    problems += _target(spec, frame) + _record_key(spec, frame) + _time(spec, frame)
    return problems


def _columns_match(spec: DataSpec, frame: pd.DataFrame) -> list[Problem]:
    present = [str(c) for c in frame.columns]
    problems = [
        Problem(f"data.columns.{name}", "in the file but not declared; declare it (role: ignored drops it)")
        for name in present
        if name not in spec.columns
    ]
    problems += [
        Problem(f"data.columns.{name}", "declared but not in the file; fix the name or remove the declaration")
        for name in spec.columns
        if name not in present
    ]
    return problems


def _row_count(spec: DataSpec, frame: pd.DataFrame) -> list[Problem]:
    rows, bounds = len(frame), spec.row_count
    if rows < bounds.min:
        return [Problem("data.row_count.min", f"the file has {rows:,} rows, fewer than the declared {bounds.min:,}")]
    if rows > bounds.max:
        return [Problem("data.row_count.max", f"the file has {rows:,} rows, more than the declared {bounds.max:,}")]
    return []


def _column(policy: Policy, name: str, col: ColumnSpec, values: pd.Series) -> list[Problem]:
    """The contract of one declared column that is in the file."""
    if col.dtype is None:
        return []  # a dropped column declared without a type: only its presence is part of the contract
    key = f"data.columns.{name}"
    problems = _nulls(key, col, values)
    type_problem = _dtype(key, col, values)
    if type_problem:
        return [*problems, type_problem]  # ranges, labels and groups mean nothing on the wrong type
    if col.allowed_values is not None and col.role != ColumnRole.TARGET:
        outside = int((values.notna() & ~values.isin(col.allowed_values)).sum())
        if outside:
            distinct = values[values.notna() & ~values.isin(col.allowed_values)].nunique()
            problems.append(
                Problem(
                    f"{key}.allowed_values",
                    f"{outside:,} values ({distinct:,} distinct) are not among the declared allowed_values",
                )
            )
    if col.is_numeric:
        numbers = pd.to_numeric(values, errors="coerce")
        for bound, outside, word in (
            ("min", numbers < col.min if col.min is not None else None, "below"),
            ("max", numbers > col.max if col.max is not None else None, "above"),
        ):
            if outside is not None and outside.any():
                limit = getattr(col, bound)
                problems.append(Problem(f"{key}.{bound}", f"{int(outside.sum()):,} values are {word} {limit:g}"))
    if col.role == ColumnRole.PROTECTED:
        problems += _groups(policy, name, col, values)
    if col.role not in (ColumnRole.IDENTIFIER, ColumnRole.TIME, ColumnRole.TARGET):
        problems += _identifier_like(key, col, values)
    return problems


def _nulls(key: str, col: ColumnSpec, values: pd.Series) -> list[Problem]:
    missing = int(values.isna().sum())
    share = missing / len(values) if len(values) else 0.0
    if share <= col.max_null_fraction + 1e-12:
        return []
    return [
        Problem(
            f"{key}.max_null_fraction",
            f"{share:.1%} of values are missing ({missing:,} of {len(values):,}), above the declared "
            f"{col.max_null_fraction:g}",
        )
    ]


def _dtype(key: str, col: ColumnSpec, values: pd.Series) -> Problem | None:
    """Whether the column, as read, holds the declared type (the contract's own type lists)."""
    actual = str(values.dtype)
    if actual in _TYPE_LISTS[col.dtype]:
        return None
    present = values.notna()
    if col.is_numeric:
        numbers = pd.to_numeric(values.where(present), errors="coerce")
        not_numbers = int((present & numbers.isna()).sum())
        if not_numbers:
            why = f"{not_numbers:,} of {int(present.sum()):,} non-empty values are not numbers"
        else:
            fractional = int((present & (numbers % 1 != 0)).sum())
            why = (
                f"{fractional:,} values are not whole numbers"
                if fractional
                else "whole numbers with missing values are read as float"
            )
            why += "; declare dtype: float" if col.dtype == ColumnType.INTEGER else ""
        return Problem(f"{key}.dtype", f"declared {col.dtype.value} but read as {actual}: {why}")
    return Problem(
        f"{key}.dtype",
        f"declared {col.dtype.value} but the file stores {actual}; store it as text or declare a numeric dtype",
    )


def _group_limit(size: int, policy: Policy) -> tuple[str, int]:
    """The key and minimum a group of ``size`` rows falls short of: below ``data.min_group_size`` the
    contract refuses the data; below the gate's minimum the fairness analysis cannot use the group."""
    data_min = policy.data.min_group_size
    return (
        ("data.min_group_size", data_min)
        if size < data_min
        else (
            "gates.fairness.min_group_size",
            policy.gates.fairness.min_group_size,
        )
    )


def _groups(policy: Policy, name: str, col: ColumnSpec, values: pd.Series) -> list[Problem]:
    """Groups of a protected attribute too small for the data contract or the fairness analysis."""
    needed = max(policy.data.min_group_size, policy.gates.fairness.min_group_size)
    key = f"data.columns.{name}"
    problems = []
    if col.fairness_bins:
        edges = col.fairness_bins
        numbers = pd.to_numeric(values, errors="coerce")
        binned = pd.cut(numbers, bins=edges, right=False, include_lowest=True)
        outside = int((numbers.notna() & binned.isna()).sum())
        if outside:
            problems.append(
                Problem(
                    f"{key}.fairness_bins", f"{outside:,} values lie outside the bins [{edges[0]:g}, {edges[-1]:g})"
                )
            )
        for interval, size in binned.value_counts(sort=False).items():
            if size < needed:
                limit_key, limit = _group_limit(size, policy)
                problems.append(
                    Problem(
                        f"{key}.fairness_bins",
                        f"group [{interval.left:g}, {interval.right:g}) has {size:,} rows, fewer than {limit_key} "
                        f"{limit}; move the edges",
                    )
                )
        return problems
    counts = values.dropna().value_counts()
    if col.allowed_values is None:
        small = int((counts < needed).sum())
        if small:
            problems.append(
                Problem(
                    f"{key}.allowed_values",
                    f"{small:,} of {len(counts):,} groups have fewer than {needed} rows; map them to fewer, larger "
                    "groups and declare them",
                )
            )
        return problems
    # The labels are the policy's own: naming them quotes the policy, not the data.
    for label in col.allowed_values:
        size = int(counts.get(label, 0))
        if size < needed:
            limit_key, limit = _group_limit(size, policy)
            problems.append(
                Problem(
                    limit_key,
                    f"group {name}={label!r} has {size:,} rows, fewer than {limit}; merge groups in the data or "
                    "lower the minimum knowingly",
                )
            )
    return problems


def _identifier_like(key: str, col: ColumnSpec, values: pd.Series) -> list[Problem]:
    """Direct identifiers in a column that leaves the raw layer: e-mails/phones, or near-unique values."""
    non_null = values.dropna()
    problems = []
    if col.dtype in (ColumnType.CATEGORY, ColumnType.STRING) and len(non_null):
        hits = int(non_null.astype(str).str.contains(IDENTIFIER_PATTERN, regex=True).sum())
        if hits:
            problems.append(
                Problem(
                    f"{key}.role",
                    f"{hits:,} values look like e-mail addresses or phone numbers; declare role: identifier",
                )
            )
    feature = col.role == ColumnRole.FEATURE or (col.role == ColumnRole.PROTECTED and col.use_as_feature)
    if not feature or len(non_null) < MIN_ROWS_FOR_UNIQUENESS:
        return problems
    share = non_null.nunique() / len(non_null)
    if col.dtype in (ColumnType.CATEGORY, ColumnType.STRING) and share > MAX_UNIQUE_SHARE_OF_TEXT_FEATURE:
        problems.append(
            Problem(f"{key}.role", f"{share:.0%} of values are distinct: it identifies rows; declare role: identifier")
        )
    elif (
        col.dtype == ColumnType.INTEGER
        and share == 1.0
        and len(non_null) == len(values)
        and pd.api.types.is_integer_dtype(values)
        and int(values.max()) - int(values.min()) + 1 == len(values)
    ):
        problems.append(
            Problem(
                f"{key}.role", "consecutive unique whole numbers: a row number or record id; declare role: identifier"
            )
        )
    return problems


def _target(spec: DataSpec, frame: pd.DataFrame) -> list[Problem]:
    """The target holds exactly its two declared labels, each often enough."""
    if spec.target not in frame.columns:
        return []
    labels = spec.columns[spec.target].allowed_values or []
    values = frame[spec.target].dropna()
    key = f"data.columns.{spec.target}.allowed_values"
    problems = []
    other = int((~values.isin(labels)).sum())
    if other:
        problems.append(
            Problem(
                key,
                f"{other:,} labels ({values[~values.isin(labels)].nunique():,} distinct) are not among the declared "
                f"two; the target holds {values.nunique():,} distinct labels",
            )
        )
    absent = [label for label in labels if label not in set(values)]
    if absent:
        problems.append(Problem(key, f"declared label(s) {absent} never occur: a binary target needs both"))
    if spec.min_class_share and len(values):
        shares = values.value_counts(normalize=True)
        for label in labels:
            share = float(shares.get(label, 0.0))
            if label not in absent and share < spec.min_class_share:
                problems.append(
                    Problem(
                        "data.min_class_share",
                        f"label {label!r} is {share:.1%} of the labels, below the declared {spec.min_class_share:.0%}",
                    )
                )
    return problems


def _record_key(spec: DataSpec, frame: pd.DataFrame) -> list[Problem]:
    if not spec.record_key or spec.record_key not in frame.columns:
        return []
    duplicated = int(frame[spec.record_key].duplicated(keep=False).sum())
    if duplicated:
        return [Problem("data.record_key", f"{duplicated:,} rows share their record key with another row")]
    return []


def _time(spec: DataSpec, frame: pd.DataFrame) -> list[Problem]:
    """Dates parse with the declared format, lie in the declared window, and the cutoff leaves rows to train."""
    name = spec.time_column
    problems: list[Problem] = []
    dated = [n for n, c in spec.columns.items() if c.date_format and n in frame.columns]
    for col_name in dated:
        col = spec.columns[col_name]
        values = frame[col_name]
        parsed = pd.to_datetime(values, format=col.date_format, errors="coerce")
        bad = int((values.notna() & parsed.isna()).sum())
        key = f"data.columns.{col_name}"
        if bad:
            problems.append(Problem(f"{key}.date_format", f"{bad:,} values do not parse as {col.date_format!r}"))
        for bound, outside in (
            ("min_date", parsed < pd.Timestamp(col.min_date) if col.min_date else None),
            ("max_date", parsed >= pd.Timestamp(col.max_date) + pd.Timedelta(days=1) if col.max_date else None),
        ):
            if outside is not None and outside.any():
                problems.append(
                    Problem(f"{key}.{bound}", f"{int(outside.sum()):,} dates lie outside the declared {bound}")
                )
    if not name or name not in frame.columns or spec.training_cutoff is None:
        return problems
    col = spec.columns[name]
    if col.is_numeric:
        times, cutoff = pd.to_numeric(frame[name], errors="coerce"), spec.training_cutoff
    else:
        times = pd.to_datetime(frame[name], format=col.date_format, errors="coerce")
        cutoff = pd.Timestamp(spec.training_cutoff)
    past = times <= cutoff
    if int(past.sum()) < 2:
        problems.append(Problem("data.training_cutoff", f"only {int(past.sum()):,} rows are at or before the cutoff"))
    elif spec.target in frame.columns:
        labels = spec.columns[spec.target].allowed_values or []
        rarest = frame.loc[past, spec.target].value_counts().reindex(labels, fill_value=0).min()
        if rarest < 2:
            problems.append(
                Problem("data.training_cutoff", f"a label class has {rarest} row(s) at or before the cutoff; 2 needed")
            )
    return problems


def _extra_expectations(spec: DataSpec, home: Path) -> list[Problem]:
    """The hand-written expectations file loads (its expectations run in the pipeline, not here)."""
    from mlcomops_assets.lib.rules import load_extra_rules
    from mlcomops_assets.policy import PolicyError

    if not spec.extra_expectations:
        return []
    try:
        load_extra_rules(home / spec.extra_expectations)
    except PolicyError as exc:
        return [Problem("data.extra_expectations", str(exc).removeprefix("data.extra_expectations: "))]
    return []


def report(result: CheckResult, policy_path: Path) -> str:
    """The check's outcome as text for a person."""
    head = f"{policy_path}: checked against {result.source} ({result.rows:,} rows, {result.columns} columns)"
    if not result.problems:
        return f"{head}\nno problems"
    lines = [head, f"{len(result.problems)} problem(s):"]
    lines += [f"  - {problem}" for problem in result.problems]
    return "\n".join(lines)
