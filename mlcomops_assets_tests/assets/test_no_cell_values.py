"""Counts, never values: data whose failures used to quote cells (a mean over a text column of ages,
a median over 'yes', an unknown category, an out-of-range year) is validated for real, and distinctive
marker values planted in it appear nowhere: console, Dagster event log and metadata, the Dagster and
validation stores, GX Data Docs, quarantine notes."""

from pathlib import Path

import pytest
from sklego.datasets import load_arrests

from mlcomops_assets.lib.batches import quarantine
from mlcomops_assets.lib.gx_validation import validate
from mlcomops_assets.lib.rules import rules_from_policy
from mlcomops_assets.policy import parse_policy
from mlcomops_assets_tests.assets.conftest import captured_output
from mlcomops_assets_tests.conftest import default_policy, materialize, write_home

pytestmark = pytest.mark.e2e

AGE_MARKER = "MRKAGE913"  # a text in the integer column 'age': type conversion in mean/median/range
CHECKS_MARKER = "yesMRKCHK"  # a 'yes' in the integer column 'checks' (the hand-written median rule)
CITIZEN_MARKER = "yesMRKCIT"  # an unknown value in the Yes/No column 'citizen': set membership
YEAR_MARKER = 1990123  # a year far outside the range: range failure


def _broken():
    frame = load_arrests(as_frame=True)
    frame["age"] = frame["age"].astype(object)
    frame.loc[3, "age"] = AGE_MARKER
    frame["checks"] = frame["checks"].astype(object)
    frame.loc[10:14, "checks"] = CHECKS_MARKER
    frame.loc[20:26, "citizen"] = CITIZEN_MARKER
    frame.loc[30:32, "year"] = YEAR_MARKER
    # pandas joined the ages of every row into one message: this run of 12 ages was in it.
    run_of_ages = "".join(str(a) for a in frame["age"].iloc[4:16])
    return frame, [AGE_MARKER, CHECKS_MARKER, CITIZEN_MARKER, str(YEAR_MARKER), run_of_ages]


def _policy():
    policy = default_policy()
    policy["data"]["source"] = {"kind": "file", "path": "inbox/arrests.csv"}
    return policy


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


def _found(markers: list[str], blobs: list[tuple[str, bytes]]) -> list[str]:
    return [f"{m!r} in {where}" for where, blob in blobs for m in markers if m.encode() in blob]


def test_failure_messages_and_data_docs_carry_no_cell_value(tmp_path):
    frame, markers = _broken()
    home = write_home(tmp_path / "home", _policy())
    (home / "inbox").mkdir()
    frame.to_csv(home / "inbox/arrests.csv", index=False)
    log_file = tmp_path / "console.log"
    with captured_output(log_file), materialize(home) as (result, instance):
        events = "\n".join(str(e) for e in instance.all_logs(result.run_id))
        checks = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert not result.success
    # Every kind of failure happened, each reported with the rule, the column and a count.
    assert {"age_mean_plausible", "checks_median_plausible", "citizen__allowed_values", "year__range"} <= set(checks)
    assert "1 of 5,226 values of 'age' are not numbers" in checks["age_mean_plausible"].description
    assert "5 of 5,226 values of 'checks' are not numbers" in checks["checks_median_plausible"].description
    assert "7 of 5,226 rows" in checks["citizen__allowed_values"].description
    assert "3 of 5,226 rows" in checks["year__range"].description

    docs = _files(home / "data/published/data_docs")
    assert any(p.suffix == ".html" and "validations" in p.parts for p in docs)
    blobs = [(str(p), p.read_bytes()) for p in _files(home / ".dagster_home", home / "data") if "raw" not in p.parts]
    blobs += [("console", log_file.read_bytes()), ("dagster event log", events.encode())]
    blobs += [(f"check {n}", str(e).encode()) for n, e in checks.items()]
    assert _found(markers, blobs) == []
    # The scan is not blind: the raw copy holds every cell marker, and pandas' own error for a mean over
    # this column holds the run of ages (what GX passed on before).
    raw = (home / "data/raw/source.csv").read_bytes()
    assert _found(markers[:4], [("raw", raw)]) == [f"{m!r} in raw" for m in markers[:4]]
    with pytest.raises(TypeError, match=markers[4]):
        frame["age"].astype(str).mean()  # as read from the CSV: every value a string


def test_quarantine_note_carries_no_cell_value(tmp_path):
    frame, markers = _broken()
    policy = parse_policy(_policy())
    home = write_home(tmp_path / "home", _policy())
    validation = validate(frame, rules_from_policy(policy.data, home), "batch", tmp_path / "docs")
    dropped = tmp_path / "inbox" / "2003.csv"
    dropped.parent.mkdir()
    frame.to_csv(dropped, index=False)
    moved = quarantine(dropped, tmp_path / "quarantine", [r.message for r in validation.results if not r.passed])
    notes = [(str(p), p.read_bytes()) for p in _files(tmp_path / "quarantine", tmp_path / "docs") if p != moved]
    assert notes and _found(markers, notes) == []
