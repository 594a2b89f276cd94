"""The policy file is validated on load and errors name the key and what is expected."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlcomops_assets.policy import PolicyError, load_policy, parse_policy
from mlcomops_assets_tests.conftest import REPO, default_policy, write_home


def test_repository_policy_is_valid():
    policy = load_policy(REPO / "governance.yaml")
    assert policy.data.target == "released"
    assert policy.data.feature_columns == ["age", "citizen", "employed", "checks"]
    assert policy.data.protected_attributes == ["colour", "sex", "age", "citizen"]
    assert "colour" not in policy.data.feature_columns


def _error(mutate) -> str:
    raw = default_policy()
    mutate(raw)
    with pytest.raises(PolicyError) as info:
        parse_policy(raw)
    return str(info.value)


def test_unknown_key_is_named():
    message = _error(lambda p: p["gates"]["fairness"].update({"max_demographic_parity_diff": 0.1}))
    assert "gates.fairness.max_demographic_parity_diff" in message
    assert "unknown key" in message


def test_wrong_type_is_named_with_value():
    message = _error(lambda p: p["gates"]["evaluation"].update({"min_roc_auc": "high"}))
    assert "gates.evaluation.min_roc_auc" in message and "'high'" in message


def test_out_of_range_threshold_is_named():
    message = _error(lambda p: p["gates"]["fairness"].update({"max_demographic_parity_difference": 1.5}))
    assert "gates.fairness.max_demographic_parity_difference" in message
    assert "less than or equal to 1" in message


def test_missing_required_key_is_named():
    message = _error(lambda p: p.pop("seed"))
    assert "seed: required key is missing" in message


def test_positive_label_must_be_a_target_value():
    message = _error(lambda p: p["data"].update({"positive_label": "Released"}))
    assert "positive_label 'Released'" in message and "['Yes', 'No']" in message


def test_protected_feature_needs_justification():
    message = _error(lambda p: p["data"]["columns"]["citizen"].pop("justification"))
    assert "data.columns.citizen" in message and "justification" in message


def test_unknown_model_parameter_is_named():
    message = _error(lambda p: p["model"]["candidates"]["gradient_boosting"]["grid"].update({"n_estimator": [10]}))
    assert "model.candidates.gradient_boosting" in message and "n_estimator" in message and "n_estimators" in message


def test_an_interpretable_alternative_is_required():
    message = _error(lambda p: p["model"]["candidates"]["logistic_regression"].update({"interpretable": False}))
    assert "interpretable" in message
    message = _error(lambda p: p["model"]["candidates"].pop("gradient_boosting"))
    assert "at least two candidates" in message


def _waiver(**changes):
    waiver = {
        "gate": "fairness",
        "metric": "equalized_odds_difference",
        "attribute": "citizen",
        "approved_by": "dpo@example.org",
        "reason": "Gap traced to court no-show rates; reviewed with the supervisor.",
        "approved_on": "2026-01-01",
        "expires": "2026-06-30",
    }
    return {**waiver, **changes}


def test_waivers_are_validated():
    assert "expires (2025-01-01) is before approved_on" in _error(
        lambda p: p.update(waivers=[_waiver(expires="2025-01-01")])
    )
    assert "'gdp' is not one of" in _error(lambda p: p.update(waivers=[_waiver(attribute="gdp")]))
    assert "not a fairness gate" in _error(lambda p: p.update(waivers=[_waiver(metric="roc_auc")]))
    assert "waivers.0.approved_by" in _error(lambda p: p.update(waivers=[_waiver(approved_by="")]))
    assert "waivers.0.reason" in _error(lambda p: p.update(waivers=[_waiver(reason="ok")]))


def test_intersection_of_unprotected_column_fails():
    message = _error(lambda p: p["gates"]["fairness"].update({"intersections": [["colour", "checks"]]}))
    assert "['checks']" in message


def test_file_source_needs_a_supported_path():
    message = _error(lambda p: p["data"].update({"source": {"kind": "file", "path": "data/x.xlsx"}}))
    assert "data.source" in message and ".csv or .parquet" in message


def test_missing_and_malformed_files(tmp_path: Path):
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "governance.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    bad.write_text(yaml.safe_dump(["a", "list"]))
    with pytest.raises(PolicyError, match="must be a YAML mapping"):
        load_policy(bad)


def test_fingerprint_tracks_thresholds():
    base = parse_policy(default_policy())
    raw = default_policy()
    raw["gates"]["fairness"]["max_demographic_parity_difference"] = 0.05
    assert parse_policy(raw).fingerprint != base.fingerprint
    assert parse_policy(default_policy()).fingerprint == base.fingerprint


def test_the_provider_documentation_is_not_part_of_the_fingerprint():
    """Editing what only the provider states (Annex IV text) must not re-validate or retrain anything."""
    base = parse_policy(default_policy())
    raw = default_policy()
    raw["documentation"]["intended_purpose"] = "Another wording of the same purpose."
    assert parse_policy(raw).fingerprint == base.fingerprint
    raw.pop("documentation")
    without = parse_policy(raw)
    assert without.fingerprint == base.fingerprint and without.documentation.intended_purpose is None


def test_the_serving_section_is_validated_and_defaults_apply():
    raw = default_policy()
    raw.pop("serving", None)
    serving = parse_policy(raw).serving
    assert (serving.top_reasons, serving.retention_days, serving.poll_seconds) == (3, 365, 5.0)
    assert serving.protected_for_monitoring == [] and "reviewed by a person" in serving.explanation_text
    message = _error(lambda p: p["serving"].update({"protected_for_monitoring": ["colour", "checks"]}))
    assert "serving.protected_for_monitoring lists ['checks']" in message and "not protected" in message
    assert "serving.top_reasons" in _error(lambda p: p["serving"].update({"top_reasons": 0}))
    assert "serving.retention_dayz: unknown key" in _error(lambda p: p["serving"].update({"retention_dayz": 30}))
    twice = _error(lambda p: p["serving"].update({"protected_for_monitoring": ["sex", "sex"]}))
    assert "listed more than once" in twice


def test_the_serving_section_is_not_part_of_the_fingerprint():
    """What the scoring service tells people and how long it keeps inputs changes no data, model or gate."""
    base = parse_policy(default_policy())
    raw = default_policy()
    raw["serving"].update({"explanation_text": "Another wording of the text shown with a decision.", "top_reasons": 5})
    assert parse_policy(raw).fingerprint == base.fingerprint
    raw.pop("serving")
    assert parse_policy(raw).fingerprint == base.fingerprint


# --- strict loading (issue 11, item 7) -------------------------------------------------------------


def _with_duplicate(home: Path) -> tuple[int, int]:
    """The repository policy with ``min_roc_auc`` given a second, laxer value two lines later;
    returns both line numbers."""
    lines = (REPO / "governance.yaml").read_text().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("min_roc_auc:"))
    indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
    lines.insert(first + 1, f"{indent}min_accuracy: 0.0\n{indent}min_roc_auc: 0.1\n")
    (home / "governance.yaml").write_text("".join(lines))
    return first + 1, first + 3


def test_a_duplicated_key_is_refused_with_both_lines(tmp_path: Path):
    first, second = _with_duplicate(tmp_path)
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "governance.yaml")
    message = str(info.value)
    assert f"duplicate key 'min_roc_auc': first on line {first}, again on line {second}" in message
    assert str(tmp_path / "governance.yaml") in message
    # Plain YAML would have kept the last value silently: this is what the strict loader prevents.
    assert yaml.safe_load((tmp_path / "governance.yaml").read_text())["gates"]["evaluation"]["min_roc_auc"] == 0.1


def test_the_same_key_in_different_mappings_and_merges_are_fine(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text("a: {min: 1, max: 2}\nb: {min: 1, max: 2}\nbase: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n")
    with pytest.raises(PolicyError, match="is invalid"):  # loads as YAML, fails only the schema
        load_policy(path)
    path.write_text("a: 1\nb:\n  - {k: 1}\n  - {k: 2, k: 3}\n")
    with pytest.raises(PolicyError, match="duplicate key 'k': first on line 4, again on line 4"):
        load_policy(path)


def test_a_policy_edited_between_two_loads_is_the_one_returned(tmp_path: Path):
    """The parse is reused only for the same bytes: an edit that keeps the file's size and mtime is seen."""
    home = write_home(tmp_path / "home")
    path = home / "governance.yaml"
    first = load_policy(path)
    assert load_policy(path) is first  # same bytes: parsed once
    stat = path.stat()
    text = path.read_text()
    assert "min_roc_auc: 0.6\n" in text
    path.write_text(text.replace("min_roc_auc: 0.6\n", "min_roc_auc: 0.7\n"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    edited = load_policy(path)
    assert edited.gates.evaluation.min_roc_auc == 0.7 and first.gates.evaluation.min_roc_auc == 0.6
    assert edited.fingerprint != first.fingerprint
    path.write_text(text.replace("min_roc_auc: 0.6\n", "min_roc_auc: [0.6\n"))
    with pytest.raises(PolicyError, match="is not valid YAML") as info:
        load_policy(path)  # a broken edit is refused, not answered with the last good parse
    assert str(path) in str(info.value)


def _cli_home(tmp_path: Path) -> Path:
    home = write_home(tmp_path / "home")
    (home / ".dagster_home").mkdir()
    shutil.copy(REPO / "config" / "dagster.yaml", home / ".dagster_home" / "dagster.yaml")
    return home


def _run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLCOMOPS_HOME": str(home), "DAGSTER_HOME": str(home / ".dagster_home")}
    return subprocess.run([sys.executable, "-m", *args], cwd=home, env=env, capture_output=True, text=True, timeout=300)


def test_pipeline_run_refuses_a_duplicated_key_with_exit_2_and_no_traceback(tmp_path: Path):
    home = _cli_home(tmp_path)
    first, second = _with_duplicate(home)
    done = _run_cli(home, "mlcomops_assets.pipeline_run")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert f"duplicate key 'min_roc_auc': first on line {first}, again on line {second}" in done.stderr
    assert not (home / "data").exists(), "nothing may run on a refused policy"


@pytest.mark.parametrize(
    "command",
    [("mlcomops_assets.pipeline_run",), ("mlcomops_assets.monitor_all",), ("mlcomops_assets.champion", "verify")],
    ids=["pipeline_run", "monitor_all", "champion"],
)
def test_every_entry_point_reports_yaml_and_policy_errors_without_traceback(tmp_path: Path, command):
    home = _cli_home(tmp_path)
    cases = {
        "data: [unclosed\n": "is not valid YAML",
        yaml.safe_dump({**default_policy(), "seed": -1}): "seed: Input should be greater than or equal to 0",
    }
    for text, expected in cases.items():
        (home / "governance.yaml").write_text(text)
        done = _run_cli(home, *command)
        assert done.returncode == 2, done.stderr[-2000:]
        assert "Traceback" not in done.stderr and expected in done.stderr
        assert done.stderr.startswith("error: ")


def test_an_asset_run_that_loads_a_broken_policy_fails_with_the_message(tmp_path: Path):
    """Definitions built on a good policy; the file is then broken, as an edit while the UI runs would."""
    import dagster as dg

    from mlcomops_assets.definitions import build_defs

    home = write_home(tmp_path / "home")
    defs = build_defs(home)
    first, second = _with_duplicate(home)
    (home / ".dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(home / ".dagster_home")) as instance:
        job = defs.resolve_job_def("end_to_end")
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, asset_selection=[dg.AssetKey("raw_data")]
        )
    assert not result.success
    (failure,) = result.get_step_failure_events()
    message = failure.event_specific_data.error.message
    assert f"duplicate key 'min_roc_auc': first on line {first}, again on line {second}" in message
    assert not (home / "data" / "raw").exists()


def test_a_numeric_protected_attribute_without_bins_is_refused_with_a_proposal():
    """Unbinned, every age would be its own group and the attribute could never be evaluated."""
    raw = default_policy()
    age = raw["data"]["columns"]["age"]
    age.pop("fairness_bins")
    age.update({"min": 10, "max": 100})
    with pytest.raises(PolicyError, match=r"age.*needs fairness_bins, for example \[10, 40, 70, 101\]"):
        parse_policy(raw)


def _integer_target(raw: dict, dtype: str = "category") -> None:
    raw["data"]["columns"]["released"] = {"role": "target", "dtype": dtype, "allowed_values": [1, 0]}
    raw["data"]["positive_label"] = 1


@pytest.mark.parametrize("dtype", ["category", "integer"])
def test_integer_labels_are_accepted_as_labels(dtype):
    raw = default_policy()
    _integer_target(raw, dtype)
    data = parse_policy(raw).data
    assert data.columns["released"].allowed_values == ["1", "0"] and data.positive_label == "1"
    assert data.columns["released"].dtype.value == "category"


def test_unquoted_yes_no_labels_are_refused_with_the_fix():
    message = _error(lambda p: p["data"]["columns"]["employed"].update({"allowed_values": [True, False]}))
    assert "data.columns.employed.allowed_values" in message and "quote the label" in message


def test_dropped_columns_need_no_dtype_but_kept_ones_do():
    raw = default_policy()
    raw["data"]["columns"]["name"] = {"role": "identifier"}
    raw["data"]["columns"]["notes"] = {"role": "ignored"}
    data = parse_policy(raw).data
    assert {"name", "notes"} <= set(data.dropped_columns) and data.columns["name"].dtype is None
    message = _error(lambda p: p["data"]["columns"]["checks"].pop("dtype"))
    assert "data.columns.checks" in message and "dtype is required for a feature column" in message
    message = _error(lambda p: p["data"]["columns"].update({"id": {"role": "identifier", "treatment": "pseudonymize"}}))
    assert "data.columns.id" in message and "dtype is required" in message


def _without_time(raw: dict) -> None:
    del raw["data"]["time_column"], raw["data"]["training_cutoff"]
    raw["data"]["columns"]["year"]["role"] = "feature"


def test_no_time_column_is_a_supported_policy():
    raw = default_policy()
    _without_time(raw)
    data = parse_policy(raw).data
    assert not data.has_time and data.time_column is None and data.training_cutoff is None


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: p["data"].pop("time_column"), "has role time: name it in data.time_column"),
        (lambda p: p["data"].pop("training_cutoff"), "time_column 'year' needs a training_cutoff"),
        (
            lambda p: (_without_time(p), p["data"].update({"training_cutoff": 2000})),
            "training_cutoff needs a time_column",
        ),
    ],
)
def test_time_column_and_cutoff_go_together(mutate, expected):
    assert expected in _error(mutate)


