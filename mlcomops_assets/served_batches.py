"""Served decisions feed monitoring: the decision log becomes production batches in the inbox.

``served_decisions_sensor`` reads the scoring service's decision log (``lib/decision_log.DecisionLog``,
read API only) and writes the decisions of each complete UTC day as one Parquet file into the inbox
(``monitoring.inbox``), named ``served-<day>.parquet``. From there the existing path takes over: the
``inbox_sensor`` registers the file as a production batch and launches ``monitor_batch``, which validates
it with the data contract (or quarantines it), scores it with the champion and monitors drift, prediction
drift and outliers, and, on labeled rows, performance and fairness; the retraining sensor reads the
result like any other batch's. One path for every batch, so nothing downstream knows where a batch
came from, and ``make run`` and the daily schedule catch served batches up as they do inbox files.

What a served batch holds, column by column (``column_sources``), in the shape of the raw source the
contract expects:

- the **feature** columns as the service received and validated them (the decision's ``inputs``);
- the **protected attributes** the policy accepts for fairness monitoring
  (``serving.protected_for_monitoring``), as given with the application; any other protected value the
  log may hold is not exported, and a protected attribute the service may not keep is an empty column;
- an **identifier** only when the data contract requires it (monitoring needs none), as the log holds
  it: already pseudonymized (the inbox path pseudonymizes every file it reads, so the batch keeps a
  keyed pseudonym of that pseudonym: never a value in clear); every other identifier and the ignored
  columns are empty columns;
- the **time** column from the decision's time (UTC): its year for a numeric time column, its date in
  the column's ``date_format`` for a date;
- the **target** from the reported outcome, only in a batch whose every row has one: the contract then
  checks the labels, and monitoring adds performance and fairness. An unlabeled batch has no target
  column (the contract allows that; monitoring skips performance and fairness, saying so).

Decisions of another model than ``model.registered_name``, decisions whose inputs were blanked after
``serving.retention_days``, decisions whose inputs are not the policy's feature columns (the policy
changed since) and decisions without a value the contract requires are left out, counted by reason in
the sensor's message and log. When the policy names another data source than at the previous tick,
decisions made before are of the previous source: the export restarts at the next day.

**Batches and their size.** A day is complete five minutes after midnight UTC. Complete days are
accumulated until they hold ``monitoring.min_batch_rows`` usable decisions, so a quiet day is monitored
with the days after it (``served-2026-11-28_to_2026-11-30``) instead of being refused by the contract's
``batch_is_large_enough``; the days still short of it are reported as pending at every tick.

**Outcomes that arrive later.** Outcomes are reported after the decision (``POST /outcomes``), usually
after its day was exported unlabeled. Once an exported batch's decisions have ``min_batch_rows`` outcomes
that no earlier batch carried, the sensor writes a revision ``<batch>-r2`` (``-r3``, ...) holding exactly
those decisions, labeled. Each outcome so enters monitoring once: the labeled revisions of a batch are
disjoint, so performance and fairness are measured on every labeled decision once and retraining
(``retrain_window_batches``) never counts a row twice. The outcome scan runs at most hourly, per exported
batch, and stops for a batch once the service has blanked its inputs (``serving.retention_days``): nothing
could be exported then.

**Idempotent.** The cursor holds the first day not exported yet, every exported batch with its revision
and the time of its newest exported outcome; a day is exported once. The file is written atomically
(a hidden temporary file renamed into place, never a half-written batch), and identical content is
identical bytes, so a tick repeated after a crash rewrites the same file and the inbox sensor (keyed by
the file's MD5) does not launch it twice.

**Never silent.** A policy whose contract requires a column the service never keeps, a decision time
outside the time column's declared range (the default policy's ``year`` ends in 2002), a missing
pseudonym key or decision log: the sensor exports nothing past that point, advances nothing, and says
why in its skip reason at every tick, naming the key to change.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from mlcomops_assets.constants import SERVED_DECISIONS_SENSOR
from mlcomops_assets.lib.batches import inbox_files, source_identity
from mlcomops_assets.policy import ColumnRole, ColumnSpec, ColumnType, Policy
from mlcomops_assets.resources import ProjectResource

if TYPE_CHECKING:  # imported where used, so loading the code location does not import pandas
    import pandas as pd

    from mlcomops_assets.lib.decision_log import DecisionLog
    from mlcomops_assets.settings import ProjectPaths

KEY_PREFIX = "served-"
# A day is complete this long after midnight UTC: a decision stamped 23:59:59.9 commits a moment later.
GRACE = dt.timedelta(minutes=5)
OUTCOME_SCAN_EVERY = dt.timedelta(hours=1)
CURSOR_VERSION = 1

# Where each column of a served batch comes from.
INPUTS, PROTECTED, IDENTIFIERS, TIME, OUTCOME, EMPTY = "inputs", "protected", "identifiers", "time", "outcome", "empty"


# --- the batch frame (pure: no Dagster, no file) -------------------------------------------------


def column_sources(policy: Policy) -> dict[str, str]:
    """Every declared column, in the policy's order, with where a served batch takes its value from."""
    spec = policy.data
    features = set(spec.feature_columns)
    monitored = set(policy.serving.protected_for_monitoring)
    sources = {}
    for name, column in spec.columns.items():
        if name == spec.target:
            sources[name] = OUTCOME
        elif name == spec.time_column:
            sources[name] = TIME
        elif name in features:
            sources[name] = INPUTS
        elif column.role == ColumnRole.PROTECTED and name in monitored:
            sources[name] = PROTECTED
        elif column.pseudonymized and _required(column):
            # Monitoring needs no identifier: only one the contract requires leaves the log (as its pseudonym).
            sources[name] = IDENTIFIERS
        else:  # a protected attribute the service may not keep, an identifier, an ignored column
            sources[name] = EMPTY
    return sources


