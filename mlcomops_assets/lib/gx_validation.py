"""Running the data contract with Great Expectations 1.x and reducing the result to per-rule verdicts.

``dagster-ge`` does not support GX 1.x, so GX is called directly. Only counts and percentages leave
this module: GX's samples of unexpected values are dropped, because they can carry personal data.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from mlcomops_assets.lib.files import file_sha256, write_json
from mlcomops_assets.lib.gx_scrub import AGGREGATE_OBSERVED, error_type, safe_error, scrub_exception, scrub_result
from mlcomops_assets.lib.offline_html import make_data_docs_offline
from mlcomops_assets.lib.rules import Kind, Rule


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


def _observed(rule: Rule, result: dict[str, Any]) -> str | None:
    if rule.expectation not in AGGREGATE_OBSERVED:  # others would be cell values (min, max, distinct)
        return None
    value = result.get("observed_value")
    if rule.expectation == "ExpectTableColumnsToMatchSet":
        details = result.get("details", {}).get("mismatched", {})
        missing = details.get("missing") or []
        extra = details.get("unexpected") or []
        parts = [f"missing {sorted(missing)}" if missing else "", f"undeclared {sorted(extra)}" if extra else ""]
        return "; ".join(p for p in parts if p) or None
    if isinstance(value, float):
        return f"{value:.4g}"
    return None if value is None else str(value)


def _bounds(rule: Rule) -> str:
    """The rule's own parameters, e.g. 'required: between 18 and 35'."""
    low, high = rule.kwargs.get("min_value"), rule.kwargs.get("max_value")
    if low is None and high is None:
        return ""
    if low is None:
        return f"; required: at most {high}"
    if high is None:
        return f"; required: at least {low}"
    return f"; required: between {low} and {high}"


def _failure(
    rule: Rule, passed: bool, res: dict[str, Any], observed: str | None, error: str | None, missing: bool
) -> str:
    where = f" on column '{rule.column}'" if rule.column else ""
    head = f"rule '{rule.name}' ({rule.expectation}){where}"
    if passed:
        return f"passed: {head}"
    if missing:
        return f"FAILED {head}: the column is missing from the data. {rule.description}"
    if error:
        return f"FAILED {head}: could not be evaluated: {error}"
    if rule.expectation == "ExpectColumnValuesToBeInTypeList":
        return f"FAILED {head}: found dtype {observed}. {rule.description}"
    total, bad = res.get("element_count"), res.get("unexpected_count")
    if rule.kind in (Kind.SHARE, Kind.GROUP) and total is not None and bad is not None:
        inside = total - (res.get("missing_count") or 0) - bad
        if rule.kind == Kind.SHARE:
            share = f"{inside:,} of {total:,} rows ({inside / total:.1%})"
            return f"FAILED {head}: {share} are in the class. {rule.description}"
        return f"FAILED {head}: the group has {inside:,} of {total:,} rows. {rule.description}"
    if bad is not None and total:
        pct = res.get("unexpected_percent") or 0.0
        return f"FAILED {head}: {bad:,} of {total:,} rows ({pct:.2f}%) break it. {rule.description}"
    detail = f" (observed: {observed}{_bounds(rule)})" if observed else ""
    return f"FAILED {head}{detail}. {rule.description}"


def _message(
    rule: Rule, passed: bool, res: dict[str, Any], observed: str | None, error: str | None, missing: bool
) -> str:
    """What happened, and on failure the policy key that would change the rule (the way to the fix
    when the data is right and the policy too strict)."""
    text = _failure(rule, passed, res, observed, error, missing)
    if passed or not rule.policy_key:
        return text
    return f"{text.rstrip()} Policy key: {rule.policy_key}."


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


# Counts only: GX's samples of unexpected values (and their row indices) never leave GX, neither into
# Dagster metadata nor into Data Docs, because they can be personal data. BASIC gives every count
# SUMMARY gives; SUMMARY also lists the index of every unexpected row (millions at 10M rows for a
# class-share or group-size rule), which was most of the contract's time and is never used.
RESULT_FORMAT = {
    "result_format": "BASIC",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
}
READ_RULE = "(read)"
DOCS_SITE = "mlcomops_data_docs"


@dataclass(frozen=True)
class Validation:
    """Per-rule results and, with Data Docs, the page of this validation: rendered by this validation, or
    (``docs_rendered_at`` older) the page of an identical one, which would render the same."""

    results: list[RuleResult]
    docs_page: Path | None = None
    docs_rendered: bool = False
    docs_rendered_at: str | None = None


# Bumped whenever what a page shows changes for the same result (our offline rewrite, the scrubbing),
# so pages rendered by older code are rendered again.
DOCS_RENDERER_VERSION = "1"
# Even an unchanged validation is rendered again after this long, so the run time a reviewer reads on
# the page is never older than the weekly re-validation.
DOCS_MAX_AGE = timedelta(days=7)


