"""Observing compliance evidence on a real Dagster instance: materializations and check evaluations of
throwaway assets read back as passed, failed, waived, not evaluated or missing, then through the matrix."""

from collections.abc import Iterator

import dagster as dg
import pytest

from mlcomops_assets.compliance_evidence import code_location, known_evidence_ids, observe, parse_evidence_id
from mlcomops_assets.lib import compliance as c
from mlcomops_assets.lib.compliance import EvidenceStatus as E
from mlcomops_assets.lib.compliance import Requirement, RowStatus

WAIVER = "citizen: equalized_odds_difference 0.177 > 0.250 waived by dpo@example.org until 2027-01-01"
# What the gate check decides in the next run: the "policy" of these throwaway assets.
LIMITS = {"max_gap": 0.25}
GAP = 0.177


@dg.asset(
    check_specs=[
        dg.AssetCheckSpec("ok", asset="alpha"),
        dg.AssetCheckSpec("broken", asset="alpha"),
        dg.AssetCheckSpec("excused", asset="alpha"),
        dg.AssetCheckSpec("unmeasured", asset="alpha"),
        dg.AssetCheckSpec("gap_within_limit", asset="alpha", blocking=True),
    ]
)
def alpha():
    yield dg.Output(1)
    yield dg.AssetCheckResult(
        check_name="ok", passed=True, metadata={"status": "passed", "verdict": "passed: roc_auc 0.697 >= 0.600"}
    )
    yield dg.AssetCheckResult(
        check_name="broken",
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"status": "failed", "verdict": "failed: drift_share 0.500 >= 0.500"},
    )
    yield dg.AssetCheckResult(
        check_name="excused",
        passed=True,
        description=f"passed only under waivers: gaps within limits except {WAIVER}",
        metadata={"status": "waived", "waived": WAIVER},
    )
    yield dg.AssetCheckResult(
        check_name="unmeasured",
        passed=False,
        metadata={"status": "not evaluated", "verdict": "sex: not evaluated: 1 group(s) with enough rows, 2 needed"},
    )
    passed = LIMITS["max_gap"] >= GAP
    verdict = f"{'passed' if passed else 'failed'}: citizen: equalized_odds_difference {GAP:.3f} "
    verdict += f"{'<=' if passed else '>'} {LIMITS['max_gap']:.3f}"
    yield dg.AssetCheckResult(
        check_name="gap_within_limit",
        passed=passed,
        metadata={
            "status": "passed" if passed else "failed",
            "verdict": verdict,
            "gap": GAP,
            "gap.limit": LIMITS["max_gap"],
        },
    )


@dg.asset(deps=[alpha], check_specs=[dg.AssetCheckSpec("downstream_ok", asset="beta")])
def beta():
    yield dg.Output(2)
    yield dg.AssetCheckResult(check_name="downstream_ok", passed=True, description="passed: 0 of 10 rows break it")


@dg.asset_check(asset=beta, name="leakage")
def leakage() -> dg.AssetCheckResult:
    """Like the leakage checks: no status, ``evaluated: False`` when the figure cannot be computed."""
    return dg.AssetCheckResult(
        passed=False, description="not evaluated: one label class", metadata={"evaluated": False}
    )


@dg.asset
def release():
    return dg.Output(3, metadata={"verdict": "promoted", "waivers": WAIVER})


@dg.asset(check_specs=[dg.AssetCheckSpec("later", asset="never")])
def never():
    yield dg.Output(4)
    yield dg.AssetCheckResult(check_name="later", passed=True)


BATCHES = dg.StaticPartitionsDefinition(["2001", "2002"])


@dg.asset(partitions_def=BATCHES, check_specs=[dg.AssetCheckSpec("batch_ok", asset="batched")])
def batched(context: dg.AssetExecutionContext):
    yield dg.Output(5)
    yield dg.AssetCheckResult(
        check_name="batch_ok",
        passed=True,
        metadata={
            "status": "passed",
            "verdict": "passed: outlier_share 0.007 <= 0.060",
            "batch": context.partition_key,
        },
    )


DEFS = dg.Definitions(assets=[alpha, beta, release, never, batched], asset_checks=[leakage])
ALL_CHECKS = ["ok", "broken", "excused", "unmeasured", "gap_within_limit"]


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    LIMITS["max_gap"] = 0.25
    with dg.instance_for_test() as inst:
        yield inst
    LIMITS["max_gap"] = 0.25


