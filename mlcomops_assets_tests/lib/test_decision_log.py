"""The decision log keeps every receipt as it was given, in one hash chain: a changed, deleted or moved
record is found and named, inputs past their retention are blanked without breaking the chain, an
outcome is stored once, and concurrent writers never fork the chain."""

from __future__ import annotations

import datetime as dt
import hmac
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from mlcomops_assets.lib.decision_log import (
    DecisionLog,
    OutcomeAlreadyRecordedError,
    UnknownReceiptError,
)

KEY = b"test-pseudonym-key-0123456789"


def _entry(i: int = 0, **changes) -> dict:
    entry = {
        "model_name": "arrests_release_model",
        "model_version": "1",
        "artifact_sha256": "ab" * 32,
        "inputs": {"age": 20 + i, "citizen": "Yes", "employed": "No", "checks": i % 7},
        "score": 0.5 + i / 1000,
        "decision": "Yes",
        "favourable": True,
        "threshold": 0.5,
        "reasons": [{"feature": "checks", "contribution": -0.1 * i, "direction": "lowers"}],
        "attribution": {"scale": "log_odds", "base_value": 1.25, "value": 0.75, "contributions": {"checks": -0.5}},
        "explanation": None,
        "retention_days": 365,
        "protected": {"colour": "White"},
        "identifiers": {"application_id": "f" * 64},
    }
    return {**entry, **changes}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "serving" / "decisions.db"


@pytest.fixture
def log(db: Path) -> DecisionLog:
    opened = DecisionLog(f"sqlite:///{db}", KEY)
    yield opened
    opened.close()


def _sql(db: Path, statement: str, *params) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(statement, params)


def test_a_receipt_is_returned_and_read_back_identically(log: DecisionLog):
    first = log.append(**_entry(1))
    second = log.append(**_entry(2, explanation="A person can review this decision."))
    assert log.get(first["receipt_id"]) == first and log.get(second["receipt_id"]) == second
    assert second["model"] == {"name": "arrests_release_model", "version": "1", "artifact_sha256": "ab" * 32}
    assert second["reasons"] == _entry(2)["reasons"] and second["explanation"].startswith("A person")
    assert len(second["record_hash"]) == 64 and first["record_hash"] != second["record_hash"]
    assert "inputs" not in second and "protected" not in second, "a receipt carries no input value"
    created = dt.datetime.fromisoformat(second["created_at"])
    assert dt.datetime.fromisoformat(second["expires_at"]) - created == dt.timedelta(days=365)
    assert log.get("00000000-0000-4000-8000-000000000000") is None
    assert log.verify().ok


def test_inputs_and_protected_attributes_are_kept_apart(log: DecisionLog):
    receipt = log.append(**_entry(3))
    (row,) = log.decisions()
    assert row["receipt_id"] == receipt["receipt_id"]
    assert row["inputs"] == _entry(3)["inputs"] and "colour" not in row["inputs"]
    assert row["protected"] == {"colour": "White"} and row["identifiers"] == {"application_id": "f" * 64}
    assert (row["model_version"], row["decision"], row["outcome"]) == ("1", "Yes", None)


def test_a_batch_is_chained_in_one_transaction(log: DecisionLog):
    receipts = log.append_many([_entry(i) for i in range(5)])
    assert [r["receipt_id"] for r in receipts] == [r["receipt_id"] for r in log.decisions()]
    assert [r["seq"] for r in log.decisions()] == [1, 2, 3, 4, 5]
    with pytest.raises(KeyError):  # a broken entry stores none of the batch
        log.append_many([_entry(9), {"model_name": "x"}])
    assert len(log.decisions()) == 5 and log.verify().ok


def test_verify_names_a_changed_a_deleted_and_a_moved_record(log: DecisionLog, db: Path):
    receipts = [log.append(**_entry(i)) for i in range(8)]
    ids = [r["receipt_id"] for r in receipts]
    assert log.verify().ok
    _sql(db, "UPDATE decisions SET score = 0.99 WHERE seq = 2")
    _sql(db, "DELETE FROM decisions WHERE seq = 4")
    _sql(db, "UPDATE decisions SET inputs = replace(inputs, '\"Yes\"', '\"No\"') WHERE seq = 6")
    # Rows 7 and 8 swap places.
    _sql(db, "UPDATE decisions SET seq = -7 WHERE seq = 7")
    _sql(db, "UPDATE decisions SET seq = 7 WHERE seq = 8")
    _sql(db, "UPDATE decisions SET seq = 8 WHERE seq = -7")

    verdict = log.verify()
    text = "\n".join(verdict.problems)
    assert not verdict.ok
    assert f"receipt {ids[1]} (seq 2): record changed" in text
    assert f"receipt {ids[3]} (seq 4) was deleted: receipt {ids[4]} (seq 5) is chained to it" in text
    assert f"receipt {ids[5]} (seq 6): inputs changed" in text
    assert (
        f"receipt {ids[7]} (seq 7): reordered: chained after receipt {ids[5]}, but follows receipt {ids[5]}" not in text
    )
    assert f"receipt {ids[7]} (seq 7): record changed" in text and "reordered" in text
    assert all(ids[i] not in text for i in (0, 2)), "intact records are not blamed"