def _required(column: ColumnSpec) -> bool:
    """Whether the contract refuses a missing value in this column (a typed column without null allowance)."""
    return column.dtype is not None and column.max_null_fraction == 0


def configuration_problem(policy: Policy) -> str | None:
    """Why no served batch can pass this policy's contract, or None: a column the contract requires that
    the service never keeps."""
    never = [
        name
        for name, source in column_sources(policy).items()
        if source == EMPTY and _required(policy.data.columns[name])
    ]
    if not never:
        return None
    return (
        f"served decisions cannot become production batches: the data contract requires values in {never}, "
        "which the scoring service never keeps (a protected attribute is kept only when listed in "
        "serving.protected_for_monitoring; dropped identifiers and ignored columns never). List it there, "
        "or allow it to be missing (data.columns.<name>.max_null_fraction)"
    )


def time_value(moment: dt.datetime, column: ColumnSpec) -> Any:
    """The time column's value for a decision made at ``moment`` (UTC): its year for a numeric column,
    its date in the column's ``date_format`` (else ISO) for a date held as text."""
    moment = moment.astimezone(dt.UTC)
    if column.is_numeric:
        return moment.year
    return moment.strftime(column.date_format) if column.date_format else moment.date().isoformat()


def time_problem(value: Any, day: dt.date, name: str, column: ColumnSpec) -> str | None:
    """Why the contract would refuse the time ``value`` of the decisions of ``day``, or None."""
    outside = None
    if column.is_numeric and (
        (column.min is not None and value < column.min) or (column.max is not None and value > column.max)
    ):
        low, high = ("any" if x is None else f"{x:g}" for x in (column.min, column.max))
        outside, key = f"[{low}, {high}]", f"data.columns.{name}.min / max"
    elif column.min_date or column.max_date:
        if (column.min_date and day < column.min_date) or (column.max_date and day > column.max_date):
            outside, key = f"[{column.min_date}, {column.max_date}]", f"data.columns.{name}.min_date / max_date"
    elif column.allowed_values is not None and str(value) not in column.allowed_values:
        outside, key = "its allowed values", f"data.columns.{name}.allowed_values"
    if outside is None:
        return None
    return (
        f"the decisions of {day} carry {name}={value}, outside {outside}: the data contract would quarantine "
        f"their batch; widen {key} to monitor served decisions"
    )