def _materialize(instance, assets, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, instance=instance, raise_on_error=False, **kwargs)


def test_known_evidence_ids_lists_assets_and_checks():
    known = known_evidence_ids(DEFS)
    assert "asset:alpha" in known and "check:beta:leakage" in known and "check:batched:batch_ok" in known
    assert len(known) == 5 + 9
    assert known_evidence_ids(DEFS.resolve_asset_graph()) == known
    assert parse_evidence_id("check:a/b:c") == dg.AssetCheckKey(dg.AssetKey(["a", "b"]), "c")
    assert parse_evidence_id("asset:a/b") == dg.AssetKey(["a", "b"])
    with pytest.raises(ValueError):
        parse_evidence_id("check:nocheck")


def test_every_outcome_is_observed(instance):
    first = _materialize(instance, [alpha, beta, release, leakage])
    assert first.success  # failed checks that do not block fail no step
    for partition in ("2001", "2002"):
        assert _materialize(instance, [batched], partition_key=partition).success
    ids = [
        "asset:alpha",
        "check:alpha:*",
        "check:beta:leakage",
        "asset:release",
        "asset:never",
        "check:never:later",
        "asset:batched",
        "check:batched:batch_ok",
        "asset:ghost",
        "check:ghost:*",
    ]
    seen = observe(instance, DEFS, ids)
    run_id = first.run_id
    assert sorted(seen) == sorted(
        ["asset:alpha", *(f"check:alpha:{n}" for n in ALL_CHECKS), "check:beta:leakage", "asset:release"]
        + ["asset:never", "check:never:later", "asset:batched", "check:batched:batch_ok", "asset:ghost"]
    )  # the pattern is expanded; a pattern that matches nothing observes nothing
    alpha_seen = seen["asset:alpha"]
    assert (alpha_seen.status, alpha_seen.run_id) == (E.PASSED, run_id)
    assert alpha_seen.when and alpha_seen.when.endswith("+00:00")
    assert alpha_seen.detail == f"materialized at {alpha_seen.when} in run {run_id[:8]}"

    ok = seen["check:alpha:ok"]
    assert (ok.status, ok.detail, ok.run_id) == (E.PASSED, "passed: roc_auc 0.697 >= 0.600", run_id)
    assert seen["check:alpha:broken"].status == E.FAILED
    assert seen["check:alpha:broken"].detail == "(warning) failed: drift_share 0.500 >= 0.500"
    excused = seen["check:alpha:excused"]
    assert (excused.status, excused.waived_by, excused.waived_until) == (E.WAIVED, "dpo@example.org", "2027-01-01")
    assert seen["check:alpha:unmeasured"].status == E.NOT_EVALUATED
    assert seen["check:alpha:gap_within_limit"].detail == "passed: citizen: equalized_odds_difference 0.177 <= 0.250"
    assert seen["check:beta:leakage"].status == E.NOT_EVALUATED

    release_seen = seen["asset:release"]
    assert (release_seen.status, release_seen.waived_by, release_seen.waived_until) == (
        E.WAIVED,
        "dpo@example.org",
        "2027-01-01",
    )
    assert seen["asset:never"] == c.Observation(E.MISSING, "never materialized")
    assert seen["check:never:later"] == c.Observation(E.MISSING, "never evaluated")
    assert seen["asset:ghost"] == c.Observation(E.MISSING, "not defined in this code location")
    # A partitioned asset: the latest materialization of any partition, and which one it was.
    assert (seen["asset:batched"].status, seen["asset:batched"].partition) == (E.PASSED, "2002")
    assert "partition 2002" in seen["asset:batched"].detail
    assert (seen["check:batched:batch_ok"].status, seen["check:batched:batch_ok"].partition) == (E.PASSED, "2002")


