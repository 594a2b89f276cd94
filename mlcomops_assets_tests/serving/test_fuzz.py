"""Property-based fuzzing of the scoring service from its own OpenAPI schema (schemathesis), against
127.0.0.1 only: valid and invalid applications, batches, receipts and outcomes, and stateful sequences
(decide, read the receipt, report the outcome). No request may end in a server error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlcomops_assets_tests.serving.conftest import Service

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 30  # per operation and phase: bounded, about 30 s on 2 cores


def test_no_request_ends_in_a_server_error(service: Service, tmp_path: Path):
    st = Path(sys.executable).parent / "st"
    assert service.url.startswith("http://127.0.0.1:")
    done = subprocess.run(
        [
            str(st),
            "run",
            f"{service.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "20240601",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout, done.stdout[-3000:]
    assert service.get("/ready").status_code == 200, "the service still serves after the fuzzing"