def test_verify_finds_the_newest_records_removed_and_a_rewritten_link(log: DecisionLog, db: Path):
    ids = [log.append(**_entry(i))["receipt_id"] for i in range(4)]
    _sql(db, "DELETE FROM decisions WHERE seq >= 3")
    text = "\n".join(log.verify().problems)
    assert f"the log's newest record is receipt {ids[3]} (seq 4), but nothing follows receipt {ids[1]}" in text
    # A record changed *and* re-hashed: its successor's link no longer matches.
    other = DecisionLog(f"sqlite:///{db.parent / 'other.db'}", KEY)
    ids = [other.append(**_entry(i))["receipt_id"] for i in range(3)]
    other_db = db.parent / "other.db"
    _sql(other_db, "UPDATE decisions SET record_hash = ? WHERE seq = 2", "0" * 63 + "1")
    text = "\n".join(other.verify().problems)
    assert f"receipt {ids[1]} (seq 2): record changed" in text
    assert f"receipt {ids[2]} (seq 3): broken link: receipt {ids[1]} (seq 2) before it was changed" in text
    other.close()


def test_purging_blanks_expired_inputs_and_keeps_the_chain(log: DecisionLog, db: Path):
    now = dt.datetime.now(dt.UTC)
    old = log.append(**_entry(1, created_at=now - dt.timedelta(days=40), retention_days=30))
    fresh = log.append(**_entry(2, retention_days=30))
    assert log.purge_expired(now) == 1 and log.purge_expired(now) == 0
    rows = {r["receipt_id"]: r for r in log.decisions()}
    assert rows[old["receipt_id"]]["inputs"] is None and rows[old["receipt_id"]]["protected"] is None
    assert rows[old["receipt_id"]]["identifiers"] is None and rows[old["receipt_id"]]["score"] == old["score"]
    assert rows[fresh["receipt_id"]]["inputs"] == _entry(2)["inputs"]
    assert log.get(old["receipt_id"]) == old, "the receipt itself stays"
    assert log.verify(now).ok, log.verify(now).problems
    # Blanking inputs that have not expired yet is found.
    _sql(db, "UPDATE decisions SET inputs = NULL WHERE receipt_id = ?", fresh["receipt_id"])
    assert (
        f"receipt {fresh['receipt_id']} (seq 2): inputs removed before their expiry date" in log.verify(now).problems[0]
    )


def test_outcomes_are_stored_once_and_chained(log: DecisionLog, db: Path):
    a, b = log.append(**_entry(1)), log.append(**_entry(2))
    log.add_outcome(a["receipt_id"], "No")
    with pytest.raises(OutcomeAlreadyRecordedError):
        log.add_outcome(a["receipt_id"], "Yes")
    with pytest.raises(UnknownReceiptError):
        log.add_outcome("00000000-0000-4000-8000-000000000000", "Yes")
    log.add_outcome(b["receipt_id"], "Yes")
    assert [r["outcome"] for r in log.decisions()] == ["No", "Yes"]
    assert log.outcome(a["receipt_id"]) == "No" and log.verify().ok
    _sql(db, "UPDATE outcomes SET outcome = 'Yes' WHERE seq = 1")
    assert f"outcome of receipt {a['receipt_id']} (seq 1): record changed" in log.verify().problems[0]


def test_decisions_in_a_time_window(log: DecisionLog):
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for day in range(5):
        log.append(**_entry(day, created_at=start + dt.timedelta(days=day)))
    window = log.decisions(since=start + dt.timedelta(days=1), until=start + dt.timedelta(days=3))
    assert [r["created_at"].day for r in window] == [2, 3]
    assert len(log.decisions(since=start + dt.timedelta(days=4))) == 1 and len(log.decisions()) == 5
    with pytest.raises(ValueError, match="timezone-aware"):
        log.decisions(since=dt.datetime(2026, 1, 1))


