"""No raw identifier leaves the raw layer: not in logs, Dagster events and metadata, MLflow, GX Data Docs,
reports or derived datasets. The whole graph runs on data with names, e-mails, phones and ids, then
every one of those places is scanned for the raw values."""

import re
from pathlib import Path

import pandas as pd
import pytest

from mlcomops_assets import constants as c
from mlcomops_assets.lib.evidence_scan import texts_of
from mlcomops_assets_tests.data_factory import IDENTIFIER_COLUMNS, PSEUDONYM_KEY, raw_identifier_values

pytestmark = pytest.mark.e2e

# Structured identifiers are found exhaustively by extracting every candidate from a text and looking
# it up; names have no structure, so each name is searched for directly.
_CANDIDATES = re.compile(
    rb"[\w.+-]+@[\w-]+\.[\w.]+"  # e-mail addresses
    rb"|APP-\d{6}"  # application ids
    rb"|[A-Z]{2} ?\d{6} ?[A-Z]"  # national insurance numbers
    rb"|[+(]?\d[\d ()+-]{7,}\d"  # phone numbers
)


def _texts(path: Path) -> list[tuple[str, bytes]]:
    """The byte contents to scan for one file, in every format the project writes: text as is, Parquet
    as its values, pickles, joblib and skops files loaded and walked, zip archives member by member."""
    return texts_of(path)


def _hits(texts: list[tuple[str, bytes]], structured: set[bytes], names: list[bytes]) -> list[str]:
    found = []
    for where, blob in texts:
        for candidate in set(_CANDIDATES.findall(blob)):
            if candidate.strip() in structured:
                found.append(f"{where}: {candidate[:4]!r}...")
        found.extend(f"{where}: a full name" for name in names if name in blob)
    return found


def _places(home: Path, log_file: Path) -> list[Path]:
    """Everything outside the raw layer: Dagster instance, MLflow store, data layers, reports, logs."""
    layers = ("validation", "validated", "prepared", "models", "published", "explainers", "champion", "monitoring")
    roots = [home / ".dagster_home", home / ".mlflow", *(home / "data" / layer for layer in layers)]
    files = [p for root in roots for p in root.rglob("*") if p.is_file()]
    return [*files, log_file]


def test_no_raw_identifier_anywhere_outside_the_raw_layer(credit_run):
    home, frame, result, instance, log_file = credit_run
    assert result.success
    values = raw_identifier_values(frame)
    structured = {v.encode() for v in values if not any(v == n for n in frame["full_name"])}
    # Names have no structure to extract, and the pseudonymization key must not leak either.
    names = [n.encode() for n in frame["full_name"].unique()] + [PSEUDONYM_KEY.encode()]
    places = _places(home, log_file)
    kinds = {p.suffix for p in places}
    # The scan covers the evidence an auditor sees: event logs, MLflow DB and artifacts, Data Docs, reports.
    assert {".db", ".html", ".json", ".parquet", ".png", ".joblib"} <= kinds
    assert any("data_docs" in str(p) for p in places) and any(".mlflow" in str(p) for p in places)
    assert log_file.stat().st_size > 10_000  # the run's console log was captured

    texts = [t for p in places for t in _texts(p)]
    # Dagster events as the instance returns them (metadata of materializations and checks included).
    texts.append(("dagster event log", "\n".join(str(e) for e in instance.all_logs(result.run_id)).encode()))

    assert _hits(texts, structured, names) == []


def test_the_scan_finds_a_leak_when_there_is_one(credit_run, tmp_path):
    """The scanner is not blind: one planted e-mail, id and name are each found."""
    _, frame, _, _, _ = credit_run
    values = raw_identifier_values(frame)
    structured = {v.encode() for v in values if v not in set(frame["full_name"])}
    names = [n.encode() for n in frame["full_name"].unique()]
    leak = tmp_path / "leak.json"
    row = frame.iloc[17]
    leak.write_text(f'{{"who": "{row["email"]}", "id": "{row["application_id"]}", "n": "{row["full_name"]}"}}')
    assert len(_hits(_texts(leak), structured, names)) == 3
    # The same values inside a pickled object (as an explainer's masker would keep rows) are found too.
    import joblib

    pickled = tmp_path / "leak.joblib"
    joblib.dump(
        {"masker": [None, pd.DataFrame([{"who": row["email"], "id": row["application_id"]}])], "n": row["full_name"]},
        pickled,
    )
    assert len(_hits(_texts(pickled), structured, names)) >= 3


def test_identifiers_are_dropped_or_pseudonymized(credit_run):
    home, frame, result, instance, _ = credit_run
    validated = pd.read_parquet(home / "data/validated/validated_data.parquet")
    assert set(IDENTIFIER_COLUMNS) & set(validated.columns) == {"application_id"}
    event = instance.get_latest_materialization_event(c.VALIDATED_DATA)
    metadata = event.asset_materialization.metadata
    assert metadata["pseudonymized_columns"].value == "application_id"
    assert metadata["dropped_columns"].value == "full_name, email, phone, national_id"
    assert re.fullmatch(r"[0-9a-f]{12}", metadata["pseudonym_key_id"].value)
    assert "GDPR Art. 6(1)(b)" in metadata["legal_basis"].value
    # The model never sees identifiers: its features are the policy's feature columns only.
    record = pd.read_json(home / "data/models/trained_model.json", typ="series")
    assert set(record["feature_columns"]).isdisjoint(IDENTIFIER_COLUMNS)


def test_proxy_check_reports_every_feature(credit_run):
    _, _, result, _, _ = credit_run
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == c.NO_PROXY_FEATURES]
    records = evaluation.metadata["proxies"].value.records
    pairs = {(r.data["protected_attribute"], r.data["feature"]) for r in records}
    features = {"income", "debt_ratio", "employment_years", "occupation", "region"}
    assert {(a, f) for a in ("gender", "age") for f in features} <= pairs
    assert ("gender", "(all features)") in pairs
