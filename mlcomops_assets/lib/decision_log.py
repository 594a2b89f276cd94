"""The decision log: every decision of the scoring service as an append-only, hash-chained receipt.

One row per decision (table ``decisions``) and one per outcome reported later (table ``outcomes``), each
chained to the row before it: a row holds the previous row's hash and its own, a SHA-256 over the
canonical JSON of every other field. A changed row no longer matches its hash, a deleted row leaves a
gap in the sequence and a link to a receipt that is gone, and a moved row breaks the order of the links;
``DecisionLog.verify`` names the receipt and what is wrong for each. A small ``chain_heads`` table,
written in the same transaction as every append, records the last row, so removing the newest records
is found too.

**Inputs and retention.** A decision keeps the inputs needed to re-explain it: the model inputs, the
identifiers the policy pseudonymizes (already pseudonymized by the caller) and, in a column of their own,
the protected attributes accepted for fairness monitoring. They are bound to the record by a *keyed*
hash (HMAC-SHA-256 with the pseudonym key) of their canonical JSON, and the record's hash covers that
keyed hash, never the raw values. So ``purge_expired`` can blank the inputs of a record past its expiry
date without breaking the chain: what stays is the receipt (time, model, score, decision, reasons,
explanation text), the keyed hash and the links. The keyed hash also means that inputs can only be
forged by someone who holds the key, and that the same inputs give the same hash, so an access request
can still find a person's decisions after their inputs were blanked.

**What the chain does not stop.** The record hash is a plain SHA-256: someone who can write the database
can change a record and recompute every following hash and the head. Keep the head hash that
``verify`` reports (``DecisionLogVerification.head_hash``) somewhere else to detect that.

Concurrency: one writer lock per ``DecisionLog`` (so per process); each append reads the chain head and
writes in one transaction. The sequence number is the primary key, so a second writing process fails
and retries instead of forking the chain. Pure: SQLAlchemy Core only, no Dagster, no MLflow.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

GENESIS_HASH = "0" * 64
SCHEMA = "mlcomops.decision/1"
OUTCOME_SCHEMA = "mlcomops.outcome/1"
_APPEND_RETRIES = 5

_metadata = sa.MetaData()

decisions_table = sa.Table(
    "decisions",
    _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("receipt_id", sa.String(36), nullable=False, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False, index=True),
    sa.Column("expires_at", sa.String(40), nullable=False, index=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(40), nullable=False),
    sa.Column("artifact_sha256", sa.String(64), nullable=False),
    sa.Column("input_hash", sa.String(64), nullable=False),
    # The inputs needed to re-explain the decision; NULL once blanked by purge_expired.
    sa.Column("inputs", sa.Text, nullable=True),
    sa.Column("identifiers", sa.Text, nullable=True),
    sa.Column("protected", sa.Text, nullable=True),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("decision", sa.String(200), nullable=False),
    sa.Column("favourable", sa.Boolean, nullable=False),
    sa.Column("threshold", sa.Double, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("attribution", sa.Text, nullable=False),
    sa.Column("explanation", sa.Text, nullable=True),
    sa.Column("prev_receipt_id", sa.String(36), nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
)

outcomes_table = sa.Table(
    "outcomes",
    _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("receipt_id", sa.String(36), nullable=False, unique=True),  # an outcome is stored once
    sa.Column("outcome", sa.String(200), nullable=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
)

heads_table = sa.Table(
    "chain_heads",
    _metadata,
    sa.Column("chain", sa.String(20), primary_key=True),  # "decisions" or "outcomes"
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("receipt_id", sa.String(36), nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
)

# The fields of a decision row its hash covers: all but the raw inputs (covered by input_hash) and
# the hash itself.
_HASHED_DECISION_FIELDS = (
    "seq",
    "receipt_id",
    "created_at",
    "expires_at",
    "model_name",
    "model_version",
    "artifact_sha256",
    "input_hash",
    "score",
    "decision",
    "favourable",
    "threshold",
    "reasons",
    "attribution",
    "explanation",
    "prev_receipt_id",
    "prev_hash",
)
_JSON_FIELDS = ("reasons", "attribution")
_HASHED_OUTCOME_FIELDS = ("seq", "receipt_id", "outcome", "recorded_at", "prev_hash")


class UnknownReceiptError(LookupError):
    """No decision carries this receipt id."""


class OutcomeAlreadyRecordedError(ValueError):
    """The receipt's outcome was stored before; an outcome is stored once."""


