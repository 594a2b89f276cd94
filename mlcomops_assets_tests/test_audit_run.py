"""`make run`'s audit is skipped when nothing it reads changed since the last successful audit, and runs
again as soon as something did (or with --force)."""

import dagster as dg
import pytest

from mlcomops_assets import audit_run
from mlcomops_assets.constants import AUDIT_JOB


@pytest.fixture
def project(cli_project):
    return cli_project


def _audits() -> int:
    with dg.DagsterInstance.get() as instance:
        return len(instance.get_runs(filters=dg.RunsFilter(job_name=AUDIT_JOB)))


def test_an_unchanged_audit_is_skipped_and_a_change_or_force_runs_it(project, capsys):
    assert audit_run.run()
    assert "audit up to date" not in capsys.readouterr().out
    assert (project / "data" / "published" / "audit" / "compliance_matrix.json").is_file()
    assert _audits() == 1

    assert audit_run.run()
    assert capsys.readouterr().out.startswith("audit up to date: no run, data, MLflow, code, policy or key change")
    assert _audits() == 1  # nothing launched

    policy = project / "governance.yaml"
    policy.write_text(policy.read_text() + "\n# reviewed\n")  # any byte of the policy counts
    assert audit_run.run()
    assert "audit up to date" not in capsys.readouterr().out
    assert _audits() == 2

    assert audit_run.run(force=True)
    assert "audit up to date" not in capsys.readouterr().out
    assert _audits() == 3


def test_a_lost_matrix_is_not_up_to_date(project, capsys):
    assert audit_run.run()
    (project / "data" / "published" / "audit" / "compliance_matrix.json").unlink()
    assert audit_run.run()
    assert "audit up to date" not in capsys.readouterr().out
    assert _audits() == 2
