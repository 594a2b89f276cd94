"""Running the data contract with Great Expectations 1.x and reducing the result to per-rule verdicts.

``dagster-ge`` does not support GX 1.x, so GX is called directly. Only counts and percentages leave
this module: GX's samples of unexpected values are dropped, because they can carry personal data.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from mlcomops_assets.lib.rules import Rule

# Table-level and type results carry observed values that are structure, not personal data.
_SAFE_OBSERVED = {
    "ExpectTableColumnsToMatchSet",
    "ExpectTableRowCountToBeBetween",
    "ExpectColumnValuesToBeInTypeList",
}


@dataclass(frozen=True)
class RuleResult:
    """The verdict of one rule on one dataset."""

    rule: str
    expectation: str
    column: str | None
    severity: str
    passed: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _observed(rule: Rule, result: dict[str, Any]) -> str | None:
    if rule.expectation not in _SAFE_OBSERVED:
        return None
    value = result.get("observed_value")
    if rule.expectation == "ExpectTableColumnsToMatchSet":
        details = result.get("details", {}).get("mismatched", {})
        missing = details.get("missing") or []
        extra = details.get("unexpected") or []
        parts = [f"missing {sorted(missing)}" if missing else "", f"undeclared {sorted(extra)}" if extra else ""]
        return "; ".join(p for p in parts if p) or None
    return None if value is None else str(value)


def _message(
    rule: Rule, passed: bool, res: dict[str, Any], observed: str | None, error: str | None, missing: bool
) -> str:
    where = f" on column '{rule.column}'" if rule.column else ""
    head = f"rule '{rule.name}' ({rule.expectation}){where}"
    if passed:
        return f"passed: {head}"
    if missing:
        return f"FAILED {head}: the column is missing from the data. {rule.description}"
    if rule.expectation == "ExpectColumnValuesToBeInTypeList":
        return f"FAILED {head}: found dtype {observed}. {rule.description}"
    if error:
        return f"FAILED {head}: could not be evaluated: {error}"
    count, total = res.get("unexpected_count"), res.get("element_count")
    if count is not None and total:
        pct = res.get("unexpected_percent") or 0.0
        return f"FAILED {head}: {count:,} of {total:,} rows ({pct:.2f}%) break it. {rule.description}"
    detail = f" (observed: {observed})" if observed else ""
    return f"FAILED {head}{detail}. {rule.description}"


def _error_text(exception_info: Any) -> str | None:
    """GX reports evaluation errors in two shapes; a missing column gives a dict of dicts."""
    if not isinstance(exception_info, dict):
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception"):
            text = str(info.get("exception_message") or "error")
            return text.splitlines()[0][:300]
    return None


def validate(frame: pd.DataFrame, rules: list[Rule], suite_name: str) -> list[RuleResult]:
    """Validate ``frame`` against ``rules`` with an ephemeral GX context; one result per rule."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas(f"{suite_name}_source")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    by_name = {rule.name: rule for rule in rules}
    for rule in rules:
        expectation_cls = getattr(gxe, rule.expectation)
        suite.add_expectation(expectation_cls(**rule.kwargs, meta={"rule": rule.name}))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
    )
    outcome = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY").to_json_dict()

    present = set(frame.columns) | {None}
    results: dict[str, RuleResult] = {}
    # GX regroups results by column; key them by the rule name carried in meta, never by position.
    for item in outcome["results"]:
        rule = by_name[item["expectation_config"]["meta"]["rule"]]
        res = item.get("result") or {}
        error = _error_text(item.get("exception_info"))
        passed = bool(item["success"])
        observed = _observed(rule, res)
        results[rule.name] = RuleResult(
            rule=rule.name,
            expectation=rule.expectation,
            column=rule.column,
            severity=rule.severity.value,
            passed=passed,
            element_count=res.get("element_count"),
            unexpected_count=res.get("unexpected_count"),
            unexpected_percent=(
                round(float(res["unexpected_percent"]), 4) if res.get("unexpected_percent") is not None else None
            ),
            observed=observed,
            message=_message(rule, passed, res, observed, error, missing=rule.column not in present),
        )
    return [results[rule.name] for rule in rules]


def blocking_failures(results: list[RuleResult]) -> list[RuleResult]:
    return [r for r in results if not r.passed and r.severity == "critical"]