def _unusable(record: Mapping[str, Any], policy: Policy, sources: Mapping[str, str], labeled: bool) -> str | None:
    """Why a decision cannot be a row of a served batch (a reason counted in the report), or None."""
    if record["model_name"] != policy.model.registered_name:
        return f"made by another model than {policy.model.registered_name}"
    inputs = record["inputs"]
    if inputs is None:
        return "inputs blanked after serving.retention_days"
    if set(inputs) != set(policy.data.feature_columns):
        return "inputs of other feature columns than the policy's (the policy changed since)"
    if labeled and record.get("outcome") is None:
        return "no outcome reported"
    for name, source in sources.items():
        given = (record.get(source) or {}).get(name) if source in (PROTECTED, IDENTIFIERS) else True
        if given is None and _required(policy.data.columns[name]):
            return f"no value for '{name}', which the data contract requires"
    return None


@dataclass
class BatchFrame:
    """A served batch: the frame in the contract's columns, and the decisions left out by reason."""

    frame: pd.DataFrame
    left_out: dict[str, int] = field(default_factory=dict)
    labeled: bool = False
    last_outcome_at: dt.datetime | None = None  # the newest outcome time among its rows (labeled only)
    seqs: tuple[int, int] | None = None  # first and last decision sequence number exported


def batch_frame(records: Sequence[Mapping[str, Any]], policy: Policy, labeled: bool = False) -> BatchFrame:
    """The production batch of ``records`` (``DecisionLog.decisions`` rows, oldest first): every declared
    column in the policy's order, the target only when ``labeled`` (then only decisions with an outcome
    are kept), each column in the type the contract checks (integers as int64, or Int64 with gaps).
    Identifiers stay as the log holds them (pseudonymized); protected attributes only those
    ``serving.protected_for_monitoring`` allows. Rows are in decision order."""
    import pandas as pd

    spec = policy.data
    sources = column_sources(policy)
    columns = [n for n, s in sources.items() if labeled or s != OUTCOME]
    rows, left_out, kept = [], Counter(), []
    for record in records:
        reason = _unusable(record, policy, sources, labeled)
        if reason is not None:
            left_out[reason] += 1
            continue
        row = {}
        for name in columns:
            source = sources[name]
            if source == INPUTS:
                row[name] = record["inputs"].get(name)
            elif source in (PROTECTED, IDENTIFIERS):
                row[name] = (record.get(source) or {}).get(name)
            elif source == TIME:
                row[name] = time_value(record["created_at"], spec.columns[name])
            elif source == OUTCOME:
                row[name] = record["outcome"]
            else:
                row[name] = None
        rows.append(row)
        kept.append(record)
    frame = pd.DataFrame(rows, columns=columns)
    for name in columns:
        dtype = spec.columns[name].dtype
        if dtype in (ColumnType.INTEGER, ColumnType.FLOAT):
            numbers = pd.to_numeric(frame[name])
            if dtype == ColumnType.FLOAT:
                frame[name] = numbers.astype("float64")
            else:
                frame[name] = numbers.astype("Int64" if numbers.isna().any() else "int64")
        else:
            frame[name] = frame[name].astype("object").where(frame[name].notna(), None)
    outcome_times = [r["outcome_recorded_at"] for r in kept if labeled and r.get("outcome_recorded_at")]
    return BatchFrame(
        frame=frame,
        left_out=dict(sorted(left_out.items())),
        labeled=labeled,
        last_outcome_at=max(outcome_times) if outcome_times else None,
        seqs=(kept[0]["seq"], kept[-1]["seq"]) if kept else None,
    )


# --- which batches to write (pure) ---------------------------------------------------------------


def day_of(record: Mapping[str, Any]) -> dt.date:
    return record["created_at"].astimezone(dt.UTC).date()


def complete_until(now: dt.datetime) -> dt.date:
    """The first day that is not complete at ``now``: every earlier UTC day is over (plus ``GRACE``)."""
    return (now.astimezone(dt.UTC) - GRACE).date()


def base_key(first: dt.date, last: dt.date) -> str:
    return f"{KEY_PREFIX}{first}" if first == last else f"{KEY_PREFIX}{first}_to_{last}"


def revision_key(base: str, revision: int) -> str:
    return base if revision == 1 else f"{base}-r{revision}"


