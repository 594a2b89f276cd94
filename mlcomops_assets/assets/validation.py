"""Validation: the policy's data contract as Great Expectations checks, and the validated dataset.

Every rule is its own Dagster check on ``raw_data``; critical rules are blocking with ERROR severity,
warnings do not block. ``validated_data`` builds only on bytes that passed the whole contract: their
MD5 and the policy fingerprint match a passing validation recorded by the checks, or it runs the
contract again on the exact bytes it reads; so failed data never flows downstream, whether the graph,
a subset or a sensor launched the run (a blocking check only stops steps within its own run).
Direct identifiers are dropped or pseudonymized here and never reach the validated layer in clear.
"""

import json
from typing import TYPE_CHECKING, Any

import dagster as dg

from mlcomops_assets.constants import (
    DATA,
    NO_PROXY_FEATURES,
    RAW_DATA,
    RAW_MD5_ATTR,
    SPLITS_ARE_USABLE,
    TRIGGER_TAG,
    VALIDATED_DATA,
    WEEKLY_RETRAINING,
)
from mlcomops_assets.lib.files import file_md5, write_json
from mlcomops_assets.lib.rules import rules_from_policy
from mlcomops_assets.metadata import table
from mlcomops_assets.policy import Policy
from mlcomops_assets.resources import ProjectResource

if TYPE_CHECKING:
    import pandas as pd

    from mlcomops_assets.lib.gx_validation import DocsTarget, RuleResult, Validation

SUITE_NAME = "raw_data_contract"


def _raw_path(project: ProjectResource, policy: Policy):
    path = project.paths.raw_file(policy.data.source.suffix)
    if not path.exists():
        raise dg.Failure(description=f"raw data has not been ingested yet: {path} is missing")
    return path


def run_contract(
    project: ProjectResource, policy: Policy, docs: "DocsTarget | None" = None
) -> "tuple[pd.DataFrame | None, Validation]":
    """Read the raw file and validate it against every rule of the contract (with Data Docs: ``docs``)."""
    from mlcomops_assets.lib.gx_validation import Validation, unreadable, validate
    from mlcomops_assets.lib.sources import SourceError, read_raw

    rules = rules_from_policy(policy.data, project.paths.home)
    try:
        frame = read_raw(_raw_path(project, policy), policy.data)
    except SourceError as exc:
        return None, Validation(unreadable(rules, str(exc)))
    return frame, validate(frame, rules, SUITE_NAME, docs)


def _verdict_file(project: ProjectResource):
    return project.paths.validation_dir / "contract_verdict.json"


def record_verdict(project: ProjectResource, raw_md5: str, policy: Policy, validation: "Validation") -> None:
    """Which exact bytes passed (or failed) the full contract under which policy, for validated_data; with
    every rule's result (counts, never cell values) and the Data Docs page that shows this validation.
    Written on every validation, whether or not the Data Docs were rendered again."""
    from mlcomops_assets.lib.gx_validation import blocking_failures

    page = validation.docs_page
    write_json(
        _verdict_file(project),
        {
            "raw_md5": raw_md5,
            "policy_fingerprint": policy.fingerprint,
            "passed": not blocking_failures(validation.results),
            "rules_passed": sum(r.passed for r in validation.results),
            "rules_evaluated": len(validation.results),
            "results": [
                {
                    "rule": r.rule,
                    "severity": r.severity,
                    "passed": r.passed,
                    "rows_evaluated": r.element_count,
                    "unexpected_count": r.unexpected_count,
                    "message": r.message,
                }
                for r in validation.results
            ],
            "data_docs_page": page.relative_to(project.paths.home).as_posix() if page is not None else None,
        },
    )