def test_a_skipped_check_keeps_its_last_evaluation_and_a_tightened_limit_fails_the_row(instance):
    """The done-when of the issue, on throwaway assets: the same requirements go from satisfied to failed
    when the gate's limit is tightened, in the next run."""
    requirements = [
        Requirement(
            "fairness",
            "BaFin",
            "Principles 2021",
            "Avoiding bias",
            "text",
            evidence=("check:alpha:gap_within_limit", "check:beta:downstream_ok", "asset:beta"),
        ),
        Requirement("waived", "GDPR", "Art. 5(1)(a)", "t", "text", evidence=("asset:alpha", "check:alpha:excused")),
        Requirement("missing", "GDPR", "Art. 32", "t", "text", evidence=("asset:alpha", "asset:never")),
        Requirement("outside", "GDPR", "Art. 6", "t", "text", not_covered="a legal assessment"),
    ]
    ids = c.evidence_ids(requirements)
    assert _materialize(instance, [alpha, beta]).success
    before = {r.id: r for r in c.evaluate(requirements, observe(instance, DEFS, ids))}
    assert before["fairness"].status == RowStatus.SATISFIED
    assert before["waived"].status == RowStatus.WAIVED
    assert (before["waived"].waived_by, before["waived"].waived_until) == ("dpo@example.org", "2027-01-01")
    assert before["missing"].status == RowStatus.NOT_EVALUATED
    assert before["outside"].status == RowStatus.NOT_COVERED

    LIMITS["max_gap"] = 0.05
    tightened = _materialize(instance, [alpha, beta])
    assert not tightened.success  # the blocking gate failed, so beta did not run
    assert not [e for e in tightened.get_asset_materialization_events() if e.asset_key == dg.AssetKey("beta")]
    seen = observe(instance, DEFS, ids)
    gate = seen["check:alpha:gap_within_limit"]
    assert (gate.status, gate.run_id) == (E.FAILED, tightened.run_id)
    assert gate.detail == "failed: citizen: equalized_odds_difference 0.177 > 0.050"
    downstream = seen["check:beta:downstream_ok"]
    assert downstream.status == E.PASSED and downstream.run_id != tightened.run_id  # the last evaluation counts ...
    assert f"run {tightened.run_id[:8]}" in downstream.detail and "did not execute it" in downstream.detail  # ... noted
    after = {r.id: r for r in c.evaluate(requirements, seen)}
    assert after["fairness"].status == RowStatus.FAILED
    assert after["fairness"].detail == (
        "failed: check:alpha:gap_within_limit: failed: citizen: equalized_odds_difference 0.177 > 0.050"
    )
    assert "0.177 &gt; 0.050" in c.to_html(list(after.values()))


def test_a_check_only_ever_planned_is_missing(instance):
    LIMITS["max_gap"] = 0.05
    result = _materialize(instance, [alpha, beta])
    assert not result.success
    seen = observe(instance, None, ["check:beta:downstream_ok", "asset:beta", "check:beta:*"])
    assert sorted(seen) == ["asset:beta", "check:beta:downstream_ok"]  # without definitions no pattern expands
    downstream = seen["check:beta:downstream_ok"]
    assert downstream.status == E.MISSING and downstream.run_id == result.run_id
    assert downstream.detail.startswith("never evaluated in the last 1 planned executions (run ")
    assert seen["asset:beta"].status == E.MISSING


MATRIX_REQUIREMENTS = [
    Requirement(
        "gate", "BaFin", "Principles 2021", "t", "text", evidence=("check:alpha:gap_within_limit", "check:alpha:o*")
    ),
    Requirement("never", "GDPR", "Art. 32", "t", "text", evidence=("asset:never",)),
]


@dg.asset(deps=[alpha])
def matrix(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """As the compliance_matrix asset does it: the code location, its evidence, the rows."""
    definitions = code_location(context, lambda: DEFS)
    seen = observe(context.instance, definitions, c.evidence_ids(MATRIX_REQUIREMENTS))
    rows = c.evaluate(MATRIX_REQUIREMENTS, seen)
    return dg.MaterializeResult(
        metadata={"statuses": ", ".join(f"{r.id}={r.status.value}" for r in rows), "observed": ", ".join(sorted(seen))}
    )


def test_an_asset_observes_the_whole_code_location_even_in_process(instance):
    """In-process runs set no repository on the step context: the fallback definitions are used, so a
    pattern still sees every check of the code location, not only the job's selection."""
    assert _materialize(instance, [alpha]).success
    result = _materialize(instance, [alpha, matrix], selection=[matrix])
    assert result.success
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("matrix")]
    metadata = event.materialization.metadata
    assert metadata["statuses"].value == "gate=satisfied, never=not evaluated"
    assert metadata["observed"].value == "asset:never, check:alpha:gap_within_limit, check:alpha:ok"