@dataclass
class Export:
    """One served batch to write: its partition key, the days it covers, its frame and revision."""

    key: str
    base: str
    first_day: dt.date
    last_day: dt.date
    revision: int
    batch: BatchFrame

    @property
    def rows(self) -> int:
        return len(self.batch.frame)


@dataclass
class DayPlan:
    """What the decisions of the complete days since the cursor give: batches to write, the first day
    still to export next time, and what to report (pending days, decisions left out, a blocking reason)."""

    exports: list[Export]
    next_day: dt.date | None
    notes: list[str]
    blocked: str | None = None


def _describe_left_out(left_out: Mapping[str, int]) -> str:
    return "; ".join(f"{n} {reason}" for reason, n in left_out.items())


def plan_days(records: Sequence[Mapping[str, Any]], policy: Policy, until: dt.date) -> DayPlan:
    """Group the decisions of complete days (before ``until``) by UTC day, oldest first, and accumulate days
    until they hold ``monitoring.min_batch_rows`` usable decisions: each such run of days is one batch. A
    batch's rows are labeled when every usable decision of it has an outcome. Days still short of the
    minimum stay pending (``next_day`` is their first day); a batch whose time values the contract would
    refuse blocks (``next_day`` stays at its first day, nothing after it is planned)."""
    minimum = policy.monitoring.min_batch_rows
    sources = column_sources(policy)
    time_name = policy.data.time_column
    by_day: dict[dt.date, list[Mapping[str, Any]]] = {}
    for record in records:
        day = day_of(record)
        if day < until:
            by_day.setdefault(day, []).append(record)
    exports, notes = [], []
    days: list[dt.date] = []
    pending: list[Mapping[str, Any]] = []
    for day in sorted(by_day):
        days.append(day)
        pending.extend(by_day[day])
        usable = [r for r in pending if _unusable(r, policy, sources, labeled=False) is None]
        if len(usable) < minimum:
            continue
        labeled = all(r.get("outcome") is not None for r in usable)
        batch = batch_frame(pending, policy, labeled=labeled)
        if time_name is not None:
            column = policy.data.columns[time_name]
            for value, first in _time_values(batch.frame[time_name], usable):
                problem = time_problem(value, first, time_name, column)
                if problem:
                    return DayPlan(exports, days[0], notes, blocked=problem)
        base = base_key(days[0], days[-1])
        exports.append(Export(base, base, days[0], days[-1], 1, batch))
        days, pending = [], []
    if pending:
        reasons = [_unusable(r, policy, sources, labeled=False) for r in pending]
        usable = reasons.count(None)
        left = dict(sorted(Counter(r for r in reasons if r is not None).items()))
        span = f"{days[0]}" if days[0] == days[-1] else f"{days[0]} to {days[-1]}"
        if usable:
            notes.append(
                f"{span}: {usable} usable decision(s), below monitoring.min_batch_rows={minimum}: pending, "
                "exported with the next days" + (f" ({_describe_left_out(left)} left out)" if left else "")
            )
            return DayPlan(exports, days[0], notes)
        notes.append(f"{span}: no decision can be exported ({_describe_left_out(left)})")
    return DayPlan(exports, until, notes)


def _time_values(column: pd.Series, usable: Sequence[Mapping[str, Any]]) -> list[tuple[Any, dt.date]]:
    """Each distinct time value of a batch (its rows are the usable decisions, in order) with the first day
    that carries it."""
    seen: dict[Any, dt.date] = {}
    for value, record in zip(column.tolist(), usable, strict=True):
        seen.setdefault(value, day_of(record))
    return list(seen.items())


def plan_revision(
    entry: Mapping[str, Any], records: Sequence[Mapping[str, Any]], policy: Policy
) -> tuple[Export | None, str | None]:
    """The next labeled revision of an exported batch (``entry`` from the cursor): its decisions whose
    outcome was reported after the newest outcome an earlier batch of it carried. Returned when they
    reach ``monitoring.min_batch_rows``; otherwise a note of how many are waiting (or None)."""
    after = _parse_time(entry.get("labeled_until"))
    fresh = [r for r in records if r.get("outcome") is not None and (after is None or r["outcome_recorded_at"] > after)]
    if not fresh:
        return None, None
    batch = batch_frame(fresh, policy, labeled=True)
    minimum = policy.monitoring.min_batch_rows
    if len(batch.frame) < minimum:
        if not len(batch.frame):
            return None, None
        return None, (
            f"{entry['base']}: {len(batch.frame)} new outcome(s), below monitoring.min_batch_rows={minimum}: "
            "waiting for more before a labeled revision"
        )
    revision = int(entry["revision"]) + 1
    first, last = dt.date.fromisoformat(entry["first_day"]), dt.date.fromisoformat(entry["last_day"])
    return Export(revision_key(entry["base"], revision), entry["base"], first, last, revision, batch), None


