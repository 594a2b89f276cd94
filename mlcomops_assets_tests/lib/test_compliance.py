"""The compliance matrix: loading the requirements, reading evidence, the status rule, and the renderings."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
import yaml

from mlcomops_assets.lib import compliance as c
from mlcomops_assets.lib.compliance import EvidenceStatus as E
from mlcomops_assets.lib.compliance import Observation, Requirement, RowStatus

REQUIREMENTS_FILE = Path(c.__file__).resolve().parent.parent / "compliance" / "requirements.yaml"
# Assets the lead adds with the compliance matrix; accepted as evidence ids before they are defined.
NEW_ASSETS = {"asset:compliance_matrix", "asset:audit_bundle"}


def req(rid: str = "r-1", evidence: tuple[str, ...] = ("asset:a",), **kwargs) -> Requirement:
    fields = {"framework": "GDPR", "reference": "Art. 5(1)(c)", "title": "t", "requirement": "text"}
    return Requirement(id=rid, evidence=evidence, **{**fields, **kwargs})


def obs(status: str, detail: str = "", **kwargs) -> Observation:
    return Observation(status, detail or status, **kwargs)


# --- loading -----------------------------------------------------------------------------------------


def _row(**overrides) -> dict:
    row = {
        "id": "gdpr-art5",
        "framework": "GDPR",
        "reference": "Art. 5",
        "title": "Principles",
        "requirement": "Personal data are processed lawfully.",
        "evidence": ["asset:raw_data", "check:raw_data:*"],
    }
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not None}


def test_parse_requirements_keeps_every_field():
    rows = c.parse_requirements(
        {
            "sources": {"GDPR": "Regulation (EU) 2016/679"},
            "requirements": [
                _row(partial="Art. 30 records are outside."),
                _row(id="gdpr-art6", evidence=None, not_covered="A legal assessment."),
            ],
        }
    )
    assert rows[0] == Requirement(
        "gdpr-art5",
        "GDPR",
        "Art. 5",
        "Principles",
        "Personal data are processed lawfully.",
        ("asset:raw_data", "check:raw_data:*"),
        None,
        "Art. 30 records are outside.",
    )
    assert rows[1].evidence == () and rows[1].not_covered == "A legal assessment."


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([_row(), _row()], "id 'gdpr-art5' is already used by requirements[0]"),
        ([_row(framework="EU AIA")], "unknown framework 'EU AIA' (known: EU AI Act, GDPR, DSK, BaFin)"),
        ([_row(evidence=None)], "needs 'evidence' (what serves it) or 'not_covered'"),
        ([_row(not_covered="outside")], "has both 'evidence' and 'not_covered'"),
        ([_row(evidence=None, not_covered="x", partial="y")], "'partial' qualifies evidence"),
        ([_row(evidence=["raw_data"])], "evidence 'raw_data' is not 'asset:<asset key>'"),
        ([_row(evidence=["asset:raw*"])], "evidence 'asset:raw*' is not"),
        ([_row(evidence=["asset:a", "asset:a"])], "evidence 'asset:a' is listed twice"),
        ([_row(evidence=[])], "'evidence' must be a non-empty list"),
        ([_row(owner="dpo")], "unknown key 'owner'"),
        ([_row(title="  ")], "'title' must be non-empty text"),
        ([_row(reference=None)], "'reference' is missing"),
        ([_row(id="GDPR Art 5")], "id must be lower-case words joined by '-'"),
        (["just text"], "requirements[0]: each requirement must be a mapping"),
        ([], "'requirements' must be a non-empty list"),
    ],
)
def test_an_invalid_row_is_refused_with_its_row_named(rows, message):
    with pytest.raises(c.RequirementsError) as caught:
        c.parse_requirements({"requirements": rows}, source="reqs.yaml")
    assert "reqs.yaml is invalid" in str(caught.value)
    assert message in str(caught.value)
    if rows and isinstance(rows[0], dict) and "id" in rows[-1]:
        assert f"(id {rows[-1]['id']!r})" in str(caught.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(c.RequirementsError) as caught:
        c.parse_requirements(
            {
                "requirements": [_row(framework="ISO"), _row(id="b", evidence=["x"])],
                "sources": {"NIST": "x"},
                "extra": 1,
            }
        )
    text = str(caught.value)
    for part in ("unknown framework 'ISO'", "evidence 'x' is not", "sources: unknown framework 'NIST'", "'extra'"):
        assert part in text
    assert "requirements[0] (id 'gdpr-art5')" in text and "requirements[1] (id 'b')" in text


def test_load_requirements_refuses_bad_yaml_and_duplicate_keys(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("requirements: [\n")
    with pytest.raises(c.RequirementsError, match="not valid YAML"):
        c.load_requirements(broken)
    twice = tmp_path / "twice.yaml"
    twice.write_text(yaml.safe_dump({"requirements": [_row()]}).replace("  title:", "  title: one\n  title:", 1))
    with pytest.raises(c.RequirementsError, match="duplicate key 'title'"):
        c.load_requirements(twice)
    with pytest.raises(c.RequirementsError, match="cannot read"):
        c.load_requirements(tmp_path / "absent.yaml")


def test_unknown_evidence_names_ids_and_patterns_that_match_nothing():
    rows = [req(evidence=("asset:a", "check:a:x", "check:a:*_size", "asset:ghost")), req("r-2", ("check:b:*",))]
    known = ["asset:a", "check:a:x", "check:a:group_size"]
    assert c.unknown_evidence(rows, known) == ["asset:ghost", "check:b:*"]
    assert c.expand(["asset:a", "check:a:*"], known) == ["asset:a", "check:a:group_size", "check:a:x"]


# --- reading evidence --------------------------------------------------------------------------------

WAIVED = "citizen: equalized_odds_difference 0.177 > 0.050 waived by dpo@example.org until 2027-01-31"


@pytest.mark.parametrize(
    ("passed", "metadata", "description", "status"),
    [
        (True, {"status": "passed", "verdict": "passed: roc_auc 0.697 >= 0.600"}, None, E.PASSED),
        (
            False,
            {"status": "failed", "verdict": "failed: citizen: equalized_odds_difference 0.177 > 0.050"},
            None,
            E.FAILED,
        ),
        (True, {"status": "waived", "waived": WAIVED}, "passed only under waivers: ...", E.WAIVED),
        (False, {"status": "not evaluated", "verdict": "sex: not evaluated: 1 group(s)"}, None, E.NOT_EVALUATED),
        (True, {"status": "not evaluated", "verdict": "no labels in this batch"}, None, E.NOT_EVALUATED),
        # A failing check never reads as passed, whatever its metadata says.
        (False, {"status": "passed"}, None, E.FAILED),
        (False, {"status": "waived"}, None, E.FAILED),
        # Checks without a status: the leakage checks, the data contract, older batch checks.
        (False, {"evaluated": False}, "not evaluated: one label class", E.NOT_EVALUATED),
        (False, {}, "FAILED rule 'age__range': not evaluated, the file cannot be read", E.NOT_EVALUATED),
        (False, {}, "FAILED rule 'age__range': 12 of 2,400 rows (0.50%) break it", E.FAILED),
        (True, {}, "no labels in this batch: fairness on operational data not assessable", E.NOT_EVALUATED),
        (True, {}, "sex: not evaluated: 1 group(s) with at least min_group_size rows, 2 needed", E.NOT_EVALUATED),
        (True, {}, f"passed only under waivers: gaps within limits except {WAIVED}", E.WAIVED),
        # A measured failure, or a waiver of what was not measured, only mentions "not evaluated".
        (
            False,
            {},
            "no deployable candidate passes every gate (lr: fairness gate: sex: not evaluated: 1 group)",
            E.FAILED,
        ),
        (False, {}, "failed: colour: equalized_odds_difference 0.074 > 0.050; sex: not evaluated: 1 group", E.FAILED),
        (
            True,
            {},
            "passed only under waivers: ok except sex: not evaluated: 1 group waived by A until 2027-01-01",
            E.WAIVED,
        ),
        (True, {"waived": WAIVED}, "logistic_regression is chosen", E.WAIVED),
        (True, {"waived": "(none)"}, "logistic_regression is chosen", E.PASSED),
        (True, {}, "0 of 2,400 rows break it", E.PASSED),
    ],
)
def test_check_observation_status(passed, metadata, description, status):
    assert c.check_observation(passed, metadata, description).status == status


def test_a_waived_check_carries_who_and_until_when():
    seen = c.check_observation(
        True,
        {
            "status": "waived",
            "verdict": "passed only under waivers: ...",
            "waived": WAIVED + "; age: x waived by Risk Committee until 2026-12-31",
        },
        None,
    )
    assert (seen.waived_by, seen.waived_until) == ("dpo@example.org, Risk Committee", "2026-12-31")
    from_description = c.check_observation(True, {}, f"passed only under waivers: x except {WAIVED}")
    assert (from_description.waived_by, from_description.waived_until) == ("dpo@example.org", "2027-01-31")
    assert "0.177 > 0.050" in from_description.detail


def test_check_observation_detail_has_the_figure_the_limit_and_where_it_came_from():
    seen = c.check_observation(
        False,
        {"status": "failed", "verdict": "failed: drift_share 0.500 >= 0.500 (3 of 6 columns drifted)", "batch": "2002"},
        "ignored: the verdict metadata wins",
        severity="WARN",
        when="2026-01-02T03:04:05+00:00",
        run_id="abcdef1234",
        note="not evaluated since: run 12345678 ...",
    )
    assert seen.detail.startswith("(warning) failed: drift_share 0.500 >= 0.500")
    assert seen.detail.endswith("[not evaluated since: run 12345678 ...]")
    assert (seen.partition, seen.when, seen.run_id) == ("2002", "2026-01-02T03:04:05+00:00", "abcdef1234")
    assert len(c.check_observation(False, {}, "x" * 5000).detail) == c.MAX_DETAIL


def test_asset_observation_passes_unless_it_relies_on_waivers():
    plain = c.asset_observation({"verdict": "blocked"}, when="2026-01-01T00:00:00+00:00", run_id="0123456789")
    assert plain.status == E.PASSED  # an asset's verdict text is not read: its checks decide
    assert plain.detail == "materialized at 2026-01-01T00:00:00+00:00 in run 01234567"
    assert c.asset_observation({"waivers": "(none)"}).status == E.PASSED
    waived = c.asset_observation({"waivers": WAIVED}, partition="2002")
    assert (waived.status, waived.waived_by, waived.waived_until) == (E.WAIVED, "dpo@example.org", "2027-01-31")
    assert "partition 2002" in waived.detail


def test_parse_waivers_reads_both_wordings_of_lib_gates():
    short = "roc_auc 0.55 < 0.60 waived by Head of Risk until 2026-06-30"
    long = "evaluation/roc_auc up to 0.5 waived by dpo@example.org on 2026-01-01 until 2026-03-31: a reason"
    assert c.parse_waivers(f"{short}; {long}") == [("Head of Risk", "2026-06-30"), ("dpo@example.org", "2026-03-31")]
    assert c.parse_waivers("(none)") == []


def test_an_unknown_observation_status_is_refused():
    with pytest.raises(ValueError):
        Observation("fine")


# --- the status rule ---------------------------------------------------------------------------------


def _status(*statuses: str) -> RowStatus:
    evidence = tuple(f"asset:a{i}" for i in range(len(statuses)))
    observations = {e: obs(s) for e, s in zip(evidence, statuses, strict=True)}
    return c.evaluate([req(evidence=evidence)], observations)[0].status


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("passed",), RowStatus.SATISFIED),
        (("passed", "passed"), RowStatus.SATISFIED),
        (("passed", "waived"), RowStatus.WAIVED),
        (("passed", "not_evaluated"), RowStatus.NOT_EVALUATED),
        (("passed", "missing"), RowStatus.NOT_EVALUATED),
        (("waived", "missing"), RowStatus.NOT_EVALUATED),  # not evaluated beats waived
        (("passed", "failed"), RowStatus.FAILED),
        (("failed", "not_evaluated", "missing", "waived"), RowStatus.FAILED),  # failed beats everything
    ],
)
def test_precedence(statuses, expected):
    assert _status(*statuses) == expected


def test_nothing_is_satisfied_without_an_observation():
    row = c.evaluate([req(evidence=("asset:a", "check:a:x"))], {"asset:a": obs("passed")})[0]
    assert row.status == RowStatus.NOT_EVALUATED
    assert row.detail == "not evaluated: check:a:x: no observation: never materialized or evaluated"
    assert [e.status for e in row.evidence] == [E.PASSED, E.MISSING]
    assert c.evaluate([req(evidence=("check:a:*",))], {})[0].status == RowStatus.NOT_EVALUATED


def test_a_failed_row_names_the_failed_evidence_with_its_figures():
    observations = {
        "check:fairness_report:fairness_within_thresholds": obs(
            "failed", "failed: citizen: equalized_odds_difference 0.177 > 0.050", run_id="r2"
        ),
        "asset:fairness_report": obs("passed"),
    }
    row = c.evaluate([req(evidence=tuple(observations))], observations)[0]
    assert row.status == RowStatus.FAILED
    assert row.detail == (
        "failed: check:fairness_report:fairness_within_thresholds: failed: citizen: equalized_odds_difference "
        "0.177 > 0.050"
    )


def test_a_waived_row_carries_the_approvers_and_the_earliest_expiry():
    observations = {
        "check:a:x": obs("waived", "x waived", waived_by="dpo@example.org", waived_until="2027-01-31"),
        "check:a:y": obs("waived", "y waived", waived_by="Risk Committee, dpo@example.org", waived_until="2026-12-31"),
        "asset:a": obs("passed"),
    }
    row = c.evaluate([req(evidence=tuple(observations))], observations)[0]
    assert row.status == RowStatus.WAIVED
    assert (row.waived_by, row.waived_until) == ("dpo@example.org, Risk Committee", "2026-12-31")
    assert row.detail.startswith("passed under waivers (by dpo@example.org, Risk Committee until 2026-12-31): ")


def test_not_covered_and_partial():
    rows = c.evaluate(
        [
            Requirement("gdpr-art6", "GDPR", "Art. 6", "Lawfulness", "text", not_covered="a legal assessment"),
            req("r-2", ("asset:a",), partial="the DPIA is outside"),
            req("r-3", ("asset:b",), partial="the DPIA is outside"),
        ],
        {"asset:a": obs("passed", when="2026-01-01T00:00:00+00:00")},
    )
    assert (rows[0].status, rows[0].detail) == (RowStatus.NOT_COVERED, "not covered by the project: a legal assessment")
    assert rows[0].evidence == ()
    assert rows[1].status == RowStatus.SATISFIED  # partial keeps the computed status ...
    assert rows[1].detail == (
        "all 1 pieces of evidence passed (latest 2026-01-01T00:00:00+00:00). Outside the project: the DPIA is outside"
    )
    assert rows[2].status == RowStatus.NOT_EVALUATED  # ... whatever it is
    assert rows[2].detail.endswith("Outside the project: the DPIA is outside")


def test_a_pattern_stands_for_every_check_it_matches():
    observations = {
        "check:raw_data:age__range": obs("passed", when="2026-01-01T00:00:00+00:00"),
        "check:raw_data:sex__group__Male__min_size": obs("passed", when="2026-01-02T00:00:00+00:00", run_id="r2"),
        "check:raw_data:sex__group__Female__min_size": obs("failed", "FAILED rule: 12 rows < 30"),
        "check:training_data:splits_are_usable": obs("failed"),
    }
    groups = c.evaluate([req(evidence=("check:raw_data:*__group__*__min_size",))], observations)[0]
    assert groups.status == RowStatus.FAILED
    [result] = groups.evidence
    assert result.matched == (
        "check:raw_data:sex__group__Female__min_size",
        "check:raw_data:sex__group__Male__min_size",
    )
    assert result.detail == "2 checks: 1 failed, 1 passed (sex__group__Female__min_size: FAILED rule: 12 rows < 30)"
    assert (result.when, result.run_id) == ("2026-01-02T00:00:00+00:00", "r2")
    contract = c.evaluate([req(evidence=("check:raw_data:*",))], observations)[0]
    assert len(contract.evidence[0].matched) == 3  # training_data's check is not raw_data's


def test_counts_lists_every_status():
    rows = c.evaluate(
        [req("a"), req("b", ("asset:b",)), Requirement("c", "DSK", "r", "t", "x", not_covered="why")],
        {"asset:a": obs("passed"), "asset:b": obs("failed")},
    )
    assert c.counts(rows) == {"satisfied": 1, "waived": 0, "failed": 1, "not evaluated": 0, "not covered": 1}


# --- rendering ---------------------------------------------------------------------------------------


def _sample_rows():
    return c.evaluate(
        [
            req("r-1", ("check:a:x", "asset:a"), title="Fairness | gaps"),
            Requirement("r-2", "BaFin", "Principles 2021", "Human in the loop", "text", not_covered="organisational"),
        ],
        {
            "check:a:x": obs("failed", "<script>alert(1)</script> gap 0.177 > 0.050"),
            "asset:a": obs("passed", when="2026-01-01T00:00:00+00:00"),
        },
    )


def test_to_json_round_trips():
    payload = json.loads(c.to_json(_sample_rows(), evaluated_at="2026-01-01T00:00:00+00:00"))
    assert payload["schema"] == c.SCHEMA and payload["evaluated_at"] == "2026-01-01T00:00:00+00:00"
    assert payload["counts"]["failed"] == 1 and payload["counts"]["not covered"] == 1
    first = payload["rows"][0]
    assert first["status"] == "failed" and first["evidence"][0] == {
        "id": "check:a:x",
        "status": "failed",
        "detail": "<script>alert(1)</script> gap 0.177 > 0.050",
        "when": None,
        "run_id": None,
        "partition": None,
        "waived_by": None,
        "waived_until": None,
        "matched": [],
    }


def test_to_markdown_is_one_table_row_per_requirement():
    lines = c.to_markdown(_sample_rows()).splitlines()
    assert lines[0].startswith("| id | framework | reference | requirement | status |")
    assert len(lines) == 4 and all(line.startswith("|") and line.endswith("|") for line in lines)
    assert "Fairness \\| gaps" in lines[2] and "**failed**" in lines[2]
    assert "check:a:x failed; asset:a passed" in lines[2]
    assert "**not covered**" in lines[3] and "not covered by the project: organisational" in lines[3]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_to_html_is_self_contained():
    page = c.to_html(_sample_rows(), sources={"GDPR": "Regulation (EU) 2016/679"})
    assert (
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        in page
    )
    parser = _Tags()
    parser.feed(page)
    names = {t for t, _ in parser.tags}
    assert not names & {"script", "link", "img", "iframe", "object", "embed", "base", "form", "a"}
    assert not [
        a for _, attrs in parser.tags for a in attrs if a in ("src", "href", "srcset", "action") or a.startswith("on")
    ]
    assert not re.search(r"url\(|@import|https?://|//[a-z]", page, re.IGNORECASE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # evidence text is escaped, never markup
    assert 'class="status failed">failed<' in page and "Regulation (EU) 2016/679" in page


# --- the repository's requirements -------------------------------------------------------------------


@pytest.fixture(scope="module")
def requirements() -> list[Requirement]:
    return c.load_requirements(REQUIREMENTS_FILE)


def test_the_requirements_file_is_package_data(requirements):
    shipped = resources.files("mlcomops_assets.compliance") / "requirements.yaml"
    assert shipped.is_file() and Path(str(shipped)).resolve() == REQUIREMENTS_FILE
    assert set(c.load_sources(REQUIREMENTS_FILE)) == set(c.FRAMEWORKS)
    assert 30 <= len(requirements) <= 60


def test_every_evidence_id_names_an_asset_or_check_of_the_code_location(requirements):
    from mlcomops_assets.compliance_evidence import known_evidence_ids
    from mlcomops_assets.definitions import defs

    known = set(known_evidence_ids(defs)) | NEW_ASSETS
    assert c.unknown_evidence(requirements, known) == []
    # Each pattern stands for several checks of the default policy's data contract.
    for pattern in (e for e in c.evidence_ids(requirements) if c.is_pattern(e)):
        assert len(c.matches(pattern, known)) >= 2, pattern


def _articles(references: list[str]) -> set[int]:
    return {int(n) for ref in references for n in re.findall(r"Art\. (\d+)", ref)}


def test_every_article_and_principle_of_the_issue_has_a_row(requirements):
    by_framework: dict[str, list[Requirement]] = {}
    for r in requirements:
        by_framework.setdefault(r.framework, []).append(r)
    assert set(by_framework) == set(c.FRAMEWORKS)
    ai_act = [r.reference for r in by_framework["EU AI Act"]]
    assert {9, 10, 11, 12, 13, 14, 15, 17} <= _articles(ai_act)
    assert any(ref.startswith("Annex IV") for ref in ai_act)
    annex = " ".join(ref for ref in ai_act if ref.startswith("Annex IV"))
    assert all(f"({n})" in annex for n in range(1, 10)), annex  # every point of Annex IV
    assert {5, 6, 22, 25, 32, 35} <= _articles([r.reference for r in by_framework["GDPR"]])
    dsk = " ".join(r.title.lower() for r in by_framework["DSK"])
    for goal in ("transparency", "data minimisation", "unlinkability", "intervenability", "availability"):
        assert goal in dsk
    for goal in ("integrity", "confidentiality", "discrimination"):
        assert goal in dsk
    bafin = " ".join(f"{r.title} {r.requirement}".lower() for r in by_framework["BaFin"])
    for topic in ("reproducib", "explainable alternative", "bias", "explain", "monitoring", "validat"):
        assert topic in bafin, topic


def test_rows_the_project_cannot_evidence_say_why(requirements):
    not_covered = {r.id for r in requirements if r.not_covered}
    assert {"gdpr-art6-lawfulness", "gdpr-art35-dpia", "euaia-art17-organisation"} <= not_covered
    assert all(len(r.not_covered or "") > 40 for r in requirements if r.not_covered)
    # Evidence must be real work of the pipeline: every evidenced row names at least one check or asset
    # that a run produces, and the matrix never evidences itself (it would always lag one run behind).
    assert not {"asset:compliance_matrix", "asset:audit_bundle"} & set(c.evidence_ids(requirements))


def test_the_fairness_rows_follow_the_fairness_gate(requirements):
    """A tightened fairness limit fails the selection gate (nothing is registered, so fairness_report is
    not re-run): every fairness row must name that gate too, or it would stay satisfied."""
    gate = "check:model_selection_report:a_candidate_passes_every_gate"
    fairness_rows = [r for r in requirements if "check:fairness_report:fairness_within_thresholds" in r.evidence]
    assert fairness_rows
    passing = {e: Observation("passed", "ok") for e in c.evidence_ids(requirements)}  # a pattern matches itself
    failing = {**passing, gate: Observation("failed", "failed: citizen: equalized_odds_difference 0.177 > 0.050")}
    before = {r.id: r.status for r in c.evaluate(requirements, passing)}
    after = {r.id: r.status for r in c.evaluate(requirements, failing)}
    for r in fairness_rows:
        assert gate in r.evidence, r.id
        assert (before[r.id], after[r.id]) == (RowStatus.SATISFIED, RowStatus.FAILED), r.id