def test_the_input_hash_is_keyed(log: DecisionLog, db: Path):
    log.append(**_entry(1))
    same = DecisionLog(f"sqlite:///{db}", KEY)
    other_key = DecisionLog(f"sqlite:///{db}", b"another-key-of-sufficient-length")
    assert same.verify().ok
    assert "inputs changed" in other_key.verify().problems[0], "without the key the inputs cannot be re-bound"
    assert same.input_hash({"a": 1}, None, None) != other_key.input_hash({"a": 1}, None, None)
    with pytest.raises(ValueError, match="pseudonym key"):
        DecisionLog(f"sqlite:///{db}", b"")
    same.close()
    other_key.close()


def test_concurrent_writers_form_one_chain(db: Path):
    """Two logs on one file (as two processes would be), four threads each: no append is lost and the
    chain has no fork."""
    logs = [DecisionLog(f"sqlite:///{db}", KEY) for _ in range(2)]
    errors: list[BaseException] = []

    def write(log: DecisionLog, offset: int) -> None:
        try:
            for i in range(15):
                log.append(**_entry(offset + i))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(logs[t % 2], 100 * t)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = logs[0].decisions()
    assert [r["seq"] for r in rows] == list(range(1, 121))
    verdict = logs[1].verify()
    assert verdict.ok and verdict.decisions == 120, verdict.problems
    for log in logs:
        log.close()


def test_an_in_memory_log_works_across_threads():
    log = DecisionLog("sqlite://", KEY)
    threads = [threading.Thread(target=lambda: [log.append(**_entry(i)) for i in range(10)]) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.verify().ok and len(log.decisions()) == 30


def _reference_hash(row: dict) -> str:
    """The record hash as defined: the JSON fields parsed, the whole canonical document hashed."""
    import hashlib
    import json

    from mlcomops_assets.lib.decision_log import _HASHED_DECISION_FIELDS, SCHEMA, canonical_json

    content = {k: json.loads(row[k]) if k in ("reasons", "attribution") else row[k] for k in _HASHED_DECISION_FIELDS}
    return hashlib.sha256(canonical_json({"schema": SCHEMA, **content}).encode()).hexdigest()


def test_receipts_as_json_are_the_receipts_and_hashes_follow_the_definition(log: DecisionLog, db: Path):
    """The service answers with ``append_many_json``: each text is exactly the receipt as JSON (what ``get``
    returns, serialized as FastAPI does), and every record hash is the definition's, also for an entry
    whose attribution has keys that are not text (the JSON fields are then parsed, not spliced)."""
    import json

    from mlcomops_assets.lib.decision_log import receipt_json

    odd = _entry(5, attribution={"scale": "log_odds", "contributions": {2: 0.5, 10: -0.25}}, explanation="Ask ü")
    texts = log.append_many_json([_entry(i) for i in range(3)] + [odd])
    for text in texts:
        receipt = json.loads(text)
        assert text == receipt_json(log.get(receipt["receipt_id"]))
        assert text == json.dumps(receipt, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert json.loads(texts[-1])["attribution"]["contributions"] == {"10": -0.25, "2": 0.5}
    with closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM decisions ORDER BY seq")]
    for row in rows:
        row["favourable"] = bool(row["favourable"])
        assert row["record_hash"] == _reference_hash(row)
        payload = json.dumps(
            {"identifiers": json.loads(row["identifiers"]), "inputs": json.loads(row["inputs"]),
             "protected": json.loads(row["protected"])},
            sort_keys=True, separators=(",", ":"), ensure_ascii=False,
        )  # fmt: skip
        assert row["input_hash"] == log.input_hash(
            json.loads(row["inputs"]), json.loads(row["identifiers"]), json.loads(row["protected"])
        )
        assert row["input_hash"] == hmac.new(KEY, payload.encode(), "sha256").hexdigest()
    assert log.verify().ok


def test_a_value_that_looks_like_the_placeholder_changes_nothing(log: DecisionLog):
    """The stored JSON is spliced in where a placeholder stands; a value sent that happens to contain the
    placeholder's text is never taken for it (the splice is refused and the JSON built the long way)."""
    import json

    from mlcomops_assets.lib import decision_log

    lookalike = decision_log._placeholder("reasons")  # as a JSON string: exactly the quoted placeholder
    (text,) = log.append_many_json([_entry(1, explanation=lookalike)])
    receipt = json.loads(text)
    assert receipt["explanation"] == lookalike and receipt["reasons"] == _entry(1)["reasons"]
    assert log.get(receipt["receipt_id"]) == receipt and log.verify().ok