# --- the cursor ----------------------------------------------------------------------------------


def _parse_time(text: str | None) -> dt.datetime | None:
    return None if not text else dt.datetime.fromisoformat(text)


def empty_state(source: str) -> dict[str, Any]:
    return {"version": CURSOR_VERSION, "source": source, "next_day": None, "batches": [], "outcomes_checked_at": None}


def load_state(cursor: str | None, source: str) -> tuple[dict[str, Any], str | None]:
    """The sensor's state, and a note when the policy names another data source than the cursor's: the
    caller then restarts the export after the switch (decisions made before are of the previous source)."""
    if not cursor:
        return empty_state(source), None
    state = json.loads(cursor)
    if state.get("source") == source:
        return state, None
    return empty_state(source), (
        "the policy names another data source than at the previous tick: decisions before now are of the "
        "previous source and are not exported; exporting restarts with the next complete day"
    )


def record_export(state: dict[str, Any], export: Export) -> None:
    """Remember an exported batch (a revision updates its entry)."""
    labeled_until = export.batch.last_outcome_at.isoformat() if export.batch.last_outcome_at else None
    for entry in state["batches"]:
        if entry["base"] == export.base:
            entry["revision"] = export.revision
            entry["labeled_until"] = labeled_until or entry.get("labeled_until")
            return
    state["batches"].append(
        {
            "base": export.base,
            "first_day": export.first_day.isoformat(),
            "last_day": export.last_day.isoformat(),
            "revision": export.revision,
            "labeled_until": labeled_until,
        }
    )


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


# --- the sensor ----------------------------------------------------------------------------------


def open_decision_log(paths: ProjectPaths, policy: Policy) -> tuple[DecisionLog | None, str | None]:
    """The service's decision log (``$MLCOMOPS_DECISION_LOG_URL`` or ``data/serving/decisions.db``), or
    why it cannot be read. A SQLite log that does not exist yet is not created: nothing was served."""
    import sqlalchemy as sa

    from mlcomops_assets.lib.decision_log import DecisionLog
    from mlcomops_assets.lib.pseudonyms import PseudonymKeyError, load_key
    from mlcomops_assets.serving.settings import ServingConfigError, decision_log_url

    try:
        url = decision_log_url(paths)
    except ServingConfigError as exc:
        return None, str(exc)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            return None, "the decision log is an in-memory SQLite database, which no other process can read"
        if not Path(parsed.database).is_file():
            return None, f"no decision log at {parsed.database}: nothing has been served yet"
    try:
        key = load_key(policy.pseudonymization)
    except PseudonymKeyError as exc:
        return None, f"cannot open the decision log: {exc}"
    return DecisionLog(url, key), None


def write_batch(inbox: Path, export: Export) -> Path:
    """Write a served batch into the inbox as ``<key>.parquet``, atomically (a hidden temporary file the
    inbox sensor ignores, renamed into place)."""
    from mlcomops_assets.lib.files import write_atomic

    return write_atomic(inbox / f"{export.key}.parquet", lambda p: export.batch.frame.to_parquet(p, index=False))


def _export_line(export: Export) -> str:
    batch = export.batch
    kind = "labeled" if batch.labeled else "unlabeled"
    seqs = f", decisions seq {batch.seqs[0]}-{batch.seqs[1]}" if batch.seqs else ""
    left = f"; left out: {_describe_left_out(batch.left_out)}" if batch.left_out else ""
    return f"{export.key}: {export.rows} {kind} decision(s) of {export.first_day} to {export.last_day}{seqs}{left}"