@dataclass(frozen=True)
class DocsTarget:
    """Where Data Docs go, and what decides whether a validation renders them again.

    Rendering costs about a second and changes nothing when the same bytes were validated with the same
    rules and gave the same results: the page already there shows exactly that. ``state_file`` (kept
    outside the published site) records what the last rendered page was made from and its SHA-256."""

    folder: Path
    state_file: Path | None = None  # None: render every time, keep no state
    data_version: str = ""  # the validated bytes' hash: a page is only ever reused for the very same bytes
    force: bool = False  # render whatever the state says (the weekly re-validation)


def docs_key(data_version: str, suite_name: str, rules: list[Rule], results: list[RuleResult]) -> str:
    """What a Data Docs page shows, as a hash: the bytes validated, the suite, every rule as GX ran it,
    every result, and the versions of GX and of our rendering."""
    from importlib.metadata import version

    content = {
        "data_version": data_version,
        "suite": suite_name,
        "great_expectations": version("great_expectations"),
        "renderer": DOCS_RENDERER_VERSION,
        "rules": [[r.name, r.expectation, r.kwargs, r.severity.value, r.min_count, r.parse_dates] for r in rules],
        "results": [asdict(r) for r in results],
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def reusable_page(target: DocsTarget, key: str, now: datetime) -> tuple[Path, str] | None:
    """The page rendered last and when, if it was rendered from ``key``, is unchanged on disk (its SHA-256)
    and younger than ``DOCS_MAX_AGE``; None when anything differs, so a page is never stale."""
    if target.force or target.state_file is None or not target.state_file.is_file():
        return None
    try:
        state = json.loads(target.state_file.read_text(encoding="utf-8"))
        page = target.folder / state["page"]
        rendered_at = datetime.fromisoformat(state["rendered_at"])
    except (ValueError, KeyError, TypeError):
        return None
    if state.get("key") != key or now - rendered_at > DOCS_MAX_AGE or not page.is_file():
        return None
    if not (target.folder / "index.html").is_file() or file_sha256(page) != state.get("page_sha256"):
        return None
    return page, state["rendered_at"]


# An ephemeral context's stores, all in memory, named as in great_expectations.yml: nothing of a
# validation outlives the call except the Data Docs written from the scrubbed result.
_IN_MEMORY_STORES = {
    "expectations_store": "ExpectationsStore",
    "validation_results_store": "ValidationResultsStore",
    "checkpoint_store": "CheckpointStore",
    "validation_definition_store": "ValidationDefinitionStore",
}


def _context(suite_name: str, docs_dir: Path | None):
    """An ephemeral GX context, configured through ``get_context``'s public ``project_config`` mapping
    (the great_expectations.yml schema), so no GX configuration class has to be imported."""
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    sites = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    return gx.get_context(
        mode="ephemeral",
        project_config={
            # The great_expectations.yml version GX 1.x writes (required in the mapping).
            "config_version": 4.0,
            "stores": {
                name: {"class_name": store, "store_backend": {"class_name": "InMemoryStoreBackend"}}
                for name, store in _IN_MEMORY_STORES.items()
            },
            "expectations_store_name": "expectations_store",
            "validation_results_store_name": "validation_results_store",
            "checkpoint_store_name": "checkpoint_store",
            # Only our site: the default ephemeral context adds a temporary one that nothing reads.
            "data_docs_sites": sites,
            # Validation runs inside asset steps, where progress bars only clutter the run logs.
            "progress_bars": {"globally": False},
            # The pipeline runs offline; usage statistics are never sent, whatever the environment says.
            "analytics_enabled": False,
        },
    )


def _build_docs(context, identifier, suite_result, docs_dir: Path) -> Path | None:
    """Render Data Docs from the scrubbed result: it replaces GX's stored copy (in memory only, the
    context is ephemeral), so no page is ever rendered from a result that still holds cell values.
    The pages are then rewritten to work offline (no script, nothing loaded from a CDN, a static index)."""
    context.validation_results_store.set(identifier, suite_result)
    # The validation page and its suite's page; the result's identifier names the suite.
    context.build_data_docs(
        site_names=[DOCS_SITE], resource_identifiers=[identifier, identifier.expectation_suite_identifier]
    )
    make_data_docs_offline(docs_dir, DOCS_SITE)
    urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE)
    if urls and urls[0].get("site_url"):
        return Path(urls[0]["site_url"].removeprefix("file://"))
    return None


def _with_parsed_dates(frame: pd.DataFrame, rules: list[Rule]) -> pd.DataFrame:
    """Add the helper columns that date-window rules check (unparseable values become missing)."""
    from mlcomops_assets.lib.rules import parsed_column

    extra = {}
    for rule in rules:
        if rule.parse_dates and rule.column:
            source = frame[rule.column] if rule.column in frame.columns else pd.Series(pd.NA, index=frame.index)
            extra[parsed_column(rule.column)] = pd.to_datetime(source, format=rule.parse_dates, errors="coerce")
    return frame.assign(**extra) if extra else frame


