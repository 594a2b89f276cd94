"""A commented first draft of ``governance.yaml``, inferred from one data file (``mlcomops policy init``).

Pure pandas, no Dagster. Each column gets a role, a type and a contract (range, labels, missing share)
inferred from the data, and every inferred choice is written with a comment saying why and what to
confirm; what a person must decide is marked ``# REVIEW:`` or ``# TODO:``. The draft is YAML text built
line by line (PyYAML cannot write comments) and is validated with the policy schema before it is
returned, so a draft that ``load_policy`` would refuse is never written.

The draft never quotes a cell of an identifier or high-cardinality column: it holds column names,
types, counts, ranges rounded outward and the labels of low-cardinality columns only. The one value
taken from a high-cardinality column is the proposed ``training_cutoff``, which the schema requires and
which is rounded to a month end where the data allows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlcomops_assets.lib.rules import IDENTIFIER_PATTERN, MAX_UNIQUE_SHARE_OF_TEXT_FEATURE
from mlcomops_assets.policy import (
    ColumnRole,
    ColumnType,
    DocumentationSpec,
    EvaluationGate,
    GatesSpec,
    MonitoringSpec,
    PolicyError,
    parse_policy,
)

# A text column with at most this many distinct values is a category and its labels are listed.
MAX_CATEGORY_VALUES = 20
# A text column is date-like when this share of its values parse with one date format.
MIN_DATE_SHARE = 0.95
# Text this long (median characters) is free text: it may name or describe people.
FREE_TEXT_LENGTH = 40
MIN_GROUP_SIZE = 30
# The training cutoff keeps about three quarters of the rows for training, and at most this share.
MAX_TRAINING_SHARE = 0.8
DEFAULT_SEED = 20240601

# Column-name tokens that suggest a direct identifier (matched against whole tokens of the name).
IDENTIFIER_TOKENS = {
    "name", "fullname", "firstname", "lastname", "surname", "forename", "username", "login",
    "email", "mail", "phone", "mobile", "telephone", "tel", "fax",
    "id", "uuid", "guid", "ssn", "nino", "passport", "ticket", "iban", "account", "card", "licence", "license",
    "address", "street", "ip", "dob", "birth", "birthdate", "birthday",
}  # fmt: skip
# Identify a person in combination with other columns: kept, never a feature.
QUASI_IDENTIFIER_TOKENS = {"postcode", "zip", "zipcode", "postal", "postalcode"}
# Protected attributes (GDPR Art. 9, equality law); the prefixes catch citizenship, marital_status...
PROTECTED_TOKENS = {
    "sex", "gender", "age", "race", "ethnicity", "ethnic", "colour", "color", "skin", "nationality",
    "religion", "religious", "disability", "disabled", "orientation", "caste", "pregnant", "pregnancy",
}  # fmt: skip
PROTECTED_PREFIXES = ("citizen", "marital", "pregnan", "relig", "ethnic", "disab")
TARGET_NAMES = {
    "target", "label", "outcome", "y", "class", "default", "decision", "approved", "approval",
    "result", "response", "churn", "survived", "released", "fraud",
}  # fmt: skip
# A 0/1 target with one of these names most likely marks the unfavourable event with 1.
UNFAVOURABLE_TOKENS = {"default", "defaulted", "churn", "churned", "fraud", "risk", "bad", "failure", "dropout"}
FAVOURABLE_LABELS = {
    "1", "yes", "y", "true", "approved", "approve", "accepted", "accept", "granted", "released", "pass",
    "passed", "good", "hired", "admitted", "success", "positive", "repaid", "paid",
}  # fmt: skip
TIME_TOKENS = {"date", "time", "timestamp", "datetime", "day", "month", "year", "period"}
DATE_FORMATS = [
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%Y-%m",
]
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Plain words YAML 1.1 reads as booleans or null: such keys are quoted.
_YAML_WORDS = {"yes", "no", "true", "false", "on", "off", "null", "y", "n", "~"}


class DraftError(ValueError):
    """The file cannot be drafted from (unreadable, no target, target not binary); the message says why."""


@dataclass
class ColumnDraft:
    """What is proposed for one column, and the comments that explain it."""

    name: str
    role: ColumnRole
    why: str
    dtype: ColumnType | None = None
    dtype_note: str = ""
    allowed_values: list[str] | None = None
    values_note: str = ""
    min: float | None = None
    max: float | None = None
    null_share: float = 0.0
    fairness_bins: list[float] | None = None
    bins_note: str = ""
    date_format: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Draft:
    """The inferred policy, before it is written as commented YAML."""

    name: str
    source_path: str
    allowed_roots: list[str]
    rows: int
    columns: list[ColumnDraft]
    target: str
    target_why: str
    positive_label: str
    positive_why: str
    time_column: str | None = None
    training_cutoff: int | float | dt.date | None = None
    cutoff_note: str = ""
    record_key_hint: str | None = None
    min_class_share: float = 0.05
    majority_share: float = 0.5  # of the target's labels: the accuracy of always deciding the same

    def column(self, name: str) -> ColumnDraft:
        return next(c for c in self.columns if c.name == name)


# ----------------------------------------------------------------------------------------------------
# Reading


def read_table(path: Path) -> pd.DataFrame:
    """The file as the pipeline's reader sees it before a policy exists: pandas infers the types."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DraftError(f"{path.name}: expected a .csv or .parquet file")
    if not path.is_file():
        raise DraftError(f"file not found: {path}")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        # utf-8-sig, like the pipeline's reader: it drops the byte-order mark of spreadsheet exports.
        return pd.read_csv(path, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DraftError(f"{path.name} is not a readable {suffix.lstrip('.')} file: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """Why reading failed, without quoting the file's contents (library messages may hold a cell)."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (undecodable bytes at offset {exc.start}); convert the file to UTF-8"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, pd.errors.ParserError | pd.errors.EmptyDataError):
        return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return type(exc).__name__


def _text_as_read(path: Path, columns: list[str]) -> pd.DataFrame:
    """Columns of a CSV file as raw text, as the pipeline reads columns declared category/string."""
    return pd.read_csv(path, encoding="utf-8-sig", usecols=columns, dtype=str)


# ----------------------------------------------------------------------------------------------------
# Names


def name_tokens(name: str) -> list[str]:
    """The lower-case words of a column name: ``customerID`` -> customer, id; ``e-mail`` -> e, mail."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def _compact(name: str) -> str:
    return "".join(name_tokens(name))


def _matches(name: str, tokens: set[str], prefixes: tuple[str, ...] = ()) -> str | None:
    """The token of ``name`` found in ``tokens`` (or starting with a prefix), else None."""
    words = name_tokens(name)
    for word in [*words, _compact(name)]:
        if word in tokens or (prefixes and word.startswith(prefixes)):
            return word
    return None


def dataset_name(stem: str) -> str:
    """A policy-safe dataset name (``^[A-Za-z][A-Za-z0-9_]*$``) from a file stem."""
    cleaned = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]", "_", stem)).strip("_")
    if not cleaned:
        return "dataset"
    return cleaned if cleaned[0].isalpha() else f"data_{cleaned}"


# ----------------------------------------------------------------------------------------------------
# Values


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)


def _label(value: object) -> str:
    """A label as text, spelled the way the pipeline reads it (0/1 stay "0"/"1", never "1.0")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _labels_by_frequency(series: pd.Series) -> list[str]:
    counts = series.dropna().map(_label).value_counts()
    return sorted(counts.index, key=lambda v: (-counts[v], v))


def _date_format(series: pd.Series) -> tuple[str, float] | None:
    """The date format most values parse with, and the share that do, if that share is high enough."""
    values = series.dropna().astype(str)
    if values.empty:
        return None
    sample = values.sample(min(len(values), 1000), random_state=0)
    best = max(
        ((fmt, pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean()) for fmt in DATE_FORMATS),
        key=lambda pair: pair[1],
    )
    if best[1] < MIN_DATE_SHARE:
        return None
    share = float(pd.to_datetime(values, format=best[0], errors="coerce").notna().mean())
    return (best[0], share) if share >= MIN_DATE_SHARE else None


def _nice_step(width: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``width``."""
    if width <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(width))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= width * (1 - 1e-9))


def _tidy(value: float) -> float | int:
    """Drop binary noise (0.30000000000000004) and write whole numbers as integers."""
    value = round(value, 10)
    return int(value) if float(value).is_integer() else value


def outward_range(values: pd.Series, integer: bool) -> tuple[float | int, float | int]:
    """The observed range widened to round numbers (one significant digit of the spread), so values
    a little beyond the file's range are not refused on day one and no exact cell value is written."""
    low, high = float(values.min()), float(values.max())
    spread = high - low or abs(high) or 1.0
    step = 10 ** math.floor(math.log10(spread))
    if integer:
        step = max(step, 1)
    return _tidy(math.floor(low / step) * step), _tidy(math.ceil(high / step) * step)


def null_fraction_ceiling(share: float, batch_rows: int = MonitoringSpec().min_batch_rows) -> float:
    """The observed missing share plus three standard deviations of that share in the smallest batch the
    policy accepts, rounded up to a whole percent (0 stays 0). Without the margin, a production batch
    drawn from the very same data fails for sampling noise alone (seen: 7.7% in the file, 10.3% in a
    300-row batch); a column that breaks (half missing) is still refused."""
    if share <= 0:
        return 0.0
    margin = 3 * math.sqrt(share * (1 - share) / batch_rows)
    return min(1.0, math.ceil((share + margin) * 100 - 1e-9) / 100)


def _group_sizes(values: pd.Series, edges: list[float]) -> list[int]:
    """Rows per bin, bins right-open ``[a, b)`` like the fairness analysis."""
    binned = pd.cut(values, bins=edges, right=False, include_lowest=True)
    return [int(n) for n in binned.value_counts(sort=False).tolist()]


def propose_bins(
    values: pd.Series, low: float, high: float, min_size: int = MIN_GROUP_SIZE
) -> tuple[list[float], list[int]]:
    """Fairness bins for a numeric protected attribute: edges at quantiles, rounded to round numbers,
    covering the declared range ``[low, high]``; the most groups (4, 3 or 2) whose every group holds
    ``min_size`` rows. Returns the edges and the rows per group."""
    data = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    step = _nice_step((high - low) / 20 or 1.0)
    last = _tidy(math.floor(high / step) * step + step)  # bins are right-open: the last edge exceeds max
    fallback: tuple[list[float], list[int]] | None = None
    for groups in (4, 3, 2):
        inner = data.quantile([i / groups for i in range(1, groups)]).tolist() if len(data) else []
        cuts = sorted({_tidy(round(q / step) * step) for q in inner if low < round(q / step) * step < high})
        edges = [_tidy(low), *cuts, last]
        if len(edges) < 3:
            continue
        sizes = _group_sizes(data, edges)
        if all(n >= min_size for n in sizes):
            return edges, sizes
        fallback = fallback or (edges, sizes)
    if fallback is None:  # a constant column: two groups, one of them empty; the comment says so
        middle = _tidy((low + last) / 2) if last - low > step else _tidy(low + step / 2)
        edges = [_tidy(low), middle, last]
        fallback = (edges, _group_sizes(data, edges))
    return fallback


def _round_1sig(value: float, up: bool) -> int:
    if value < 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return int((math.ceil if up else math.floor)(value / power) * power)


def class_share_floor(labels: pd.Series) -> float:
    """5% per label class, or the rarer class's current share rounded down when it is rarer than that."""
    shares = labels.dropna().value_counts(normalize=True)
    rarest = float(shares.min()) if len(shares) else 0.0
    return 0.05 if rarest >= 0.05 else math.floor(rarest * 100 + 1e-9) / 100


def row_bounds(rows: int) -> tuple[int, int]:
    """Row-count bounds the current file satisfies: a tenth of it (at least 100 or all of it) up to ten times it."""
    low = max(min(100, rows), _round_1sig(rows / 10, up=False)) if rows else 1
    high = max(_round_1sig(rows * 10, up=True), low, rows)
    return max(1, low), high


# ----------------------------------------------------------------------------------------------------
# Inference


def find_target(frame: pd.DataFrame, given: str | None) -> tuple[str, str]:
    """The target column and why it was chosen; ``DraftError`` asking for ``--target`` when unclear."""
    columns = [str(c) for c in frame.columns]
    if given is not None:
        if given not in columns:
            raise DraftError(f"--target {given!r} is not a column of the file; columns: {columns}")
        return given, "given with --target"
    exact = [c for c in columns if _compact(c) in TARGET_NAMES]
    partial = [c for c in columns if name_tokens(c) and name_tokens(c)[-1] in TARGET_NAMES]
    for found in (exact, partial):
        if len(found) == 1:
            return found[0], "named like a target; REVIEW: pass --target if this is not the decision to learn"
        if len(found) > 1:
            raise DraftError(f"several columns could be the target {found}; choose one with --target COL")
    raise DraftError(
        f"no column is named like a target (e.g. target, label, outcome); pass --target COL. Columns: {columns}"
    )


def _positive_label(target: str, labels: list[str], counts: pd.Series) -> tuple[str, str]:
    lowered = {label.lower(): label for label in labels}
    if set(lowered) == {"0", "1"} and _matches(target, UNFAVOURABLE_TOKENS):
        return "0", f"'{target}' = 1 most likely marks the unfavourable event, so 0 is proposed"
    favourable = [lowered[v] for v in lowered if v in FAVOURABLE_LABELS]
    if len(favourable) == 1:
        return favourable[0], "reads as the favourable label"
    rare = min(labels, key=lambda v: (counts[v], v))
    return rare, "no label reads as favourable: the rarer one is proposed"


def _describe_target(frame: pd.DataFrame, target: str, text: pd.Series) -> tuple[ColumnDraft, str, str]:
    values = text.dropna().map(_label)
    counts = values.value_counts()
    if len(counts) != 2:
        raise DraftError(
            f"target {target!r} has {len(counts)} distinct value(s); a binary decision with exactly two labels is "
            "needed (recode it, or choose another column with --target)"
        )
    labels = sorted(counts.index, key=lambda v: (-counts[v], v))
    positive, why = _positive_label(target, labels, counts)
    numeric = pd.api.types.is_numeric_dtype(frame[target]) and not pd.api.types.is_bool_dtype(frame[target])
    shares = ", ".join(f'"{v}" {counts[v] / counts.sum():.1%}' for v in labels)
    column = ColumnDraft(
        name=target,
        role=ColumnRole.TARGET,
        why="the decision to learn",
        dtype=ColumnType.INTEGER if numeric else ColumnType.CATEGORY,
        dtype_note="0/1 labels, validated as the two labels" if numeric else "two labels",
        allowed_values=labels,
        values_note=f"label shares: {shares}",
        null_share=float(frame[target].isna().mean()),
    )
    return column, positive, why


def _identifier_by_name(name: str, distinct: int, rows: int) -> str | None:
    """Why the name makes a column a direct identifier, or None. The name is weighed with the data: a
    name match on a column with few distinct values (``email_verified``) is not an identifier."""
    token = _matches(name, IDENTIFIER_TOKENS)
    if token and (distinct > MAX_CATEGORY_VALUES or distinct > rows / 2):
        return f"the name ('{token}') suggests a direct identifier"
    return None


def _identifier_by_values(series: pd.Series, distinct: int, rows: int) -> str | None:
    """Why the values make a column a direct identifier, or None. Runs after date detection: an ISO
    date looks like a phone number to the identifier pattern."""
    non_null = series.dropna()
    if _is_text(series) and len(non_null) and distinct > MAX_CATEGORY_VALUES:
        text = non_null.astype(str)
        # The data contract refuses any e-mail or phone number in a text feature, so one is enough.
        pattern_hits = int(text.str.contains(IDENTIFIER_PATTERN, regex=True).sum())
        if pattern_hits:
            return f"{pattern_hits:,} values look like e-mail addresses or phone numbers"
        if distinct / len(non_null) > MAX_UNIQUE_SHARE_OF_TEXT_FEATURE:
            return f"near-unique text ({distinct / len(non_null):.0%} of values distinct)"
        if text.str.len().median() >= FREE_TEXT_LENGTH:
            return "free text (long values) may name or describe people"
    if (
        pd.api.types.is_integer_dtype(series)
        and rows >= 20
        and distinct == rows
        and int(series.max()) - int(series.min()) + 1 == rows
    ):
        return "consecutive unique whole numbers: a row number or record id"
    return None


def _numeric_contract(column: ColumnDraft, series: pd.Series) -> None:
    integer = pd.api.types.is_integer_dtype(series)
    column.dtype = ColumnType.INTEGER if integer else ColumnType.FLOAT
    if not integer and series.dropna().map(float).map(float.is_integer).all() and series.isna().any():
        column.dtype_note = "whole numbers with gaps: read as float because of the missing values"
    else:
        column.dtype_note = f"read as {series.dtype}"
    if series.notna().any():
        column.min, column.max = outward_range(series.dropna(), integer)


def _text_contract(column: ColumnDraft, series: pd.Series, distinct: int, rows: int) -> None:
    if distinct <= MAX_CATEGORY_VALUES and distinct <= max(rows / 2, 2):
        column.dtype = ColumnType.CATEGORY
        column.allowed_values = _labels_by_frequency(series)
        column.dtype_note = f"{distinct} distinct values"
        column.values_note = "a value not listed here is refused; add new labels deliberately"
    else:
        column.dtype = ColumnType.STRING
        column.dtype_note = f"{distinct:,} distinct values: free text, one-hot encoded if used as a feature"
        column.notes.append("REVIEW: many distinct values; consider role: ignored or grouping them into a category")


def _year_like(name: str, series: pd.Series) -> bool:
    if not pd.api.types.is_integer_dtype(series) or _matches(name, {"year", "yr"}) is None:
        return False
    values = series.dropna()
    return values.nunique() >= 2 and values.between(1000, 3000).all()


def _cutoff(frame: pd.DataFrame, name: str, date_format: str | None) -> tuple[int | dt.date, str]:
    """A training cutoff near the 75th percentile of time, so about a quarter of rows become production."""
    series = frame[name]
    if date_format is None:
        # The last value with at most 80% of rows up to it (never the last value: production needs rows).
        cumulative = series.dropna().value_counts(normalize=True).sort_index().cumsum()
        candidates = cumulative.iloc[:-1]
        within = candidates[candidates <= MAX_TRAINING_SHARE + 1e-9]
        cutoff = int(within.index[-1] if len(within) else candidates.index[0])
        return cutoff, f"{float(cumulative[cutoff]):.0%} of rows have {name} <= {cutoff}"
    times = pd.to_datetime(series, format=date_format, errors="coerce").dropna()
    quantile = times.quantile(0.75)
    month_end = (quantile.normalize().replace(day=1) - pd.Timedelta(days=1)).date()
    for candidate in (month_end, quantile.date()):
        share = float((times <= pd.Timestamp(candidate)).mean())
        if 0.5 <= share <= MAX_TRAINING_SHARE:
            return candidate, f"{share:.0%} of rows are on or before it"
    candidate = quantile.date()
    return candidate, f"{float((times <= pd.Timestamp(candidate)).mean()):.0%} of rows are on or before it"


def infer_draft(
    frame: pd.DataFrame,
    *,
    name: str,
    source_path: str,
    allowed_roots: list[str] | None = None,
    target: str | None = None,
    source_format: str = "csv",
    text_of: dict[str, pd.Series] | None = None,
) -> Draft:
    """Infer a draft policy from ``frame``.

    ``text_of`` holds, for columns pandas read as numbers or booleans but that are declared as labels
    (a 0/1 target), their raw text as the pipeline will read it; without it labels are formatted.
    """
    if frame.empty or not len(frame.columns):
        raise DraftError("the file has no rows or no columns: nothing to infer a policy from")
    frame = frame.rename(columns=str)
    rows = len(frame)
    target_name, target_why = find_target(frame, target)
    text_of = text_of or {}
    target_column, positive, positive_why = _describe_target(
        frame, target_name, text_of.get(target_name, frame[target_name])
    )
    columns: list[ColumnDraft] = []
    dates: dict[str, tuple[str, float]] = {}
    years: list[str] = []
    record_key_hint = None
    for col in frame.columns:
        if col == target_name:
            columns.append(target_column)
            continue
        series = frame[col]
        distinct = int(series.nunique(dropna=True))
        column = ColumnDraft(name=col, role=ColumnRole.FEATURE, why="", null_share=float(series.isna().mean()))
        columns.append(column)
        if series.isna().all():
            column.role, column.why = ColumnRole.IGNORED, "REVIEW: every value is missing"
            continue
        reason = _identifier_by_name(col, distinct, rows)
        if reason is None and (
            pd.api.types.is_datetime64_any_dtype(series)
            or (pd.api.types.is_bool_dtype(series) and source_format == "parquet")
        ):
            # The data contract knows numbers and text; Parquet timestamps/booleans fail its type rule.
            column.role = ColumnRole.IGNORED
            column.why = f"REVIEW: stored as {series.dtype}, which the data contract cannot check; store it as text"
            continue
        if reason is None and _is_text(series):
            found = _date_format(series)
            if found:
                dates[col] = found
                continue  # role decided once every column is seen (one time column at most)
        reason = reason or _identifier_by_values(series, distinct, rows)
        if reason:
            column.role, column.why = ColumnRole.IDENTIFIER, f"REVIEW: {reason}; dropped before the validated layer"
            column.notes.append("to keep a keyed pseudonym instead: treatment: pseudonymize (and dtype: string)")
            if distinct == rows and record_key_hint is None:
                record_key_hint = col
            continue
        if _year_like(col, series):
            years.append(col)
        _assign_role(column, col, series, distinct, rows, text_of)
    time_column = _choose_time(dates, years)
    draft = Draft(
        name=name,
        source_path=source_path,
        allowed_roots=allowed_roots or [],
        rows=rows,
        columns=columns,
        target=target_name,
        target_why=target_why,
        positive_label=positive,
        positive_why=positive_why,
        record_key_hint=record_key_hint,
        min_class_share=class_share_floor(text_of.get(target_name, frame[target_name])),
        majority_share=float(text_of.get(target_name, frame[target_name]).value_counts(normalize=True).max()),
    )
    for col, (fmt, share) in dates.items():
        column = draft.column(col)
        if col == time_column:
            column.role, column.dtype, column.date_format = ColumnRole.TIME, ColumnType.STRING, fmt
            column.why = f"REVIEW: {share:.0%} of values are dates ({fmt}); it orders rows in time"
            column.dtype_note = "dates held as text"
        else:
            column.role = ColumnRole.IGNORED
            column.why = (
                f"REVIEW: a second date column ({share:.0%} parse as {fmt}); derive features from it by hand if needed"
            )
    if time_column in years:
        column = draft.column(time_column)
        column.role, column.why = ColumnRole.TIME, "REVIEW: named like a year; it orders rows in time"
    if time_column:
        draft.time_column = time_column
        date_format = dates[time_column][0] if time_column in dates else None
        draft.training_cutoff, draft.cutoff_note = _cutoff(frame, time_column, date_format)
    if not any(c.role == ColumnRole.FEATURE for c in columns):
        raise DraftError(
            "no column could be proposed as a feature (every column is the target, an identifier, protected, a "
            "time or ignored); write the policy by hand from governance.yaml"
        )
    return draft


def _assign_role(
    column: ColumnDraft, col: str, series: pd.Series, distinct: int, rows: int, text_of: dict[str, pd.Series]
) -> None:
    """Role and contract of a column that is neither the target nor an identifier nor a date."""
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numeric:
        _numeric_contract(column, series)
    else:
        _text_contract(column, text_of.get(col, series.map(_label, na_action="ignore")), distinct, rows)
    protected = _matches(col, PROTECTED_TOKENS, PROTECTED_PREFIXES)
    quasi = _matches(col, QUASI_IDENTIFIER_TOKENS)
    if protected:
        column.role = ColumnRole.PROTECTED
        column.why = (
            f"REVIEW: the name ('{protected}') suggests a protected attribute: fairness analysis only, not a "
            "model feature (set use_as_feature: true with a justification to use it)"
        )
        if numeric:
            low, high = column.min, column.max
            column.fairness_bins, sizes = propose_bins(series, low, high)
            column.bins_note = (
                f"REVIEW: groups [a, b) for the fairness analysis, at quantiles, rows per group: {sizes}"
                + ("" if min(sizes) >= MIN_GROUP_SIZE else f"; some groups have fewer than {MIN_GROUP_SIZE} rows")
            )
        elif column.allowed_values:
            smallest = int(series.value_counts().min())
            if smallest < MIN_GROUP_SIZE:
                column.notes.append(
                    f"REVIEW: the smallest group has {smallest} rows, fewer than {MIN_GROUP_SIZE}: merge groups "
                    "or lower the minimum group sizes knowingly"
                )
        else:
            column.notes.append("REVIEW: many groups; map them to a few larger groups before the fairness analysis")
    elif quasi:
        column.role = ColumnRole.QUASI_IDENTIFIER
        column.why = f"REVIEW: the name ('{quasi}') suggests a quasi-identifier: kept, never a model feature"
    else:
        column.why = "a model input"
        if _matches(col, IDENTIFIER_TOKENS):
            column.notes.append(
                f"REVIEW: the name suggests an identifier, but there are only {distinct} distinct values"
            )


def _choose_time(dates: dict[str, tuple[str, float]], years: list[str]) -> str | None:
    """One time column at most: a date column named like a time first, then any date column, then a year."""
    named = [c for c in dates if _matches(c, TIME_TOKENS)]
    for candidates in (named, list(dates), years):
        if candidates:
            return candidates[0]
    return None


# ----------------------------------------------------------------------------------------------------
# Writing


def _key(name: str) -> str:
    return name if _PLAIN_KEY.match(name) and name.lower() not in _YAML_WORDS else json.dumps(name)


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return f"{value:.1f}"
        text = f"{value:.10f}".rstrip("0")
        return text if not text.endswith(".") else text + "0"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _line(indent: int, text: str, comment: str = "") -> str:
    body = "  " * indent + text
    if not comment:
        return body
    return f"{body.ljust(40)}  # {' '.join(comment.split())}"


def _column_lines(column: ColumnDraft) -> list[str]:
    lines = [_line(2, f"{_key(column.name)}:"), _line(3, f"role: {column.role.value}", column.why)]
    for note in column.notes:
        lines.append(_line(3, f"# {note}"))
    if column.dtype is None:
        return lines  # dropped: only its presence is part of the contract
    lines.append(_line(3, f"dtype: {column.dtype.value}", column.dtype_note))
    if column.date_format:
        lines.append(_line(3, f"date_format: {_scalar(column.date_format)}", "REVIEW: the format the dates follow"))
    if column.allowed_values is not None:
        lines.append(_line(3, f"allowed_values: {_scalar(column.allowed_values)}", column.values_note))
    if column.min is not None:
        lines.append(
            _line(3, f"min: {_scalar(column.min)}", "observed range rounded outward; values outside are refused")
        )
        lines.append(_line(3, f"max: {_scalar(column.max)}"))
    declared = null_fraction_ceiling(column.null_share)
    note = (
        f"{column.null_share:.1%} missing now, plus room for batch-to-batch variation; more missing is refused"
        if column.null_share
        else "no missing values now"
    )
    lines.append(_line(3, f"max_null_fraction: {_scalar(declared)}", note))
    if column.fairness_bins is not None:
        lines.append(_line(3, f"fairness_bins: {_scalar(column.fairness_bins)}", column.bins_note))
    return lines


# What each gate section is about, where its schema class has no docstring.
_SECTION_NOTES = {
    "evaluation": "minimum quality of the model on the holdout",
    "fairness": "largest gaps allowed between groups of each protected attribute",
    "drift": "how production batches are compared with the training data",
}


def _model_lines(model: object, indent: int) -> list[str]:
    """A pydantic model's values as YAML lines, each commented with its schema description."""
    from pydantic import BaseModel

    lines = []
    fields = type(model).model_fields
    for key in fields:
        value = getattr(model, key)
        comment = fields[key].description or ""
        if isinstance(value, BaseModel):
            doc = (type(value).__doc__ or "").strip().splitlines()
            lines.append(_line(indent, f"{key}:", comment or _SECTION_NOTES.get(key, doc[0] if doc else "")))
            lines.extend(_model_lines(value, indent + 1))
        else:
            if key == "intersections":
                comment = "REVIEW: e.g. [[sex, age]] to also analyse groups that combine protected attributes"
            lines.append(_line(indent, f"{key}: {_scalar(value)}", comment))
    return lines


def _draft_gates(draft: Draft) -> GatesSpec:
    """The project's gates, with an accuracy floor for this data: a model must be at least as accurate as
    always deciding the majority label (rounded down), which the project's default (0.75) may not say."""
    floor = math.floor(draft.majority_share * 100) / 100
    return GatesSpec(evaluation=EvaluationGate(min_accuracy=floor))


def render(draft: Draft, source_label: str, today: dt.date | None = None) -> str:
    """The draft as commented YAML text."""
    today = today or dt.date.today()
    cutoff = draft.training_cutoff
    lines = [
        f"# Draft governance policy for {source_label}, written by `mlcomops policy init` on {today.isoformat()}.",
        "# Every inferred choice carries a comment saying why. Lines marked REVIEW or TODO need a person's",
        "# decision: confirm or change them, then run `mlcomops policy check` to test the policy against the data.",
        "# Nothing here quotes a value of an identifier or high-cardinality column: only column names, types,",
        "# counts, ranges rounded outward and the labels of low-cardinality columns.",
        "version: 1",
        _line(0, 'owner: "team:<fill-in>"', "TODO: the accountable team (team:<name>) or an e-mail address"),
        _line(0, f"seed: {DEFAULT_SEED}", "one seed for splits, models and samples; changing it changes results"),
        "",
        "data:",
        _line(1, f"name: {_scalar(draft.name)}", "from the file name"),
        _line(1, 'description: ""', "TODO: what one row is, where the data comes from"),
        _line(1, 'purpose: "TODO: the decision this model supports, for whom and why"', "TODO"),
        _line(1, 'legal_basis: "TODO: e.g. GDPR Art. 6(1)(b) - contract"', "TODO: confirm with the DPO"),
        "  source:",
        "    kind: file",
    ]
    if draft.allowed_roots:
        lines.append(_line(2, f"path: {_scalar(draft.source_path)}", "outside the project home: absolute"))
        lines.append(_line(2, f"allowed_roots: {_scalar(draft.allowed_roots)}", "the folder the file may lie in"))
    else:
        lines.append(_line(2, f"path: {_scalar(draft.source_path)}", "relative to the project home"))
    lines.append(_line(1, f"target: {_scalar(draft.target)}", draft.target_why))
    lines.append(
        _line(
            1,
            f"positive_label: {_scalar(draft.positive_label)}",
            f"REVIEW: confirm which label is the favourable outcome ({draft.positive_why})",
        )
    )
    if draft.time_column:
        lines.append(_line(1, f"time_column: {_scalar(draft.time_column)}", "orders rows in time"))
        lines.append(
            _line(
                1,
                f"training_cutoff: {_scalar(cutoff)}",
                f"REVIEW: {draft.cutoff_note}; they train the model, later rows become production batches",
            )
        )
    else:
        lines.append("  # no time column: stratified split, batches from the inbox (monitoring.inbox)")
    low, high = row_bounds(draft.rows)
    lines.append(
        _line(1, f"row_count: {{min: {low}, max: {high}}}", f"{draft.rows:,} rows now; a file outside is refused")
    )
    hint = (
        f"REVIEW: set record_key: {draft.record_key_hint} to refuse duplicated records" if draft.record_key_hint else ""
    )
    lines.append(_line(1, "record_key: null", hint or "no column identifies a record"))
    target = draft.column(draft.target)
    lines.append(_line(1, f"min_class_share: {_scalar(draft.min_class_share)}", target.values_note))
    lines.append(
        _line(1, f"min_group_size: {MIN_GROUP_SIZE}", "each group of each protected attribute has at least this many")
    )
    lines.append("  columns:")
    for column in draft.columns:
        lines.extend(_column_lines(column))
    lines += [
        "",
        "split:",
        _line(1, "holdout_fraction: 0.25", "rows kept aside (stratified by label) to evaluate and gate the model"),
        "  stratify: true",
        "",
        "model:",
        _line(1, f"registered_name: {_scalar(draft.name + '_model')}", "name in the MLflow model registry"),
        f"  experiment_name: {_scalar(draft.name)}",
        _line(1, "decision_threshold: 0.5", "REVIEW: score at or above which the favourable decision is made"),
        "  candidates:",
        "    logistic_regression:",
        "      estimator: logistic_regression",
        _line(3, "interpretable: true", "one coefficient per encoded feature: the explainable alternative"),
        "      params: {max_iter: 1000}",
        "      grid: {C: [0.01, 0.1, 1.0, 10.0]}",
        "    gradient_boosting:",
        "      estimator: gradient_boosting",
        "      params: {n_estimators: 150}",
        "      grid: {max_depth: [2, 3], learning_rate: [0.05, 0.1]}",
        "  selection:",
        "    metric: roc_auc",
        _line(2, "min_gain_for_complexity: 0.01", "the less explainable candidate must beat it by this much"),
        "",
        "monitoring:",
        _line(1, "inbox: data/inbox", "production batches arrive here as .csv or .parquet files"),
        "",
        "# The project's default thresholds; each is a decision to review with the accountable owner.",
        "gates:",
        *_model_lines(_draft_gates(draft), 1),
        "",
        "# Exceptions to a gate, each approved, reasoned and dated (see the project's governance.yaml).",
        "waivers: []",
        "",
        *_documentation_lines(),
    ]
    return "\n".join(lines) + "\n"


def _documentation_lines() -> list[str]:
    """The ``documentation:`` section, commented out: one line per provider statement, each saying what to
    write. Left like this, every statement is listed as open in the generated technical documentation."""
    lines = [
        "# What only the provider can state in the generated technical documentation (EU AI Act Annex IV) and",
        "# model card; every figure there comes from the evidence. A key left out is listed as open, never",
        "# filled in. TODO: write each statement, then uncomment the section and the keys you wrote.",
        "# documentation:",
    ]
    for key, spec in DocumentationSpec.model_fields.items():
        lines.append("# " + _line(1, f"{key}:", f"TODO: {spec.description or ''}"))
    return lines


def draft_text(
    frame: pd.DataFrame,
    *,
    name: str,
    source_path: str,
    source_label: str,
    allowed_roots: list[str] | None = None,
    target: str | None = None,
    source_format: str = "csv",
    text_of: dict[str, pd.Series] | None = None,
    today: dt.date | None = None,
) -> str:
    """The commented draft policy for ``frame``, validated with the policy schema."""
    draft = infer_draft(
        frame,
        name=name,
        source_path=source_path,
        allowed_roots=allowed_roots,
        target=target,
        source_format=source_format,
        text_of=text_of,
    )
    text = render(draft, source_label, today)
    validate_text(text)
    return text


def validate_text(text: str) -> None:
    """Refuse a draft the policy schema would refuse (a bug here, never the user's fault)."""
    import yaml

    try:
        parse_policy(yaml.safe_load(text), source="the generated draft")
    except PolicyError as exc:
        raise DraftError(f"internal error: {exc}") from None


def source_reference(path: Path, home: Path) -> tuple[str, list[str]]:
    """``data.source.path`` for ``path``: relative to the home when inside it, else absolute with its
    folder in ``allowed_roots`` (the source is confined to the home and the allowed roots)."""
    real, root = path.resolve(), home.resolve()
    if real.is_relative_to(root):
        return real.relative_to(root).as_posix(), []
    return str(real), [str(real.parent)]


def draft_from_file(path: Path, home: Path, target: str | None = None) -> str:
    """Read ``path`` and return its commented draft policy (``DraftError`` with the reason otherwise)."""
    frame = read_table(path).rename(columns=str)
    fmt = path.suffix.lower().lstrip(".")
    text_of: dict[str, pd.Series] = {}
    if fmt == "csv" and len(frame.columns):
        # A 0/1 target or a yes/no flag that pandas read as numbers or booleans is declared as labels,
        # and the pipeline reads label columns as text: read them again as text, so "01" stays "01".
        target_name, _ = find_target(frame, target)
        relabel = [c for c in frame.columns if pd.api.types.is_bool_dtype(frame[c])]
        if not _is_text(frame[target_name]):
            relabel.append(target_name)
        if relabel:
            text_of = dict(_text_as_read(path, relabel).items())
    source_path, roots = source_reference(path, home)
    return draft_text(
        frame,
        name=dataset_name(path.stem),
        source_path=source_path,
        source_label=path.name,
        allowed_roots=roots,
        target=target,
        source_format=fmt,
        text_of=text_of,
    )
