"""The repository's dvc.yaml is valid for DVC and declares the policy as params, so thresholds diff."""

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from mlcomops_assets.lib.policy_params import write_policy_params
from mlcomops_assets.policy import load_policy
from mlcomops_assets_tests.conftest import REPO, default_policy, dvc_executable, run


def test_stages_are_declared_with_the_dagster_cli():
    listed = run([dvc_executable(), "stage", "list"], REPO).stdout
    for stage in ("ingest", "validate", "prepare", "train", "report"):
        assert stage in listed
    assert "dagster asset materialize" in (REPO / "dvc.yaml").read_text()


UNQUOTED_WAIVER = """
waivers:
  - gate: fairness
    metric: equalized_odds_difference
    attribute: citizen
    up_to: 0.3
    approved_by: dpo@example.org
    reason: Gap traced to court no-show rates; reviewed with the supervisor.
    approved_on: 2026-01-01
    expires: 2027-06-30
"""


def _no_time_policy_text() -> str:
    """The default policy without a time column, with a waiver whose dates YAML reads as dates."""
    policy = default_policy()
    del policy["data"]["time_column"], policy["data"]["training_cutoff"]
    policy["data"]["columns"]["year"]["role"] = "ignored"
    del policy["split"]  # left to its defaults
    policy.pop("waivers")
    return yaml.safe_dump(policy, sort_keys=False) + UNQUOTED_WAIVER


def _declared_params() -> list[str]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    keys = []
    for stage in stages.values():
        for entry in stage.get("params", []):
            for file_name, names in entry.items():
                assert file_name == "params.yaml"
                keys += [k for k in names if k not in keys]
    return keys


def _write_params(home: Path) -> None:
    write_policy_params(load_policy(home / "governance.yaml"), home / "params.yaml")


@pytest.mark.parametrize("variant", ["default", "no time column, defaults, unquoted waiver dates"])
def test_every_declared_param_exists_in_the_generated_params(tmp_path, variant):
    """DVC refuses to commit a stage whose param is missing from the file (seen with a defaulted key)."""
    text = (REPO / "governance.yaml").read_text() if variant == "default" else _no_time_policy_text()
    (tmp_path / "governance.yaml").write_text(text)
    _write_params(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    missing = []
    for dotted in _declared_params():
        node = params
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(dotted)
                break
            node = node[part]
    assert missing == []


def _git_dvc_repo(path: Path) -> None:
    run(["git", "init", "-q"], path)
    run([dvc_executable(), "init", "-q"], path)


def _commit(path: Path, message: str) -> None:
    run(["git", "add", "-A"], path)
    run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", message], path)


def test_unquoted_waiver_dates_and_defaulted_keys_pass_dvc_commit(tmp_path):
    """The failure a user met: `dvc commit` after a successful run refused a waiver's unquoted date
    (and would refuse a key left to its default). Every param the repository's stages declare is
    committed here through real DVC, from a policy with both."""
    raw = tmp_path / "governance.yaml"
    raw.write_text(_no_time_policy_text())
    assert isinstance(yaml.safe_load(raw.read_text())["waivers"][0]["approved_on"], dt.date)  # really unquoted
    _write_params(tmp_path)
    (tmp_path / "out.txt").write_text("result\n")
    stage = {"cmd": "echo result > out.txt", "params": [{"params.yaml": _declared_params()}], "outs": ["out.txt"]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"all_params": stage}}))
    _git_dvc_repo(tmp_path)
    run([dvc_executable(), "commit", "--force", "--quiet"], tmp_path)
    lock = yaml.safe_load((tmp_path / "dvc.lock").read_text())
    stored = lock["stages"]["all_params"]["params"]["params.yaml"]
    assert stored["waivers"][0]["approved_on"] == "2026-01-01"
    assert stored["data.time_column"] is None and stored["split"]["holdout_fraction"] == 0.25
    assert "params.yaml" not in run([dvc_executable(), "status"], tmp_path).stdout


def test_params_diff_shows_a_changed_threshold(tmp_path):
    for name in ("dvc.yaml", "governance.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    _write_params(tmp_path)
    _git_dvc_repo(tmp_path)
    _commit(tmp_path, "v1")
    policy = tmp_path / "governance.yaml"
    policy.write_text(
        policy.read_text().replace("max_demographic_parity_difference: 0.15", "max_demographic_parity_difference: 0.05")
    )
    assert "0.05" not in run([dvc_executable(), "params", "diff", "--md"], tmp_path).stdout  # not yet regenerated
    _write_params(tmp_path)
    diff = run([dvc_executable(), "params", "diff", "--md"], tmp_path).stdout
    assert "gates.fairness.max_demographic_parity_difference" in diff and "0.15" in diff and "0.05" in diff


def test_params_are_rewritten_only_when_they_change(tmp_path):
    shutil.copy(REPO / "governance.yaml", tmp_path / "governance.yaml")
    policy = load_policy(tmp_path / "governance.yaml")
    assert write_policy_params(policy, tmp_path / "params.yaml")
    assert not write_policy_params(policy, tmp_path / "params.yaml")
