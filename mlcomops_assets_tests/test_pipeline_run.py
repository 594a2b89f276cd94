"""`make run` recomputes nothing when data, policy, code and batches are unchanged, and says so."""

import dagster as dg
import pytest
import yaml

from mlcomops_assets import pipeline_run
from mlcomops_assets.settings import ProjectPaths


@pytest.fixture
def project(cli_project):
    return cli_project


@pytest.mark.e2e
def test_second_run_is_skipped_with_its_reason_and_changes_are_not(project, capsys):
    paths = ProjectPaths(project)
    assert pipeline_run.run()
    assert "up to date" not in capsys.readouterr().out
    assert pipeline_run.run()
    message = capsys.readouterr().out
    assert message.startswith("up to date: source sklego_arrests@scikit-lego==") and "nothing recomputed" in message
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="end_to_end"))
        assert len(runs) == 1  # the second call launched nothing
        digest = pipeline_run.inputs_hash(pipeline_run.inputs(paths, instance))
        assert runs[0].tags[pipeline_run.INPUTS_TAG] == digest
        # Lost results are not "up to date", whatever the tag says.
        champion = paths.data_dir / "champion/champion_model.json"
        saved = champion.read_bytes()
        champion.unlink()
        assert pipeline_run.up_to_date_run(paths, instance, digest) is None
        champion.write_bytes(saved)
        assert pipeline_run.up_to_date_run(paths, instance, digest) is not None


def test_inputs_change_with_the_policy_and_the_source(project):
    paths = ProjectPaths(project)
    with dg.instance_for_test() as instance:
        before = pipeline_run.inputs(paths, instance)
        policy = yaml.safe_load(paths.policy_file.read_text())
        policy["gates"]["fairness"]["max_equalized_odds_difference"] = 0.2
        paths.policy_file.write_text(yaml.safe_dump(policy))
        after = pipeline_run.inputs(paths, instance)
        assert after["policy"] != before["policy"] and after["code"] == before["code"]
        (project / "source.csv").write_text("a,b\n1,2\n")
        policy["data"]["source"] = {"kind": "file", "path": "source.csv"}
        paths.policy_file.write_text(yaml.safe_dump(policy))
        first = pipeline_run.inputs(paths, instance)["source"]
        (project / "source.csv").write_text("a,b\n1,3\n")
        assert pipeline_run.inputs(paths, instance)["source"] != first
        assert pipeline_run.inputs_hash(before) != pipeline_run.inputs_hash(after)


@pytest.mark.e2e
def test_a_blocked_run_prints_why_and_where_the_details_are(project, capsys):
    """`make run` blocked by the selection gate names the check, its reason with the numbers, and the
    selection report; not only the check's name."""
    paths = ProjectPaths(project)
    policy = yaml.safe_load(paths.policy_file.read_text())
    policy["gates"]["evaluation"]["min_roc_auc"] = 0.99  # no model on this data reaches it
    paths.policy_file.write_text(yaml.safe_dump(policy))
    assert not pipeline_run.run()
    err = capsys.readouterr().err
    assert "check model_selection_report:a_candidate_passes_every_gate: no deployable candidate passes" in err
    assert "0.99" in err  # the gate's number, with the observed value beside it
    assert f"details: {paths.selection_dir / 'model_selection.html'}" in err
    assert (paths.selection_dir / "model_selection.html").exists()
