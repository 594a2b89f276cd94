"""The repository's dvc.yaml is valid for DVC and declares the policy as params, so thresholds diff."""

import shutil

from mlcomops_assets_tests.conftest import REPO, dvc_executable, run


def test_stages_are_declared_with_the_dagster_cli():
    listed = run([dvc_executable(), "stage", "list"], REPO).stdout
    for stage in ("ingest", "validate", "prepare", "train", "report"):
        assert stage in listed
    assert "dagster asset materialize" in (REPO / "dvc.yaml").read_text()


def test_every_declared_param_exists_in_the_policy():
    """DVC refuses to commit a stage whose param is missing from the file (seen with a defaulted key)."""
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    policy = yaml.safe_load((REPO / "governance.yaml").read_text())
    missing = []
    for name, stage in stages.items():
        for entry in stage.get("params", []):
            for file_name, keys in entry.items():
                assert file_name == "governance.yaml"
                for dotted in keys:
                    node = policy
                    for part in dotted.split("."):
                        if not isinstance(node, dict) or part not in node:
                            missing.append(f"{name}: {dotted}")
                            break
                        node = node[part]
    assert missing == []


def test_params_diff_shows_a_changed_threshold(tmp_path):
    for name in ("dvc.yaml", "governance.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    run(["git", "init", "-q"], tmp_path)
    run([dvc_executable(), "init", "-q"], tmp_path)
    run(["git", "add", "-A"], tmp_path)
    run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "v1"], tmp_path)
    policy = tmp_path / "governance.yaml"
    policy.write_text(
        policy.read_text().replace("max_demographic_parity_difference: 0.15", "max_demographic_parity_difference: 0.05")
    )
    diff = run([dvc_executable(), "params", "diff", "--md"], tmp_path).stdout
    assert "gates" in diff and "0.15" in diff and "0.05" in diff
