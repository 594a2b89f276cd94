"""Deciding in-process with a model fitted on the default data: identifiers are pseudonymized before
anything is stored, protected attributes never reach the model, contributions add up exactly, and the
explainer rebuilt as the service does equals the pipeline's."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from mlcomops_assets.lib import explain, modeling
from mlcomops_assets.lib.decision_log import DecisionLog
from mlcomops_assets.lib.promotion_record import ChampionIntegrityError, PromotionRecord
from mlcomops_assets.policy import parse_policy
from mlcomops_assets.serving.champion import Champion
from mlcomops_assets.serving.explanations import ServedExplainer, rebuild_explainer
from mlcomops_assets.serving.outliers import OutlierWatch, build_outlier_watch
from mlcomops_assets.serving.schema import application_schema, parse_applications
from mlcomops_assets.serving.scoring import application_frame, decide
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.conftest import default_policy
from mlcomops_assets_tests.serving.conftest import ADVERSE, FAVOURABLE

KEY = b"scoring-tests-pseudonym-key-0001"
RAW_ID = "APP-2024-000123"


@pytest.fixture(scope="module")
def policy():
    raw = default_policy()
    raw["data"]["columns"]["application_id"] = {"role": "identifier", "treatment": "pseudonymize", "dtype": "string"}
    return parse_policy(raw)


@pytest.fixture(scope="module")
def data():
    from sklego.datasets import load_arrests

    frame = load_arrests(as_frame=True)
    return frame.iloc[:2000].reset_index(drop=True), frame.iloc[2000:2600].reset_index(drop=True)


@pytest.fixture(scope="module")
def model(policy, data):
    training, _ = data
    candidate = policy.model.candidates["logistic_regression"]
    return modeling.build_pipeline(policy, candidate).fit(
        modeling.features(training, policy), modeling.labels(training, policy)
    )


def _champion(model, policy, data, outliers=None) -> Champion:
    _, holdout = data
    explainer = explain.build_explainer(model, holdout, policy)
    served = ServedExplainer(explainer, "log_odds", float(np.ravel(explainer.expected_value)[-1]))
    record = PromotionRecord("m", "7", "ab" * 32, {}, "promoted", "2026-01-01T00:00:00+00:00", "r", None, "00")
    return Champion("m", "7", "ab" * 32, record, model, served, outliers or OutlierWatch(None), "now")


def test_identifiers_are_pseudonymized_and_protected_attributes_kept_apart(model, policy, data, tmp_path: Path):
    schema = application_schema(policy)
    body = {"applications": [{**FAVOURABLE, "application_id": RAW_ID}, ADVERSE]}
    parsed = parse_applications(body, schema, policy)
    entries, flags = decide(_champion(model, policy, data), parsed.applications, schema, policy, KEY)
    assert flags is None
    first, second = entries
    pseudonym = hmac.new(KEY, RAW_ID.encode(), hashlib.sha256).hexdigest()
    assert first["identifiers"] == {"application_id": pseudonym} and second["identifiers"] == {}
    assert first["protected"] == {"colour": "White", "sex": "Female"}
    assert set(first["inputs"]) == set(policy.data.feature_columns), "only features reach the model"
    assert RAW_ID not in json.dumps(entries)

    log = DecisionLog(f"sqlite:///{tmp_path / 'd.db'}", KEY)
    receipts = log.append_many(entries)
    log.close()
    with closing(sqlite3.connect(tmp_path / "d.db")) as conn:
        dump = "\n".join(conn.iterdump())
    assert RAW_ID not in dump and pseudonym in dump
    assert RAW_ID not in json.dumps(receipts) and pseudonym not in json.dumps(receipts), "receipts carry no identifier"


def test_contributions_add_up_and_decisions_follow_the_threshold(model, policy, data):
    _, holdout = data
    schema = application_schema(policy)
    rows = [
        {c: (int(v) if isinstance(v, np.integer) else v) for c, v in r.items()}
        for r in holdout.head(40).to_dict("records")
    ]
    applications = [{k: r[k] for k in policy.data.feature_columns} for r in [*rows, ADVERSE]]
    parsed = parse_applications({"applications": applications}, schema, policy)
    entries, _ = decide(_champion(model, policy, data), parsed.applications, schema, policy, KEY)
    frame = application_frame(applications, policy)
    log_odds = explain.explained_output(model, frame, policy)
    scores = modeling.positive_scores(model, frame, policy)
    assert {e["favourable"] for e in entries} == {True, False}, "both outcomes occur"
    for entry, expected, score in zip(entries, log_odds, scores, strict=True):
        attribution = entry["attribution"]
        assert abs(attribution["base_value"] + sum(attribution["contributions"].values()) - expected) <= 1e-9
        assert entry["score"] == pytest.approx(score, abs=1e-15)
        assert entry["favourable"] == (score >= policy.model.decision_threshold)
        assert entry["decision"] == ("Yes" if entry["favourable"] else "No")
        assert (entry["explanation"] is None) == entry["favourable"]
        assert len(entry["reasons"]) == policy.serving.top_reasons


def test_the_rebuilt_explainer_must_match_the_signed_evidence(model, policy, data, tmp_path: Path):
    """As the service rebuilds it: the holdout sample of the asset, compared with the evidence the
    promotion record signed; a different background (holdout) is refused."""
    from mlcomops_assets.lib.files import file_sha256

    _, holdout = data
    paths = ProjectPaths(tmp_path)
    paths.prepared_dir.mkdir(parents=True)
    holdout.to_parquet(paths.prepared_dir / "holdout_data.parquet")
    pipeline_explainer = explain.build_explainer(model, holdout, policy)  # what the asset built and saved
    evidence = paths.reports_dir / "shap_explainer.json"
    evidence.parent.mkdir(parents=True)
    base = float(np.ravel(pipeline_explainer.expected_value)[-1])
    evidence.write_text(
        json.dumps({"model_uri": "models:/m/7", "explainer_type": "LinearExplainer", "base_log_odds": base})
    )
    key = evidence.relative_to(tmp_path).as_posix()
    record = PromotionRecord("m", "7", "ab" * 32, {key: file_sha256(evidence)}, "promoted", "t", "r", None, "00")

    served = rebuild_explainer(model, paths, policy, record)
    assert served.provenance["matches_signed_evidence"] is True and served.base_value == base
    frame = application_frame([{k: FAVOURABLE[k] for k in policy.data.feature_columns}], policy)
    assert np.allclose(
        explain.shap_values(served.explainer, model, frame, policy),
        explain.shap_values(pipeline_explainer, model, frame, policy),
        atol=1e-12,
    )
    holdout.iloc[::2].to_parquet(paths.prepared_dir / "holdout_data.parquet")  # another background
    with pytest.raises(ChampionIntegrityError, match="base value"):
        rebuild_explainer(model, paths, policy, record)
    evidence.write_text(evidence.read_text() + " ")  # no longer the signed file: not compared
    assert rebuild_explainer(model, paths, policy, record).provenance["matches_signed_evidence"] is None


def test_the_outlier_watch_is_refitted_from_the_training_reference(model, policy, data, tmp_path: Path):
    training, _ = data
    paths = ProjectPaths(tmp_path)
    assert build_outlier_watch(paths, policy).status["active"] is False
    paths.prepared_dir.mkdir(parents=True)
    training.to_parquet(paths.prepared_dir / "training_data.parquet")
    watch = build_outlier_watch(paths, policy)
    assert watch.status["active"] and watch.status["reference_outlier_share"] == pytest.approx(0.02, abs=0.005)
    frame = application_frame([{k: ADVERSE[k] for k in policy.data.feature_columns}], policy)
    assert watch.flags(frame, policy) in ([True], [False])