def _record_render(docs: DocsTarget, key: str, page: Path | None, rendered_at: str) -> None:
    """What the page was rendered from, for ``reusable_page``; no state (nothing to reuse) without a page."""
    if page is None or not page.is_file():
        docs.state_file.unlink(missing_ok=True)
        return
    write_json(
        docs.state_file,
        {
            "key": key,
            "data_version": docs.data_version,
            "page": page.relative_to(docs.folder).as_posix(),
            "page_sha256": file_sha256(page),
            "rendered_at": rendered_at,
        },
    )


def validate(
    frame: pd.DataFrame, rules: list[Rule], suite_name: str, docs: DocsTarget | Path | None = None
) -> Validation:
    """Validate ``frame`` against ``rules`` with an ephemeral GX context; one result per rule.

    With ``docs``, the page of this validation is returned, so an auditor can open the full result of any
    run: GX Data Docs (static HTML) rendered into ``docs.folder``, unless every rule passed and the page
    there was rendered from the same bytes, rules and results (``reusable_page``). A plain folder is
    rendered into every time.
    """
    if isinstance(docs, Path):
        docs = DocsTarget(docs)
    import great_expectations as gx
    import great_expectations.expectations as gxe

    source_columns = set(frame.columns) | {None}
    frame = _with_parsed_dates(frame, rules)
    context = _context(suite_name, docs.folder if docs is not None else None)
    batch_definition = (
        context.data_sources.add_pandas(f"{suite_name}_source")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    gx_rules = [r for r in rules if r.expectation != READ_RULE]
    by_name = {rule.name: rule for rule in gx_rules}
    for rule in gx_rules:
        expectation_cls = getattr(gxe, rule.expectation)
        suite.add_expectation(
            expectation_cls(**rule.resolved_kwargs(len(frame)), meta={"rule": rule.name}, severity=rule.severity.value)
        )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{suite_name}_checkpoint",
            validation_definitions=[definition],
            actions=[],  # Data Docs are built below, from the scrubbed result only
            result_format=RESULT_FORMAT,
        )
    )
    run = checkpoint.run(batch_parameters={"dataframe": frame})
    ((identifier, suite_result),) = run.run_results.items()
    for item in suite_result.results:
        rule = by_name[item.expectation_config.meta["rule"]]
        kind = error_type(item.exception_info)
        if kind is not None:
            item.exception_info = scrub_exception(
                item.exception_info, safe_error(rule.expectation, kind, rule.column, frame)
            )
        item.result = scrub_result(rule.expectation, item.result)
    outcome = suite_result.to_json_dict()

    results: dict[str, RuleResult] = {}
    # GX regroups results by column; key them by the rule name carried in meta, never by position.
    for item in outcome["results"]:
        rule = by_name[item["expectation_config"]["meta"]["rule"]]
        res = item.get("result") or {}
        error = _error_text(item.get("exception_info"))  # already scrubbed: type, column, count
        passed = bool(item["success"])
        observed = _observed(rule, res)
        if rule.expectation == "ExpectColumnValuesToBeInTypeList" and rule.column in frame.columns:
            observed = str(frame[rule.column].dtype)  # GX leaves observed_value empty on some failures
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
            message=_message(rule, passed, res, observed, error, missing=rule.column not in source_columns),
        )
    for rule in rules:
        if rule.expectation == READ_RULE:
            results[rule.name] = RuleResult(
                rule=rule.name,
                expectation=rule.expectation,
                column=None,
                severity=rule.severity.value,
                passed=True,
                element_count=len(frame),
                unexpected_count=0,
                unexpected_percent=0.0,
                observed=None,
                message=f"passed: rule '{rule.name}'",
            )
    ordered = [results[rule.name] for rule in rules]
    if docs is None:
        return Validation(ordered)
    now = datetime.now(UTC)
    key = docs_key(docs.data_version, suite_name, rules, ordered)
    reused = reusable_page(docs, key, now) if all(r.passed for r in ordered) else None
    if reused is not None:
        return Validation(ordered, reused[0], docs_rendered=False, docs_rendered_at=reused[1])
    page = _build_docs(context, identifier, suite_result, docs.folder)
    rendered_at = now.isoformat(timespec="seconds")
    if docs.state_file is not None:
        _record_render(docs, key, page, rendered_at)
    return Validation(ordered, page, docs_rendered=True, docs_rendered_at=rendered_at)


def unreadable(rules: list[Rule], error: str) -> list[RuleResult]:
    """An unreadable file fails ``file_is_readable``; every other rule is reported as not evaluated."""
    out = []
    for r in rules:
        reason = (
            f"FAILED rule '{r.name}': the file cannot be read: {error}"
            if r.expectation == READ_RULE
            else f"FAILED rule '{r.name}': not evaluated, the file cannot be read"
        )
        out.append(
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
                message=reason,
            )
        )
    return out


def blocking_failures(results: list[RuleResult]) -> list[RuleResult]:
    return [r for r in results if not r.passed and r.severity == "critical"]