def contract_docs(context: dg.AssetCheckExecutionContext, project: ProjectResource, raw_md5: str) -> "DocsTarget":
    """Where the contract's Data Docs go; rendered again whenever the page there would change (other bytes,
    rules or results, a failed rule), by the weekly re-validation, and at least every week."""
    from mlcomops_assets.lib.gx_validation import DocsTarget

    weekly = context.run.tags.get(TRIGGER_TAG) == f"schedule:{WEEKLY_RETRAINING}"
    return DocsTarget(
        project.paths.data_docs_dir, project.paths.validation_dir / "data_docs_state.json", raw_md5, force=weekly
    )


def passing_verdict(project: ProjectResource, raw_md5: str, policy: Policy) -> dict | None:
    """The recorded verdict if these exact bytes passed the contract under this exact policy."""
    path = _verdict_file(project)
    if not path.exists():
        return None
    verdict = json.loads(path.read_text(encoding="utf-8"))
    same = verdict.get("raw_md5") == raw_md5 and verdict.get("policy_fingerprint") == policy.fingerprint
    return verdict if same and verdict.get("passed") else None


def _result_metadata(result: "RuleResult") -> dict[str, Any]:
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


def build_contract_checks(policy: Policy, home) -> dg.AssetChecksDefinition:
    """One Dagster check per rule of the data contract, evaluated in a single GX validation."""
    rules = rules_from_policy(policy.data, home)
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
        """The policy's data contract (readability, schema, types, allowed values, ranges, nulls, record-key
        uniqueness, row count, label domain and class shares, protected group sizes, no identifiers in
        features, hand-written expectations) validated with Great Expectations; GX Data Docs are kept
        under data/published/data_docs/ and linked from every check, rendered again unless the page there
        shows this very validation (same bytes, rules and results, all passed, rendered this week). The
        verdict with every rule's result is written on every run. Critical rules block everything downstream."""
        current = project.policy()
        raw_md5 = file_md5(_raw_path(project, current))  # before reading, as validated_data does
        _, validation = run_contract(project, current, contract_docs(context, project, raw_md5))
        record_verdict(project, raw_md5, current, validation)
        by_name = {r.rule: r for r in validation.results}
        links: dict[str, Any] = {}
        if validation.docs_page is not None:
            links = {
                "data_docs": dg.MetadataValue.url(project.report_link(validation.docs_page)),
                "data_docs_path": dg.MetadataValue.path(str(validation.docs_page)),
                "data_docs_rendered": "in this run"
                if validation.docs_rendered
                else f"{validation.docs_rendered_at}, from the same bytes, rules and results",
            }
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
                log = context.log.error if rule.blocking else context.log.warning
                log(result.message)
            yield dg.AssetCheckResult(
                check_name=rule.name,
                asset_key=RAW_DATA,
                passed=bool(result.passed),
                severity=dg.AssetCheckSeverity.ERROR if rule.blocking else dg.AssetCheckSeverity.WARN,
                description=result.message,
                metadata={**_result_metadata(result), **links},
            )

    return raw_data_contract


def _audit_splits(frame: "pd.DataFrame", policy: Policy) -> None:
    """Audit before publish: data that passes the contract but cannot be split (no rows before the
    cutoff, one label class in the training window) would replace the validated layer and leave it
    out of step with the champion; it is refused here, with counts, before anything is written."""
    from mlcomops_assets.lib.splitting import SplitError, split_data, split_problems

    try:
        problems = split_problems(split_data(frame, policy), policy.data.target)
    except SplitError as exc:
        problems = [str(exc)]
    if problems:
        raise dg.Failure(
            description=f"rule '{SPLITS_ARE_USABLE}' fails, so the validated data was not published (the last "
            "validated data is unchanged): " + "; ".join(problems),
            metadata={"failed_rules": SPLITS_ARE_USABLE},
        )


