"""Without a verified champion the service starts, says why it is not ready, and decides nothing: a
project home with a policy and nothing trained (no MLflow store; the service does not create one)."""

from __future__ import annotations

from pathlib import Path

from mlcomops_assets_tests.conftest import write_home
from mlcomops_assets_tests.serving.conftest import ADVERSE, running_service


def test_without_a_champion_ready_and_decisions_answer_503_with_the_reason(tmp_path: Path):
    home = write_home(tmp_path / "home")
    with running_service(home, "--poll-seconds", "0.5", ready=False) as service:
        ready = service.get("/ready")
        assert ready.status_code == 503
        reason = ready.json()["reason"]
        assert "no MLflow store" in reason or "being loaded" in reason
        decided = service.post("/decisions", ADVERSE)
        assert decided.status_code == 503 and decided.json()["error"] == "no verified champion"
        assert service.post("/decisions", {**ADVERSE, "checks": 99}).status_code == 422, "validation comes first"
        assert service.get("/decisions/00000000-0000-4000-8000-000000000000").status_code == 404
        assert "mlcomops_ready 0.0" in service.get("/metrics").text
        assert service.health()["serving"] is None
    assert not (home / ".mlflow" / "mlflow.db").exists(), "the service never creates an MLflow store"