@dataclass(frozen=True)
class DecisionLogVerification:
    """The verdict of ``DecisionLog.verify``: each problem names the receipt and what is wrong."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    decisions: int = 0
    outcomes: int = 0
    head_hash: str | None = None  # the newest decision's record hash: keep it elsewhere to detect a rewrite


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text, no NaN: one text per value, so its hash is stable."""
    return _CANONICAL.encode(value)  # = json.dumps(value, sort_keys=True, separators=(",", ":"), ...)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def utc_text(moment: dt.datetime) -> str:
    """A time as stored: UTC, ISO 8601 with microseconds (fixed width, so text order is time order)."""
    if moment.tzinfo is None:
        raise ValueError("times in the decision log must be timezone-aware")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _parse_time(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _is_memory(url: sa.engine.URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _engine(url_text: str) -> sa.Engine:
    url = sa.make_url(url_text)
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    if _is_memory(url):
        # One shared connection, or every connection of the pool would see its own empty database.
        return sa.create_engine(url, poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False})
    from pathlib import Path

    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:  # readers never wait for the writer
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    return engine


class DecisionLog:
    """Receipts of the scoring service's decisions and their outcomes, in any SQLAlchemy database.

    ``url`` is a SQLAlchemy URL (``sqlite:////abs/path/decisions.db``); ``input_key`` is the pseudonym key
    (``lib.pseudonyms.load_key``), used for the keyed hash of each decision's inputs.
    """

    def __init__(self, url: str, input_key: bytes) -> None:
        if not input_key:
            raise ValueError("the decision log needs the pseudonym key for its keyed input hashes")
        self.url = url
        self._key = bytes(input_key)
        self._engine = _engine(url)
        self._lock = threading.Lock()
        _metadata.create_all(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    # --- hashing ---------------------------------------------------------------------------------

    def input_hash(
        self, inputs: Mapping[str, Any], identifiers: Mapping[str, Any] | None, protected: Mapping[str, Any] | None
    ) -> str:
        """HMAC-SHA-256 (pseudonym key) of the canonical JSON of a decision's inputs."""
        payload = canonical_json({"inputs": inputs, "identifiers": identifiers or {}, "protected": protected or {}})
        return hmac.new(self._key, payload.encode("utf-8"), hashlib.sha256).hexdigest()

    @staticmethod
    def _decision_hash(row: Mapping[str, Any], canonical: bool = False) -> str:
        """SHA-256 of the canonical JSON of the hashed fields, the JSON fields as the values they hold.
        ``canonical``: the JSON fields' texts are known to be canonical JSON of text-keyed values (as
        ``_prepare`` writes them), so parsing and serializing them again would give the same texts: they
        are put in as they are."""
        content = {k: row[k] for k in _HASHED_DECISION_FIELDS}
        if canonical:
            raw = {k: row[k] for k in _JSON_FIELDS}
            filled = _fill(canonical_json({"schema": SCHEMA, **content, **{k: _placeholder(k) for k in raw}}), raw)
            if filled is not None:
                return _sha256(filled)
        content.update({k: json.loads(row[k]) for k in _JSON_FIELDS})
        return _sha256(canonical_json({"schema": SCHEMA, **content}))

    @staticmethod
    def _outcome_hash(row: Mapping[str, Any]) -> str:
        return _sha256(canonical_json({"schema": OUTCOME_SCHEMA, **{k: row[k] for k in _HASHED_OUTCOME_FIELDS}}))

    # --- writing ---------------------------------------------------------------------------------

    def append(
        self,
        *,
        model_name: str,
        model_version: str,
        artifact_sha256: str,
        inputs: Mapping[str, Any],
        score: float,
        decision: str,
        favourable: bool,
        threshold: float,
        reasons: Sequence[Mapping[str, Any]],
        attribution: Mapping[str, Any],
        explanation: str | None,
        retention_days: int,
        identifiers: Mapping[str, Any] | None = None,
        protected: Mapping[str, Any] | None = None,
        created_at: dt.datetime | None = None,
    ) -> dict:
        """Store one decision and return its receipt (what ``get`` returns for it later)."""
        return self.append_many(
            [
                {
                    "model_name": model_name,
                    "model_version": model_version,
                    "artifact_sha256": artifact_sha256,
                    "inputs": inputs,
                    "score": score,
                    "decision": decision,
                    "favourable": favourable,
                    "threshold": threshold,
                    "reasons": reasons,
                    "attribution": attribution,
                    "explanation": explanation,
                    "retention_days": retention_days,
                    "identifiers": identifiers,
                    "protected": protected,
                    "created_at": created_at,
                }
            ]
        )[0]

    def append_many(self, entries: Sequence[Mapping[str, Any]]) -> list[dict]:
        """Store several decisions in one transaction (all or none), chained in the given order; each
        entry takes the keyword arguments of ``append``. Returns their receipts."""
        return [_receipt(row) for row, _ in self._append_rows(entries)]

    def append_many_json(self, entries: Sequence[Mapping[str, Any]]) -> list[str]:
        """``append_many``, with each receipt as JSON text: ``receipt_json`` of the receipt, built from the
        stored JSON of its reasons and attribution instead of parsing and serializing them again."""
        return [_receipt_json(row, canonical) for row, canonical in self._append_rows(entries)]

    def _append_rows(self, entries: Sequence[Mapping[str, Any]]) -> list[tuple[dict, bool]]:
        """The stored rows, each with whether its JSON fields are canonical texts (``_decision_hash``)."""
        prepared = [self._prepare(entry) for entry in entries]
        for attempt in range(_APPEND_RETRIES):
            try:
                with self._lock, self._engine.begin() as conn:
                    head = conn.execute(sa.select(heads_table).where(heads_table.c.chain == "decisions")).one_or_none()
                    seq, prev_id, prev_hash = (
                        (head.seq, head.receipt_id, head.record_hash) if head else (0, None, GENESIS_HASH)
                    )
                    # Stamped after reading the head, so the chain's order is the order of time.
                    now = dt.datetime.now(dt.UTC)
                    stamps: dict[tuple[dt.datetime, dt.timedelta], tuple[str, str]] = {}
                    rows = []
                    for values, retention, _ in prepared:
                        seq += 1
                        created = values["created_at"] or now
                        stamp = stamps.get((created, retention))
                        if stamp is None:  # a batch shares its time: formatted once
                            stamp = stamps[created, retention] = (utc_text(created), utc_text(created + retention))
                        row = {
                            **values,
                            "created_at": stamp[0],
                            "expires_at": stamp[1],
                            "seq": seq,
                            "prev_receipt_id": prev_id,
                            "prev_hash": prev_hash,
                        }
                        row["record_hash"] = self._decision_hash(row, canonical=prepared[len(rows)][2])
                        rows.append(row)
                        prev_id, prev_hash = row["receipt_id"], row["record_hash"]
                    conn.execute(sa.insert(decisions_table), rows)
                    self._set_head(conn, "decisions", head is not None, seq, prev_id, prev_hash)
                return [(row, p[2]) for row, p in zip(rows, prepared, strict=True)]
            except (sa.exc.IntegrityError, sa.exc.OperationalError):
                # Another process appended between our read of the head and our insert: read it again.
                if attempt == _APPEND_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _prepare(self, entry: Mapping[str, Any]) -> tuple[dict, dt.timedelta, bool]:
        """The row of one entry without its place in the chain and its time; its retention; and whether
        its JSON fields (reasons, attribution) are stored as the canonical JSON of text-keyed values."""
        created = entry.get("created_at")
        if created is not None:
            utc_text(created)  # refuses a naive time before anything is written
        retention = dt.timedelta(days=int(entry["retention_days"]))
        inputs = canonical_json(dict(entry["inputs"]))
        identifiers = canonical_json(dict(entry.get("identifiers") or {}))
        protected = canonical_json(dict(entry.get("protected") or {}))
        reasons, attribution = list(entry["reasons"]), dict(entry["attribution"])
        # The canonical JSON of {"inputs", "identifiers", "protected"} (input_hash), from the texts stored.
        payload = f'{{"identifiers":{identifiers},"inputs":{inputs},"protected":{protected}}}'
        return (
            {
                "receipt_id": str(uuid.uuid4()),
                "created_at": created,
                "model_name": str(entry["model_name"]),
                "model_version": str(entry["model_version"]),
                "artifact_sha256": str(entry["artifact_sha256"]),
                "input_hash": hmac.new(self._key, payload.encode("utf-8"), hashlib.sha256).hexdigest(),
                "inputs": inputs,
                "identifiers": identifiers,
                "protected": protected,
                "score": float(entry["score"]),
                "decision": str(entry["decision"]),
                "favourable": bool(entry["favourable"]),
                "threshold": float(entry["threshold"]),
                "reasons": canonical_json(reasons),
                "attribution": canonical_json(attribution),
                "explanation": entry.get("explanation"),
            },
            retention,
            _text_keys(reasons) and _text_keys(attribution),
        )

    @staticmethod
    def _set_head(conn: sa.Connection, chain: str, exists: bool, seq: int, receipt_id: str, record_hash: str) -> None:
        values = {"seq": seq, "receipt_id": receipt_id, "record_hash": record_hash}
        if exists:
            conn.execute(sa.update(heads_table).where(heads_table.c.chain == chain).values(**values))
        else:
            conn.execute(sa.insert(heads_table).values(chain=chain, **values))

    def add_outcome(self, receipt_id: str, outcome: str, recorded_at: dt.datetime | None = None) -> None:
        """Store the true outcome of a decision, once. ``UnknownReceiptError`` for an unknown receipt,
        ``OutcomeAlreadyRecordedError`` when it was stored before."""
        recorded = utc_text(recorded_at or dt.datetime.now(dt.UTC))
        for attempt in range(_APPEND_RETRIES):
            try:
                with self._lock, self._engine.begin() as conn:
                    known = conn.execute(
                        sa.select(decisions_table.c.seq).where(decisions_table.c.receipt_id == receipt_id)
                    ).first()
                    if known is None:
                        raise UnknownReceiptError(f"no decision has receipt {receipt_id}")
                    stored = conn.execute(
                        sa.select(outcomes_table.c.seq).where(outcomes_table.c.receipt_id == receipt_id)
                    ).first()
                    if stored is not None:
                        raise OutcomeAlreadyRecordedError(f"the outcome of receipt {receipt_id} is already recorded")
                    head = conn.execute(sa.select(heads_table).where(heads_table.c.chain == "outcomes")).one_or_none()
                    seq, prev_hash = (head.seq + 1, head.record_hash) if head else (1, GENESIS_HASH)
                    row = {
                        "seq": seq,
                        "receipt_id": receipt_id,
                        "outcome": str(outcome),
                        "recorded_at": recorded,
                        "prev_hash": prev_hash,
                    }
                    row["record_hash"] = self._outcome_hash(row)
                    conn.execute(sa.insert(outcomes_table).values(**row))
                    self._set_head(conn, "outcomes", head is not None, seq, receipt_id, row["record_hash"])
                return
            except sa.exc.IntegrityError:
                if attempt == _APPEND_RETRIES - 1:
                    raise
                with self._engine.connect() as conn:  # a concurrent writer stored this receipt's outcome
                    if conn.execute(
                        sa.select(outcomes_table.c.seq).where(outcomes_table.c.receipt_id == receipt_id)
                    ).first():
                        raise OutcomeAlreadyRecordedError(
                            f"the outcome of receipt {receipt_id} is already recorded"
                        ) from None

    def purge_expired(self, now: dt.datetime | None = None) -> int:
        """Blank the inputs (model inputs, pseudonymized identifiers, protected attributes) of every decision
        past its expiry date; the receipt, the keyed input hash and the chain stay. Returns how many."""
        cutoff = utc_text(now or dt.datetime.now(dt.UTC))
        with self._lock, self._engine.begin() as conn:
            done = conn.execute(
                sa.update(decisions_table)
                .where(decisions_table.c.expires_at <= cutoff, decisions_table.c.inputs.is_not(None))
                .values(inputs=None, identifiers=None, protected=None)
            )
        return int(done.rowcount or 0)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, receipt_id: str) -> dict | None:
        """The receipt as ``append`` returned it, or None."""
        with self._engine.connect() as conn:
            row = (
                conn.execute(sa.select(decisions_table).where(decisions_table.c.receipt_id == str(receipt_id)))
                .mappings()
                .first()
            )
        return None if row is None else _receipt(row)

    def outcome(self, receipt_id: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(
                sa.select(outcomes_table.c.outcome).where(outcomes_table.c.receipt_id == str(receipt_id))
            ).scalar_one_or_none()

    def decisions(self, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[dict]:
        """Decisions made in ``[since, until)`` (UTC-aware times; either open), oldest first: receipt id,
        time, model, the inputs (None once blanked), the pseudonymized identifiers, the protected
        attributes given for monitoring, score, decision and the outcome if one was reported."""
        d, o = decisions_table, outcomes_table
        query = (
            sa.select(d, o.c.outcome, o.c.recorded_at.label("outcome_recorded_at"))
            .select_from(d.outerjoin(o, o.c.receipt_id == d.c.receipt_id))
            .order_by(d.c.seq)
        )
        if since is not None:
            query = query.where(d.c.created_at >= utc_text(since))
        if until is not None:
            query = query.where(d.c.created_at < utc_text(until))
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "receipt_id": r["receipt_id"],
                "seq": r["seq"],
                "created_at": _parse_time(r["created_at"]),
                "expires_at": _parse_time(r["expires_at"]),
                "model_name": r["model_name"],
                "model_version": r["model_version"],
                "artifact_sha256": r["artifact_sha256"],
                "inputs": None if r["inputs"] is None else json.loads(r["inputs"]),
                "identifiers": None if r["identifiers"] is None else json.loads(r["identifiers"]),
                "protected": None if r["protected"] is None else json.loads(r["protected"]),
                "score": r["score"],
                "decision": r["decision"],
                "favourable": bool(r["favourable"]),
                "threshold": r["threshold"],
                "outcome": r["outcome"],
                "outcome_recorded_at": _parse_time(r["outcome_recorded_at"]),
            }
            for r in rows
        ]

    # --- verification ----------------------------------------------------------------------------

    def verify(self, now: dt.datetime | None = None) -> DecisionLogVerification:
        """Re-hash every record and follow both chains: a changed record, a deleted one (a gap in the
        sequence, a link to a receipt that is gone, a head that points past the last record), a moved
        one, inputs that no longer match their keyed hash or were blanked before their expiry date, and
        outcomes for unknown receipts. Each problem names the receipt id."""
        moment = utc_text(now or dt.datetime.now(dt.UTC))
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(decisions_table).order_by(decisions_table.c.seq)).mappings().all()
            outcome_rows = conn.execute(sa.select(outcomes_table).order_by(outcomes_table.c.seq)).mappings().all()
            heads = {h.chain: h for h in conn.execute(sa.select(heads_table))}
        problems = self._verify_decisions(rows, heads.get("decisions"), moment)
        known = {r["receipt_id"] for r in rows} | _deleted_receipts(rows)
        problems += _verify_outcomes(outcome_rows, heads.get("outcomes"), known)
        return DecisionLogVerification(
            ok=not problems,
            problems=problems,
            decisions=len(rows),
            outcomes=len(outcome_rows),
            head_hash=rows[-1]["record_hash"] if rows else None,
        )

    def _verify_decisions(self, rows: Sequence[Mapping[str, Any]], head: Any, now: str) -> list[str]:
        problems: list[str] = []
        ids = {r["receipt_id"] for r in rows}
        prev: Mapping[str, Any] | None = None
        for row in rows:
            rid, seq = row["receipt_id"], row["seq"]
            where = f"receipt {rid} (seq {seq})"
            try:
                content_ok = self._decision_hash(row) == row["record_hash"]
            except (TypeError, ValueError):  # a JSON field no longer parses
                content_ok = False
            if not content_ok:
                problems.append(f"{where}: record changed: its content no longer matches its record hash")
            problems += _link_problems(row, prev, ids, where, "decision")
            if prev is not None and row["created_at"] < prev["created_at"]:
                problems.append(
                    f"{where}: reordered: made at {row['created_at']}, before receipt {prev['receipt_id']} "
                    f"that precedes it ({prev['created_at']})"
                )
            if row["inputs"] is None:
                if row["expires_at"] > now:
                    problems.append(f"{where}: inputs removed before their expiry date ({row['expires_at']})")
            else:
                try:
                    recomputed = self.input_hash(
                        json.loads(row["inputs"]),
                        json.loads(row["identifiers"] or "{}"),
                        json.loads(row["protected"] or "{}"),
                    )
                except (TypeError, ValueError):
                    recomputed = None
                if recomputed != row["input_hash"]:
                    problems.append(f"{where}: inputs changed: they no longer match the record's keyed input hash")
            prev = row
        problems += _head_problems(head, prev, "decision")
        return problems