# Settings that describe one dataset, so no code default can be right for them.
_DATASET_SPECIFIC = {"gates.fairness.intersections", "serving.protected_for_monitoring"}
# Sections that hold every threshold, sample size and method the pipeline (and the scoring service)
# decides with.
_DECIDING_SECTIONS = (
    "seed",
    "split",
    "model.selection",
    "model.mitigation",
    "explainability",
    "monitoring",
    "gates",
    "serving",
)


def _leaves(node: object, prefix: str) -> dict[str, object]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, object] = {}
    for key, value in node.items():
        out.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _section(tree: dict, dotted: str) -> object:
    for part in dotted.split("."):
        tree = tree.get(part, {}) if isinstance(tree, dict) else {}
    return tree


def test_the_policy_file_writes_out_every_value_the_pipeline_decides_with():
    """A reviewer reads every threshold in governance.yaml itself: none is left to a code default."""
    written = yaml.safe_load((REPO / "governance.yaml").read_text())
    validated = load_policy(REPO / "governance.yaml").model_dump(mode="json")
    missing = [
        key
        for section in _DECIDING_SECTIONS
        for key in _leaves(_section(validated, section), section)
        if key not in _leaves(_section(written, section), section)
    ]
    assert missing == []


def test_no_code_default_differs_from_the_policy_file():
    """Deleting a key from governance.yaml must not change a decision: the code's default is the file's value."""
    raw = yaml.safe_load((REPO / "governance.yaml").read_text())
    bare = {k: v for k, v in raw.items() if k not in ("split", "explainability", "monitoring", "gates", "serving")}
    bare["model"] = {k: v for k, v in raw["model"].items() if k not in ("selection", "mitigation")}
    bare.setdefault("gates", {})["fairness"] = {"intersections": raw["gates"]["fairness"]["intersections"]}
    from_file = _leaves(parse_policy(raw).model_dump(mode="json"), "")
    from_code = _leaves(parse_policy(bare).model_dump(mode="json"), "")
    differing = sorted(k for k in from_file if from_file[k] != from_code[k] and k not in _DATASET_SPECIFIC)
    assert differing == []