def export_served_decisions(
    log: DecisionLog, policy: Policy, inbox: Path, state: dict[str, Any], now: dt.datetime
) -> tuple[list[Export], list[str], str | None]:
    """One tick: write the batches of newly complete days and the labeled revisions that are due into
    ``inbox``, updating ``state``. Returns the batches written, notes, and the reason exporting stopped."""
    until = complete_until(now)
    since = dt.date.fromisoformat(state["next_day"]) if state["next_day"] else None
    taken = inbox_files(inbox)
    written: list[Export] = []

    def write(export: Export) -> str | None:
        other = taken.get(export.key)
        if other is not None and other.name != f"{export.key}.parquet":
            return f"batch key {export.key} is taken by {other.name} in the inbox: rename that file"
        write_batch(inbox, export)
        record_export(state, export)
        written.append(export)
        return None

    notes: list[str] = []
    blocked = None
    if since is None or since < until:
        records = log.decisions(since=_day_start(since) if since else None, until=_day_start(until))
        plan = plan_days(records, policy, until)
        notes += plan.notes
        next_day = plan.next_day
        for export in plan.exports:
            blocked = write(export)
            if blocked:  # this batch and every later day wait until the key is free
                next_day = export.first_day
                break
        blocked = blocked or plan.blocked
        state["next_day"] = next_day.isoformat() if next_day else None

    # Labeled revisions: at most every OUTCOME_SCAN_EVERY, for batches whose inputs are still kept.
    checked = _parse_time(state.get("outcomes_checked_at"))
    if blocked is None and (checked is None or now - checked >= OUTCOME_SCAN_EVERY):
        for entry in list(state["batches"]):
            first, last = dt.date.fromisoformat(entry["first_day"]), dt.date.fromisoformat(entry["last_day"])
            records = log.decisions(since=_day_start(first), until=_day_start(last + dt.timedelta(days=1)))
            if all(r["inputs"] is None for r in records):  # blanked after serving.retention_days: nothing to add
                state["batches"].remove(entry)
                notes.append(f"{entry['base']}: inputs blanked after serving.retention_days, no further revision")
                continue
            export, note = plan_revision(entry, records, policy)
            if note:
                notes.append(note)
            if export is not None:
                blocked = write(export)
                if blocked:
                    break
        state["outcomes_checked_at"] = now.isoformat()
    return written, notes, blocked


@dg.sensor(
    name=SERVED_DECISIONS_SENSOR,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes the scoring service's decisions of each complete UTC day (at least "
    "monitoring.min_batch_rows, quiet days accumulated) into the inbox as a production batch, and a labeled "
    "revision once their outcomes are reported; the inbox sensor then validates, scores and monitors it.",
)
def served_decisions_sensor(context: dg.SensorEvaluationContext, project: ProjectResource):
    """Launches no run itself: it writes ``served-<day>.parquet`` into ``monitoring.inbox`` and the inbox
    sensor registers and monitors it, like any file dropped there. The cursor holds the first day not
    exported yet and each exported batch (revision, newest exported outcome), so nothing is written twice."""
    policy = project.policy()
    problem = configuration_problem(policy)
    if problem:
        return dg.SkipReason(problem)
    state, switched = load_state(context.cursor, source_identity(policy.data))
    now = dt.datetime.now(dt.UTC)
    if switched:
        state["next_day"] = complete_until(now).isoformat()
    log, why = open_decision_log(project.paths, policy)
    if log is None:
        return dg.SkipReason(why)
    inbox = project.paths.home / policy.monitoring.inbox
    try:
        written, notes, blocked = export_served_decisions(log, policy, inbox, state, now)
    finally:
        log.close()
    lines = [_export_line(e) for e in written] + ([switched] if switched else []) + notes
    for line in lines:
        context.log.info(line)
    if blocked:
        lines.append(f"stopped: {blocked}")
        context.log.warning(blocked)
    where = policy.monitoring.inbox
    head = (
        f"wrote {len(written)} served batch(es) into {where} (the inbox sensor monitors them)"
        if written
        else f"no served batch to write into {where}"
    )
    return dg.SensorResult(skip_reason="; ".join([head, *lines]), cursor=json.dumps(state, sort_keys=True))
