"""The audit group on real runs: each registered version's evidence bundle verifies offline and chains
to the previous version's, a blocked version is bundled too, tampering with any kind of real evidence
is named by `mlcomops audit verify`, wiping Dagster's history leaves the evidence verifiable, and the
compliance matrix turns a requirement to failed when its gate fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mlcomops_assets.constants import AUDIT_BUNDLE, COMPLIANCE_MATRIX
from mlcomops_assets.lib import audit_bundle as ab
from mlcomops_assets.lib.promotion_record import default_key_file, load_private_key, public_key_hex
from mlcomops_assets_tests.conftest import REPO, audit, default_policy, dvc_executable, materialize, run, write_home

MODEL = default_policy()["model"]["registered_name"]


def _bundle_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == AUDIT_BUNDLE]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _matrix(home: Path) -> dict[str, dict]:
    rows = json.loads((home / "data" / "published" / "audit" / "compliance_matrix.json").read_text())
    return {row["id"]: row for row in (rows["rows"] if isinstance(rows, dict) else rows)}


@pytest.fixture(scope="module")
def trusted_key() -> str:
    return public_key_hex(load_private_key(default_key_file()))


def _set_policy(home: Path, change) -> None:
    policy = default_policy()
    change(policy)
    (home / "governance.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """Five registered versions in one home, the audit job after graph runs as `make run` does: v1 and v2
    promoted; v3 registered under an additivity limit no explainer meets, so it is blocked before
    promotion; then a fairness limit no candidate meets, so nothing new is registered; then v4 and v5
    registered by two graph runs with no audit in between."""
    home = write_home(tmp_path_factory.mktemp("audited_home"))
    run(["git", "init", "-q"], home)
    run([dvc_executable(), "init", "-q"], home)
    results = {}

    def graph_then_audit(step: str, succeeds: bool) -> None:
        with materialize(home) as (graph, _):
            assert graph.success is succeeds
        with audit(home) as (result, _):
            assert result.success
            results[step] = _bundle_metadata(result)
        results[step]["matrix"] = _matrix(home)

    graph_then_audit("v1", True)
    graph_then_audit("v2", True)
    _set_policy(home, lambda p: p["gates"].setdefault("explainability", {}).update(max_additivity_error=1e-300))
    graph_then_audit("v3", False)
    _set_policy(home, lambda p: p["gates"]["fairness"].update(max_demographic_parity_difference=0.0001))
    graph_then_audit("unfair", False)
    # Two versions registered before the next audit (runs that ended within one sensor interval).
    _set_policy(home, lambda p: None)
    with materialize(home) as (graph, _):
        assert graph.success
    graph_then_audit("v5", True)
    return home, results


def _verify(path: Path, key: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlcomops_assets.cli", "audit", "verify", str(path), "--public-key", key],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_every_registered_version_has_a_bundle_and_the_chain_verifies(audited, trusted_key):
    home, results = audited
    root = home / "data" / "audit" / MODEL
    assert [n for n, _ in ab.version_dirs(root)] == [1, 2, 3, 4, 5]
    chain = ab.verify_chain(root, trusted_key)
    assert chain.ok, ab.report(chain)
    manifests = [json.loads((root / f"v{n}" / ab.MANIFEST).read_text()) for n in (1, 2, 3, 4, 5)]
    assert manifests[0]["previous_manifest_sha256"] is None
    for n in (2, 3, 4, 5):
        assert manifests[n - 1]["previous_manifest_sha256"] == ab.manifest_sha256(root / f"v{n - 1}" / ab.MANIFEST)
    assert [m["meta"]["promoted"] for m in manifests] == [True, True, False, True, True]
    assert results["v3"]["previous_version"] == "v2"
    completed = _verify(root, trusted_key)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_a_version_registered_between_two_audits_is_bundled_from_the_registry(audited):
    home, results = audited
    assert results["v5"]["previous_version"] == "v4"
    v4 = json.loads((home / "data" / "audit" / MODEL / "v4" / ab.MANIFEST).read_text())
    assert "replaced by a later version" in v4["meta"]["missing_evidence"][0]
    kinds = {item["kind"] for item in v4["items"]}
    assert {"model", "run", "record", "documentation"} <= kinds
    assert "report" not in kinds  # the reports on disk are v5's: never attributed to v4
    record = json.loads(
        (home / "data" / "audit" / MODEL / "v4" / "items" / "record" / "promotion_verdict.json").read_text()
    )
    assert record["promoted"] and record["promotion_record"]["artifact_sha256"] == v4["meta"]["artifact_sha256"]


def test_a_bundle_holds_each_kind_of_evidence_of_its_own_version(audited):
    home, _ = audited
    folder = home / "data" / "audit" / MODEL / "v2"
    manifest = json.loads((folder / ab.MANIFEST).read_text())
    kinds = {item["kind"] for item in manifest["items"]}
    assert kinds >= {"model", "report", "policy", "validation", "data_version", "lock", "record", "run", "sbom"}
    assert kinds >= {"documentation", "index"}
    names = {item["name"] for item in manifest["items"]}
    for name in ("model_evaluation.json", "fairness_report.json", "shap_explainer.json", "sbom.cdx.json"):
        assert name in names
    assert any(n.startswith("model/") and n.endswith("MLmodel") for n in names)
    assert {"annex_iv.md", "annex_iv.html", "model_card.md", "model_card.html", "compliance_matrix.json"} <= names
    evaluation = json.loads((folder / "items" / "report" / "model_evaluation.json").read_text())
    assert evaluation["model_uri"] == f"models:/{MODEL}/2"
    record = json.loads((folder / "items" / "record" / "promotion_verdict.json").read_text())
    assert record["promoted"] and record["promotion_record"]["artifact_sha256"] == manifest["meta"]["artifact_sha256"]
    runs = [i for i in manifest["items"] if i["kind"] == "run"]
    assert len(runs) >= 2  # every candidate's run
    exported = json.loads((folder / runs[0]["path"]).read_text())
    assert exported["metrics"] and all(len(a["sha256"]) == 64 for a in exported["artifacts"])
    sbom = json.loads((folder / "items" / "sbom" / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX" and len(sbom["components"]) > 100
    assert manifest["meta"]["missing_evidence"] == []


def test_the_blocked_version_is_bundled_with_what_blocked_it(audited):
    home, results = audited
    manifest = json.loads((home / "data" / "audit" / MODEL / "v3" / ab.MANIFEST).read_text())
    assert manifest["meta"]["promoted"] is False
    assert manifest["meta"]["verdict"].startswith("not promoted")
    verdict = json.loads(
        (home / "data" / "audit" / MODEL / "v3" / "items" / "record" / "promotion_verdict.json").read_text()
    )
    assert verdict["promoted"] is False and verdict["promotion_record"] is None
    failed = {row["id"] for row in results["v3"]["matrix"].values() if row["status"] == "failed"}
    assert any("explainab" in row_id for row_id in failed), failed


def test_a_tightened_fairness_limit_turns_its_requirements_to_failed(audited):
    _, results = audited
    before = {i: row["status"] for i, row in results["v2"]["matrix"].items()}
    after = {i: row["status"] for i, row in results["unfair"]["matrix"].items()}
    turned = {i for i in after if after[i] == "failed" and before[i] != "failed"}
    assert {"bafin-bias", "euaia-art10-bias"} <= turned, turned
    assert before["euaia-art10-bias"] == "satisfied"
    # Nothing new was registered: the newest bundle (v3) now carries the new matrix, and says what it replaced.
    assert results["unfair"]["model_version"].endswith("v3")
    manifest = json.loads((audited[0] / "data" / "audit" / MODEL / "v3" / ab.MANIFEST).read_text())
    assert manifest["meta"]["replaces_manifest_sha256"] == results["v3"]["manifest_sha256"]
    assert (
        ab.manifest_sha256(audited[0] / "data" / "audit" / MODEL / "v3" / ab.MANIFEST)
        == results["unfair"]["manifest_sha256"]
    )


@pytest.mark.parametrize(
    ("item", "kind"),
    [
        ("model/model.skops", "model"),
        ("model_evaluation.json", "report"),
        ("governance.yaml", "policy"),
        ("contract_verdict.json", "validation"),
        ("promotion_verdict.json", "record"),
        ("sbom.cdx.json", "sbom"),
        ("annex_iv.html", "documentation"),
    ],
)
def test_a_flipped_byte_in_real_evidence_is_named(audited, trusted_key, tmp_path, item, kind):
    home, _ = audited
    copy = tmp_path / "v2"
    shutil.copytree(home / "data" / "audit" / MODEL / "v2", copy)
    target = copy / "items" / kind / item
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    completed = _verify(copy, trusted_key)
    assert completed.returncode == 1
    changed = [line for line in completed.stdout.splitlines() if "CHANGED" in line]
    assert len(changed) == 1 and item in changed[0], completed.stdout


def test_an_unchanged_version_is_not_rebundled(audited):
    home, results = audited
    folder = home / "data" / "audit" / MODEL / "v5"
    before = ab.manifest_sha256(folder / ab.MANIFEST)
    with audit(home) as (result, _):
        assert result.success
    assert ab.manifest_sha256(folder / ab.MANIFEST) == before == results["v5"]["manifest_sha256"]
    # An older bundle is left as it was too (v3 was last rebuilt when the fairness run changed the matrix).
    assert (
        ab.manifest_sha256(home / "data" / "audit" / MODEL / "v3" / ab.MANIFEST) == results["unfair"]["manifest_sha256"]
    )


def test_the_compliance_matrix_is_a_table_in_the_ui(audited):
    home, _ = audited
    with audit(home) as (result, instance):
        event = instance.get_latest_materialization_event(COMPLIANCE_MATRIX)
    metadata = event.asset_materialization.metadata
    rows = metadata["matrix"].value.records
    assert len(rows) == len(_matrix(home))
    statuses = {r.data["status"] for r in rows}
    assert statuses <= {"satisfied", "waived", "failed", "not evaluated", "not covered"}
    assert "not covered" in statuses and "satisfied" in statuses


def test_the_summary_names_the_matrix_and_the_bundle_with_its_verify_command(audited, trusted_key):
    from mlcomops_assets.settings import ProjectPaths
    from mlcomops_assets.summary import render

    home, results = audited
    with dg.instance_for_test(temp_dir=str(home / ".dagster_home")) as instance:
        text = render(ProjectPaths(home), instance)
    assert f"audit bundle        {MODEL} v5" in text
    assert f"--public-key {trusted_key}" in text
    counts = {}
    for row in results["v5"]["matrix"].values():
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    matrix_line = next(line for line in text.splitlines() if line.startswith("compliance matrix"))
    assert all(f"{n} {status}" in matrix_line for status, n in counts.items())


# Last: it wipes the history the tests above read.
def test_wiping_dagster_history_leaves_the_evidence_verifiable(audited, trusted_key, tmp_path):
    home, _ = audited
    with dg.instance_for_test(temp_dir=str(home / ".dagster_home")) as instance:
        instance.wipe_assets(
            [AUDIT_BUNDLE, COMPLIANCE_MATRIX, dg.AssetKey("trained_model"), dg.AssetKey("champion_model")]
        )
        assert instance.get_latest_materialization_event(AUDIT_BUNDLE) is None
    assert _verify(home / "data" / "audit" / MODEL, trusted_key).returncode == 0