# Stands for a JSON field's stored text while the document around it is serialized; a random part per
# process, and _fill checks that it occurs exactly once, so no value sent or stored can be taken for it.
_PLACEHOLDER = f"@@mlcomops-decision-log-{uuid.uuid4().hex}-{{}}@@"


def _placeholder(name: str) -> str:
    return _PLACEHOLDER.format(name)


def _fill(text: str, raw: Mapping[str, str]) -> str | None:
    """``text`` with each quoted placeholder replaced by its JSON text; None if one does not occur once."""
    for name, value in raw.items():
        quoted = f'"{_placeholder(name)}"'
        if text.count(quoted) != 1:
            return None
        text = text.replace(quoted, value)
    return text


_CONTAINERS = (dict, list, tuple)


def _text_keys(value: Any) -> bool:
    """Whether every dict in ``value`` has text keys: then its canonical JSON, parsed and serialized again,
    is the same text (another key would be turned into text and could sort differently)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    return False
                if isinstance(inner, _CONTAINERS):
                    pending.append(inner)
        elif isinstance(item, list | tuple):
            pending.extend(inner for inner in item if isinstance(inner, _CONTAINERS))
    return True


def receipt_json(receipt: Mapping[str, Any]) -> str:
    """A receipt as the service answers it (FastAPI's JSON: no spaces, UTF-8 text, keys in their order)."""
    return json.dumps(receipt, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def _receipt_json(row: Mapping[str, Any], canonical: bool) -> str:
    """``receipt_json(_receipt(row))``; when the stored JSON of the reasons and the attribution is known to
    be canonical (``_decision_hash``), it is put in as it is instead of being parsed and serialized again."""
    if canonical:
        raw = {k: row[k] for k in _JSON_FIELDS}
        filled = _fill(receipt_json(_receipt(row, {k: _placeholder(k) for k in raw})), raw)
        if filled is not None:
            return filled
    return receipt_json(_receipt(row))


def _receipt(row: Mapping[str, Any], parsed: Mapping[str, Any] | None = None) -> dict:
    """What a decision's receipt says; the same for the answer to the request and for ``get``.
    ``parsed``: the JSON fields' values, if already at hand."""
    parsed = parsed if parsed is not None else {k: json.loads(row[k]) for k in _JSON_FIELDS}
    return {
        "receipt_id": row["receipt_id"],
        "created_at": row["created_at"],
        "expires_at": row["expires_at"],
        "model": {
            "name": row["model_name"],
            "version": row["model_version"],
            "artifact_sha256": row["artifact_sha256"],
        },
        "decision": row["decision"],
        "favourable": bool(row["favourable"]),
        "score": row["score"],
        "threshold": row["threshold"],
        "reasons": parsed["reasons"],
        "attribution": parsed["attribution"],
        "explanation": row["explanation"],
        "record_hash": row["record_hash"],
    }


def _deleted_receipts(rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Receipt ids a remaining record links to but that are gone (their outcomes are not 'unknown')."""
    ids = {r["receipt_id"] for r in rows}
    return {r["prev_receipt_id"] for r in rows if r["prev_receipt_id"] and r["prev_receipt_id"] not in ids}


def _link_problems(
    row: Mapping[str, Any], prev: Mapping[str, Any] | None, ids: set[str], where: str, kind: str
) -> list[str]:
    """What is wrong with the link from ``row`` to the record before it (decisions carry the previous
    receipt id as well as its hash; outcomes only the hash)."""
    expected_seq = 1 if prev is None else prev["seq"] + 1
    expected_hash = GENESIS_HASH if prev is None else prev["record_hash"]
    linked_id = row.get("prev_receipt_id", None) if kind == "decision" else None
    if row["seq"] > expected_seq:
        last_missing = row["seq"] - 1
        span = f"seq {expected_seq}" if last_missing == expected_seq else f"seq {expected_seq} to {last_missing}"
        if linked_id and linked_id not in ids:
            return [
                f"receipt {linked_id} (seq {last_missing}) was deleted: {where} is chained to it"
                + ("" if last_missing == expected_seq else f"; {span} are all missing")
            ]
        return [f"{kind} record(s) deleted: {span} missing before {where}"]
    if kind == "decision" and prev is not None and linked_id != prev["receipt_id"]:
        if linked_id in ids:
            return [f"{where}: reordered: chained after receipt {linked_id}, but follows receipt {prev['receipt_id']}"]
        return [f"{where}: broken link: chained to receipt {linked_id}, which is not in the log"]
    if row["prev_hash"] != expected_hash:
        before = "the start of the log" if prev is None else f"receipt {prev['receipt_id']} (seq {prev['seq']})"
        return [f"{where}: broken link: {before} before it was changed or replaced after this record was chained to it"]
    return []


def _head_problems(head: Any, last: Mapping[str, Any] | None, kind: str) -> list[str]:
    if head is None:
        return [] if last is None else [f"the {kind} chain has no head record (it was removed)"]
    if last is None or head.seq > last["seq"]:
        after = "the start of the log" if last is None else f"receipt {last['receipt_id']} (seq {last['seq']})"
        return [
            f"{kind} record(s) deleted: the log's newest record is receipt {head.receipt_id} (seq {head.seq}), "
            f"but nothing follows {after}"
        ]
    if head.seq != last["seq"] or head.record_hash != last["record_hash"] or head.receipt_id != last["receipt_id"]:
        return [
            f"receipt {last['receipt_id']} (seq {last['seq']}): the chain head names receipt {head.receipt_id} "
            f"(seq {head.seq}) with another hash: the newest records were changed or added outside the log"
        ]
    return []


def _verify_outcomes(rows: Sequence[Mapping[str, Any]], head: Any, known: set[str]) -> list[str]:
    problems: list[str] = []
    prev: Mapping[str, Any] | None = None
    for row in rows:
        where = f"outcome of receipt {row['receipt_id']} (seq {row['seq']})"
        if DecisionLog._outcome_hash(row) != row["record_hash"]:
            problems.append(f"{where}: record changed: its content no longer matches its record hash")
        problems += _link_problems(row, prev, set(), where, "outcome")
        if row["receipt_id"] not in known:
            problems.append(f"{where}: no decision has this receipt")
        prev = row
    problems += _head_problems(head, prev, "outcome")
    return problems