@dg.asset(
    key=VALIDATED_DATA,
    deps=[RAW_DATA],
    group_name=DATA,
    kinds={"pandas", "parquet", "greatexpectations"},
    code_version="3",
    tags={"compliance/personal_data": "pseudonymous", "compliance/layer": "validated"},
)
def validated_data(context: dg.AssetExecutionContext, project: ProjectResource) -> dg.Output:
    """The raw data after it passed every critical rule of the data contract, typed per the policy.

    Identifier columns never pass in clear: they are dropped, or replaced by a keyed HMAC-SHA-256
    pseudonym when the policy says `treatment: pseudonymize` (key from the environment, never logged).
    Ignored columns are dropped. It only builds on bytes that passed the whole contract: the file's MD5
    and the policy fingerprint must match a passing validation recorded by the contract checks, or the
    contract is re-run here on the exact file read; any critical failure stops this asset with the
    failed rules, columns and row counts. Data that cannot be split into usable training and holdout
    sets is refused too (rule ``splits_are_usable``), before anything is written.
    """
    from mlcomops_assets.lib.gx_validation import blocking_failures
    from mlcomops_assets.lib.pseudonyms import PseudonymKeyError, protect_identifiers
    from mlcomops_assets.lib.sources import SourceError, read_raw, typed

    policy = project.policy()
    # Hash before reading: the version recorded is never newer than the bytes validated.
    raw_md5 = file_md5(_raw_path(project, policy))
    verdict = passing_verdict(project, raw_md5, policy)
    if verdict is not None:
        # The same bytes passed the full contract under this policy (the checks of this run, usually):
        # validating them a second time would only double the cost on large data.
        frame = read_raw(_raw_path(project, policy), policy.data)
        counts = {"rules_passed": verdict["rules_passed"], "rules_evaluated": verdict["rules_evaluated"]}
        failures = []
    else:
        frame, validation = run_contract(project, policy)
        failures = blocking_failures(validation.results)
        counts = {
            "rules_passed": sum(r.passed for r in validation.results),
            "rules_evaluated": len(validation.results),
        }
    if frame is None or failures:
        shown = failures[:20]
        raise dg.Failure(
            description=(
                f"raw data breaks {len(failures)} critical rule(s) of the data contract; nothing was "
                "built and the last validated data is unchanged:\n" + "\n".join(f"  - {f.message}" for f in shown)
            ),
            metadata={"failed_rules": ", ".join(f.rule for f in failures)},
        )
    treatment: dict[str, Any] = {"dropped_columns": ", ".join(policy.data.dropped_columns) or "(none)"}
    try:
        out, used_key = protect_identifiers(typed(frame, policy.data), policy)
    except (PseudonymKeyError, SourceError) as exc:
        # SourceError: a value that does not convert to the declared type; the message has counts only.
        raise dg.Failure(description=str(exc)) from None
    if used_key is not None:
        treatment["pseudonymized_columns"] = ", ".join(policy.data.pseudonymized_columns)
        treatment["pseudonym_key_id"] = used_key
    _audit_splits(out, policy)
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
            **counts,
            "contract": "verified by MD5 against the checks' passing validation" if verdict else "re-run here",
            "purpose": policy.data.purpose,
            "legal_basis": policy.data.legal_basis,
            **treatment,
        },
    )


@dg.asset_check(
    asset=VALIDATED_DATA,
    name=NO_PROXY_FEATURES,
    blocking=False,
    description="Warns when a feature (alone, by normalized mutual information) or all features together "
    "(cross-validated AUC) predict a protected attribute above the policy's limits.",
)
def no_proxy_features(validated_data, project: ProjectResource) -> dg.AssetCheckResult:
    """Proxy detection: a feature that predicts a protected attribute can reintroduce what purpose binding
    removed. Reports every (protected attribute, feature) pair and warns above the policy's thresholds."""
    from mlcomops_assets.lib.proxies import proxy_strength

    policy = project.policy()
    records = proxy_strength(validated_data, policy)
    flagged = [r for r in records if r["flagged"]]
    return dg.AssetCheckResult(
        passed=not flagged,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "; ".join(
                f"{r['feature']} predicts {r['protected_attribute']} ({r['measure']} {r['value']})" for r in flagged
            )
            or f"no feature predicts a protected attribute above the limits ({len(records)} pairs measured)"
        ),
        metadata={"proxies": table(records), "flagged": len(flagged)},
    )
