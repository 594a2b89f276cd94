"""Validation: the policy's data contract as Great Expectations checks, and the validated dataset.

Every rule is its own Dagster check on ``raw_data``; critical rules are blocking with ERROR severity.
``validated_data`` runs the contract again on the exact bytes it reads and refuses to build on any
critical failure, so failed data never flows downstream, whether the graph, a subset or a sensor
launched the run (a blocking check only stops steps within its own run).
"""

from typing import Any

import dagster as dg
import pandas as pd

from mlcomops_assets.assets.ingestion import RAW_MD5_ATTR
from mlcomops_assets.constants import RAW_DATA, VALIDATED_DATA, VALIDATION
from mlcomops_assets.lib.files import file_md5
from mlcomops_assets.lib.gx_validation import RuleResult, blocking_failures, validate
from mlcomops_assets.lib.rules import Rule, rules_from_policy
from mlcomops_assets.lib.sources import SourceError, read_raw
from mlcomops_assets.policy import ColumnType, Policy
from mlcomops_assets.resources import ProjectResource

SUITE_NAME = "raw_data_contract"


def _raw_path(project: ProjectResource, policy: Policy):
    path = project.paths.raw_file(policy.data.source.suffix)
    if not path.exists():
        raise dg.Failure(description=f"raw data has not been ingested yet: {path} is missing")
    return path


def _unreadable(rules: list[Rule], error: SourceError) -> list[RuleResult]:
    """An unreadable file breaks the whole contract; one result per rule says why."""
    return [
        RuleResult(
            rule=r.name,
            expectation=r.expectation,
            column=r.column,
            severity=r.severity.value,
            passed=False,
            element_count=None,
            unexpected_count=None,
            unexpected_percent=None,
            observed=None,
            message=f"FAILED rule '{r.name}': the raw file cannot be read: {error}",
        )
        for r in rules
    ]


def run_contract(project: ProjectResource, policy: Policy) -> tuple[pd.DataFrame | None, list[RuleResult]]:
    """Read the raw file and validate it against every rule of the contract."""
    rules = rules_from_policy(policy.data)
    try:
        frame = read_raw(_raw_path(project, policy), policy.data)
    except SourceError as exc:
        return None, _unreadable(rules, exc)
    return frame, validate(frame, rules, SUITE_NAME)


def _result_metadata(result: RuleResult) -> dict[str, Any]:
    return {
        "rule": result.rule,
        "expectation": result.expectation,
        "column": result.column or "(table)",
        "severity": result.severity,
        "unexpected_count": result.unexpected_count if result.unexpected_count is not None else -1,
        "unexpected_percent": result.unexpected_percent if result.unexpected_percent is not None else 0.0,
        "rows_evaluated": result.element_count if result.element_count is not None else -1,
        "observed": result.observed or "",
    }


def build_contract_checks(policy: Policy) -> dg.AssetChecksDefinition:
    """One Dagster check per rule of the data contract, evaluated in a single GX validation."""
    rules = rules_from_policy(policy.data)
    specs = [
        dg.AssetCheckSpec(
            name=rule.name,
            asset=RAW_DATA,
            description=f"[{rule.severity.value}] {rule.description} (GX {rule.expectation})",
            blocking=rule.blocking,
        )
        for rule in rules
    ]

    @dg.multi_asset_check(specs=specs, name="raw_data_contract", can_subset=False)
    def raw_data_contract(context: dg.AssetCheckExecutionContext, project: ProjectResource):
        """The policy's data contract (schema, types, allowed values, ranges, nulls, row count, labels)
        validated with Great Expectations; critical rules block everything downstream."""
        current = project.policy()
        _, results = run_contract(project, current)
        by_name = {r.rule: r for r in results}
        for rule in rules:
            result = by_name.get(rule.name)
            if result is None:  # the policy changed since the code location loaded
                yield dg.AssetCheckResult(
                    check_name=rule.name,
                    asset_key=RAW_DATA,
                    passed=False,
                    description=f"rule '{rule.name}' is no longer in the policy; reload the code location",
                )
                continue
            if not result.passed:
                context.log.error(result.message)
            yield dg.AssetCheckResult(
                check_name=rule.name,
                asset_key=RAW_DATA,
                passed=bool(result.passed),
                severity=dg.AssetCheckSeverity.ERROR if rule.blocking else dg.AssetCheckSeverity.WARN,
                description=result.message,
                metadata=_result_metadata(result),
            )

    return raw_data_contract


def _typed(frame: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    spec = policy.data
    out = frame[spec.kept_columns].copy()
    for name in spec.kept_columns:
        dtype = spec.columns[name].dtype
        if dtype == ColumnType.INTEGER:
            out[name] = out[name].astype("Int64" if out[name].isna().any() else "int64")
        elif dtype == ColumnType.FLOAT:
            out[name] = out[name].astype("float64")
        else:
            out[name] = out[name].astype("object")
    return out


@dg.asset(
    key=VALIDATED_DATA,
    deps=[RAW_DATA],
    group_name=VALIDATION,
    kinds={"pandas", "parquet", "greatexpectations"},
    code_version="1",
    tags={"compliance/personal_data": "pseudonymous", "compliance/layer": "validated"},
)
def validated_data(context: dg.AssetExecutionContext, project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """The raw data after it passed every critical rule of the data contract, typed per the policy.

    Identifier and ignored columns are dropped here, so they never reach the validated layer.
    The contract is re-run on the exact file read, and any critical failure stops this asset.
    """
    policy = project.policy()
    # Hash before reading: the version recorded is never newer than the bytes validated.
    raw_md5 = file_md5(_raw_path(project, policy))
    frame, results = run_contract(project, policy)
    failures = blocking_failures(results)
    if frame is None or failures:
        shown = failures[:20]
        raise dg.Failure(
            description=(
                f"raw data breaks {len(failures)} critical rule(s) of the data contract; nothing was "
                "built and the last validated data is unchanged:\n" + "\n".join(f"  - {f.message}" for f in shown)
            ),
            metadata={"failed_rules": ", ".join(f.rule for f in failures)},
        )
    out = _typed(frame, policy)
    out.attrs[RAW_MD5_ATTR] = raw_md5
    return dg.Output(
        out,
        metadata={
            "dagster/row_count": len(out),
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn(name, str(out[name].dtype), description=policy.data.columns[name].role.value)
                    for name in out.columns
                ]
            ),
            "raw_data_md5": raw_md5,
            "rules_passed": sum(r.passed for r in results),
            "rules_evaluated": len(results),
            "dropped_columns": ", ".join(policy.data.dropped_columns) or "(none)",
        },
    )
