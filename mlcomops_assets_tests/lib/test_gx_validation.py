"""The data contract run by Great Expectations names the rule, the column and the offending count."""

import numpy as np

from mlcomops_assets.lib.gx_validation import blocking_failures, validate
from mlcomops_assets.lib.rules import rules_from_policy
from mlcomops_assets_tests.conftest import REPO


def _failed(frame, policy):
    return {r.rule: r for r in validate(frame, rules_from_policy(policy.data, REPO), "t").results if not r.passed}


def test_default_data_passes_every_rule(arrests, policy):
    results = validate(arrests, rules_from_policy(policy.data, REPO), "t").results
    assert len(results) == len(rules_from_policy(policy.data, REPO))
    assert [r.rule for r in results if not r.passed] == []


def test_out_of_range_and_unknown_values_are_counted(arrests, policy):
    broken = arrests.copy()
    broken.loc[:6, "age"] = -4  # 7 rows
    broken.loc[100:102, "colour"] = "Green"  # 3 rows
    failed = _failed(broken, policy)
    assert set(failed) == {"age__range", "colour__allowed_values"}
    assert failed["age__range"].unexpected_count == 7 and failed["age__range"].column == "age"
    assert "'age'" in failed["age__range"].message and "7 of 5,226 rows" in failed["age__range"].message
    assert failed["colour__allowed_values"].unexpected_count == 3
    # Only counts leave the validation: no offending value is carried in the message.
    assert "Green" not in failed["colour__allowed_values"].message


def test_missing_column_and_wrong_type_are_reported(arrests, policy):
    broken = arrests.drop(columns=["checks"]).assign(age=arrests["age"].astype(str))
    failed = _failed(broken, policy)
    assert "missing ['checks']" in failed["columns_match_policy"].message
    assert "missing from the data" in failed["checks__not_null"].message
    assert "found dtype" in failed["age__type"].message
    assert all(r.severity == "critical" for r in blocking_failures(list(failed.values())))


def test_nulls_and_single_class_label(arrests, policy):
    broken = arrests.assign(released="Yes")
    broken.loc[:9, "employed"] = np.nan
    failed = _failed(broken, policy)
    assert failed["employed__not_null"].unexpected_count == 10
    assert "released__both_classes_present" in failed


def test_every_failure_names_the_policy_key_that_would_change_it(arrests, policy):
    broken = arrests.assign(released="Yes")
    broken.loc[:9, "employed"] = np.nan
    broken.loc[:6, "age"] = -4
    failed = _failed(broken, policy)
    assert failed["employed__not_null"].message.endswith("Policy key: data.columns.employed.max_null_fraction.")
    assert "Policy key: data.columns.age.min / data.columns.age.max." in failed["age__range"].message
    assert "Policy key: data.columns.released.allowed_values." in failed["released__both_classes_present"].message
    assert all("Policy key: " in r.message for r in failed.values())
    passed = validate(arrests, rules_from_policy(policy.data, REPO), "t").results
    assert not any("Policy key" in r.message for r in passed)


def test_the_basic_result_format_gives_the_results_summary_gave(arrests, policy, monkeypatch):
    """BASIC (no list of unexpected row indices, the contract's main cost at 10M rows) yields the very same
    per-rule results and messages as SUMMARY, on data that passes and on data breaking many rules."""
    from mlcomops_assets.lib import gx_validation

    broken = arrests.copy()
    broken.loc[:6, "age"] = -4
    broken["colour"] = "White"
    broken.loc[:9, "colour"] = "Black"  # a group below its minimum size
    broken.loc[100:102, "colour"] = "Green"
    broken.loc[200:260, "sex"] = None
    rules = rules_from_policy(policy.data, REPO)
    for frame in (arrests, broken):
        basic = validate(frame, rules, "t").results
        monkeypatch.setattr(gx_validation, "RESULT_FORMAT", {**gx_validation.RESULT_FORMAT, "result_format": "SUMMARY"})
        summary = validate(frame, rules, "t").results
        monkeypatch.undo()
        assert basic == summary
    assert gx_validation.RESULT_FORMAT["result_format"] == "BASIC"
    assert {r.rule for r in basic if not r.passed} >= {
        "age__range",
        "colour__allowed_values",
        "colour__group__Black__min_size",
        "sex__not_null",
    }


def test_data_docs_are_rendered_again_whenever_the_page_would_change(arrests, policy, tmp_path):
    """A page is reused only for the same bytes, rules and results, all passed, unchanged on disk and
    rendered this week; anything else (other bytes, a failed rule, a tampered page, the weekly run, an
    old page) renders the validation again, so the page a reviewer opens always shows these bytes."""
    import json
    from datetime import UTC, datetime, timedelta

    from mlcomops_assets.lib.gx_validation import DocsTarget

    rules = rules_from_policy(policy.data, REPO)
    folder, state = tmp_path / "docs", tmp_path / "state.json"

    def run(frame, version="md5-a", force=False):
        return validate(frame, rules, "raw_data_contract", DocsTarget(folder, state, version, force))

    def pages():
        return sorted((folder / "validations").rglob("*.html"))

    first = run(arrests)
    assert first.docs_rendered and first.docs_page is not None and pages() == [first.docs_page]
    recorded = json.loads(state.read_text())
    assert recorded["data_version"] == "md5-a" and recorded["page"] == first.docs_page.relative_to(folder).as_posix()

    again = run(arrests)  # same bytes, rules and results: the page already shows this validation
    assert not again.docs_rendered and again.docs_page == first.docs_page and pages() == [first.docs_page]
    assert again.docs_rendered_at == first.docs_rendered_at and again.results == first.results

    other_bytes = run(arrests, version="md5-b")  # identical results, but of other bytes
    assert other_bytes.docs_rendered and other_bytes.docs_page != first.docs_page
    assert pages() == [other_bytes.docs_page]  # the site shows the latest validation only
    assert run(arrests, version="md5-b").docs_rendered is False

    broken = arrests.copy()
    broken.loc[:6, "age"] = -4
    failed = run(broken, version="md5-c")
    assert failed.docs_rendered and "7 unexpected values found" in failed.docs_page.read_text()
    assert run(broken, version="md5-c").docs_rendered, "a failed rule always renders its page"

    run(arrests, version="md5-d")
    tampered = json.loads(state.read_text())
    page = folder / tampered["page"]
    page.write_text(page.read_text().replace("raw_data_contract", "raw_data_contrac7"))
    assert run(arrests, version="md5-d").docs_rendered, "a page changed on disk is not reused"

    assert run(arrests, version="md5-d", force=True).docs_rendered, "the weekly run renders anyway"

    aged = json.loads(state.read_text())
    aged["rendered_at"] = (datetime.now(UTC) - timedelta(days=8)).isoformat(timespec="seconds")
    state.write_text(json.dumps(aged))
    assert run(arrests, version="md5-d").docs_rendered, "a page older than a week is rendered again"
    assert run(arrests, version="md5-d").docs_rendered is False
