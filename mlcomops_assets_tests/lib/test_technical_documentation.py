"""The technical documentation (EU AI Act Annex IV) and the model card generated from a model version's
evidence: the nine sections, every figure taken from the evidence and linked to its bundle item, what
the provider has not written listed as open (never filled in), missing evidence said to be missing,
and HTML that opens offline and links only inside the bundle."""

from __future__ import annotations

import copy
import posixpath
import re
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from mlcomops_assets.lib import technical_documentation as td
from mlcomops_assets.lib.technical_documentation import Evidence
from mlcomops_assets.policy import DocumentationSpec, PolicyError, load_policy, parse_policy
from mlcomops_assets_tests.conftest import REPO, default_policy

# --- evidence in the shapes the pipeline writes (trimmed copies of a run on the default data) -----------


def _interval(estimate: float, low: float, high: float) -> dict[str, float]:
    return {"estimate": estimate, "low": low, "high": high}


def _group(name: str, count: int, accuracy: float, rate: float, tpr: float, fpr: float, small: bool = False):
    return {
        "group": name,
        "count": count,
        "accuracy": accuracy,
        "selection_rate": rate,
        "true_positive_rate": tpr,
        "false_positive_rate": fpr,
        "too_small": small,
    }


def _analysis(dpd: float, ratio: float, eod: float, groups: list[dict]) -> dict[str, Any]:
    return {
        "demographic_parity_difference": dpd,
        "demographic_parity_ratio": ratio,
        "equalized_odds_difference": eod,
        "evaluable": True,
        "groups": groups,
        "intervals": {
            "demographic_parity_difference": _interval(round(dpd, 5), 0.00373, 0.13742),
            "demographic_parity_ratio": _interval(round(ratio, 5), 0.86239, 0.99957),
            "equalized_odds_difference": _interval(round(eod, 5), 0.04476, 0.30774),
        },
    }


FAIRNESS_ATTRIBUTES = {
    "citizen": _analysis(
        0.088459892696093,
        0.9114264056423439,
        0.17735085945399398,
        [_group("No", 156, 0.7372, 0.9103, 0.9469, 0.814), _group("Yes", 779, 0.8537, 0.9987, 1.0, 0.9913)],
    ),
    "colour": _analysis(
        0.060536465419324226,
        0.9393780310984451,
        0.0978243352135375,
        [_group("Black", 226, 0.6858, 0.9381, 0.9608, 0.8904), _group("White", 709, 0.8815, 0.9986, 1.0, 0.9882)],
    ),
    "colour x sex": _analysis(
        0.06046511627906981,
        0.9395348837209302,
        0.11267605633802813,
        [
            _group("Black & Female", 11, 0.7273, 0.9091, 0.8889, 1.0, small=True),
            _group("Black & Male", 215, 0.6837, 0.9395, 0.9653, 0.8873),
            _group("White & Female", 69, 0.9275, 1.0, 1.0, 1.0),
            _group("White & Male", 640, 0.8766, 0.9984, 1.0, 0.9875),
        ],
    ),
}

EVALUATION = {
    "accuracy": 0.8342245989304813,
    "balanced_accuracy": 0.524620008797224,
    "brier_score": 0.13048958949653572,
    "calibration": [
        {"mean_predicted": 0.5758, "observed_rate": 0.6277},
        {"mean_predicted": 0.937, "observed_rate": 0.9302},
    ],
    "expected_calibration_error": 0.027855921079329504,
    "f1": 0.9086623453152622,
    "gate": {"status": "passed", "verdict": "passed: every gated metric reaches its minimum"},
    "intervals": {
        "accuracy": _interval(0.83422, 0.80963, 0.85671),
        "balanced_accuracy": _interval(0.52462, 0.50851, 0.54414),
        "roc_auc": _interval(0.69707, 0.65231, 0.74182),
    },
    "majority_class_accuracy": 0.8310160427807487,
    "model_uri": "models:/arrests_release_model/4",
    "positive_rate": 0.8310160427807487,
    "precision": 0.8380434782608696,
    "predicted_positive_rate": 0.983957219251337,
    "recall": 0.9922779922779923,
    "roc_auc": 0.6970659628887476,
    "rows": 935,
    "waived": [],
}

FAIRNESS = {
    "attributes": FAIRNESS_ATTRIBUTES,
    "bootstrap_samples": 1000,
    "confidence_level": 0.95,
    "decided_on": "2026-11-28",
    "gate": {"status": "passed", "verdict": "passed: every fairness gap is within the policy's thresholds"},
    "min_group_size": 30,
    "model_uri": "models:/arrests_release_model/4",
    "violations": [],
    "waived": [],
}

JUSTIFICATION = (
    "logistic_regression (interpretable, 7 parameters) is chosen: holdout roc_auc 0.697 [0.652, 0.742]; "
    "gradient_boosting reaches 0.685 [0.639, 0.732], a gain of -0.012 < 0.01; paired 95% CI of the gain "
    "[-0.029, 0.005], which does not justify a less explainable model"
)


def _candidate(name: str, interpretable: bool, roc_auc: float, parameters: int, gap: float) -> dict[str, Any]:
    return {
        "name": name,
        "interpretable": interpretable,
        "deployable": True,
        "gates": {"blocking": [], "passed": True, "status": "passed", "waived": []},
        "holdout": {"accuracy": 0.83422, "balanced_accuracy": 0.52462, "roc_auc": roc_auc, "brier_score": 0.13049},
        "intervals": {
            "accuracy": _interval(0.83422, 0.80963, 0.85671),
            "balanced_accuracy": _interval(0.52462, 0.50851, 0.54414),
            "roc_auc": _interval(roc_auc, 0.63898, 0.74182),
        },
        "largest_fairness_gap": gap,
        "size": {"parameters": parameters, "tree_nodes": 0, "trees": 0},
        "fairness": FAIRNESS_ATTRIBUTES,
        "run_id": f"run-{name}",
    }


SELECTION = {
    "chosen": "logistic_regression",
    "decided_on": "2026-11-28",
    "justification": JUSTIFICATION,
    "metric": "roc_auc",
    "policy_fingerprint": "e6083a8c1965e146",
    "raw_data_md5": "f8569a72143dec63393d71ca8613fb66",
    "rule": "among deployable candidates that pass every gate, the best interpretable one by holdout roc_auc "
    "decides unless a less explainable one beats it by at least 0.01 (model.selection.min_gain_for_complexity)",
    "candidates": [
        _candidate("logistic_regression", True, 0.69707, 7, 0.17735),
        {
            **_candidate("gradient_boosting", False, 0.68541, 1040, 0.1875),
            "difference_to_interpretable": {
                "estimate": -0.01166,
                "low": -0.02869,
                "high": 0.00538,
                "versus": "logistic_regression",
            },
        },
    ],
}

MODEL_RECORD = {
    "best_params": {"C": 0.1},
    "candidate": "logistic_regression",
    "estimator": "logistic_regression",
    "feature_columns": ["age", "citizen", "employed", "checks"],
    "git_commit": "f5333be459b754602867f9bf74df8e26bc0107dc",
    "interpretable": True,
    "model_uri": "models:/arrests_release_model/4",
    "policy_fingerprint": "e6083a8c1965e146",
    "raw_data_md5": "f8569a72143dec63393d71ca8613fb66",
    "registered_name": "arrests_release_model",
    "selection_justification": JUSTIFICATION,
    "trained_at": "2026-11-28T10:48:26+00:00",
    "version": "4",
}

EXPLAINER = {
    "additivity_error": 4.440892098500626e-16,
    "base_log_odds": 1.8527527009190958,
    "explainer_type": "LinearExplainer",
    "global_importance": [
        {"feature": "num__checks", "mean_abs_shap": 0.487026, "source_column": "checks"},
        {"feature": "cat__employed_No", "mean_abs_shap": 0.132313, "source_column": "employed"},
    ],
    "model_uri": "models:/arrests_release_model/4",
    "rows_explained": 935,
}

BATCH = {
    "accuracy": 0.8340214698596201,
    "alarms": [],
    "batch": "2001",
    "data_drift": {
        "columns": [
            {"column": "age", "drifted": False, "method": "wasserstein", "score": 0.038985, "threshold": 0.1},
            {"column": "citizen", "drifted": False, "method": "jensenshannon", "score": 0.07557, "threshold": 0.1},
        ],
        "current_rows": 1211,
        "dataset_drift": False,
        "drift_share": 0.0,
        "drifted_columns": 0,
        "reference_rows": 2803,
    },
    "fairness_status": "passed",
    "labeled_rows": 1211,
    "largest_fairness_gap": 0.11764705882352944,
    "model_uri": "models:/arrests_release_model/4",
    "outlier_share": 0.00661,
    "prediction_drift": {"score_ks": 0.03361, "positive_rate_change": 0.01274, "drifted": False},
    "roc_auc": 0.7245308635988944,
    "rows": 1211,
}

VERDICT = "promoted: every gate passed; ROC AUC 0.697 vs champion 0.697, largest fairness gap 0.177 vs 0.160"
RECORD = {
    "artifact_sha256": "e427890f8183e7bbec1700cd3a96863c67716aa2a0ab69eb44d9135d2ab77494",
    "decided_at": "2026-11-28T10:48:31.395264+00:00",
    "kind": "promotion",
    "previous_champion": "3",
    "public_key": "98b159d1a8147fbaae75a246cc1fc18505fbba72daf22abcb16f8daee8931e0c",
    "registered_name": "arrests_release_model",
    "schema": "mlcomops.promotion/1",
    "verdict": VERDICT,
    "version": "4",
}

LINKS = {
    "model_record": "items/report/trained_model.json",
    "selection": "items/report/model_selection_report.json",
    "evaluation": "items/report/model_evaluation.json",
    "fairness": "items/report/fairness_report.json",
    "explainer": "items/report/shap_explainer.json",
    "promotion": "items/record/arrests_release_model-v4.json",
    "contract": "items/validation/contract_verdict.json",
    "data_version": "items/data_version/data_version.json",
    "outlier_detector": "items/report/outlier_detector.json",
    "policy": "items/policy/governance.yaml",
    "compliance": "items/report/compliance_matrix.json",
    "sbom": "items/sbom/sbom.cdx.json",
    "lock:runtime.lock": "items/lock/runtime.lock",
    "monitoring:2001": "items/report/batch_monitoring/2001.json",
    "drift:2001": "items/report/drift 2001.html",  # a space: links are URL-encoded
}


def documentation(**changes: Any) -> dict[str, Any]:
    """The repository policy's documentation section with ``changes`` (None removes a key)."""
    written = copy.deepcopy(default_policy().get("documentation") or {})
    for key, value in changes.items():
        if value is None:
            written.pop(key, None)
        else:
            written[key] = value
    return written


def make_evidence(documented: dict[str, Any] | None = None, **overrides: Any) -> Evidence:
    raw = default_policy()
    raw["documentation"] = documentation() if documented is None else documented
    fields: dict[str, Any] = {
        "meta": {
            "registered_model": "arrests_release_model",
            "version": "4",
            "git_commit": "f5333be459b754602867f9bf74df8e26bc0107dc",
            "policy_fingerprint": "e6083a8c1965e146",
            "created_at": "2026-11-28T10:50:02+00:00",
            "previous_manifest_sha256": "7d" * 32,
        },
        "model_record": MODEL_RECORD,
        "selection": SELECTION,
        "evaluation": EVALUATION,
        "fairness": FAIRNESS,
        "explainer": EXPLAINER,
        "monitoring": [BATCH],
        "promotion": {"promoted": True, "verdict": VERDICT, "waivers": [], "record": RECORD},
        "contract": {
            "passed": True,
            "policy_fingerprint": "e6083a8c1965e146",
            "raw_md5": "f8569a72143dec63393d71ca8613fb66",
            "rules_evaluated": 42,
            "rules_passed": 42,
        },
        "data_version": {
            "raw_md5": "f8569a72143dec63393d71ca8613fb66",
            "splits": {
                "training_data": {"sha256": "ab" * 32, "rows": 2803},
                "holdout_data": {"sha256": "cd" * 32, "rows": 935},
            },
        },
        "outlier_detector": {"contamination": 0.02, "reference_outlier_share": 0.02034, "reference_rows": 2803},
        "policy": parse_policy(raw),
        "compliance": [
            {
                "id": "AIA-10",
                "framework": "EU AI Act",
                "reference": "Art. 10",
                "title": "Data governance",
                "status": "met",
                "detail": "42 of 42 contract rules passed",
            }
        ],
        "sbom": {"format": "CycloneDX 1.6", "components": 212},
        "locks": ["runtime.lock"],
        "links": LINKS,
    }
    fields.update(overrides)
    return Evidence(**fields)


# --- figures --------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e[-+]\d+)?(?![\w.])|(?<![\w.])-?\d+e[-+]\d+(?![\w.])")


def _leaves(node: Any) -> tuple[list[float], set[str]]:
    """Every number of the evidence, and every number written inside its texts (verdicts, policy text)."""
    numbers: list[float] = []
    tokens: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int | float):
            numbers.append(float(item))
        elif isinstance(item, str):
            tokens.update(_NUMBER.findall(item))
    return numbers, tokens


def _evidence_tree(evidence: Evidence) -> dict[str, Any]:
    tree = {k: v for k, v in vars(evidence).items() if k != "policy"}
    tree["policy"] = evidence.policy.model_dump(mode="json")
    return tree


def _shown_as(value: float, token: str) -> bool:
    """Whether ``token`` is how ``value`` reads at the token's precision."""
    if "e" in token:
        mantissa = token.split("e")[0]
        digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
        return f"{value:.{digits}e}" == token
    digits = len(token.split(".")[1])
    return f"{value:.{digits}f}" == token


def _unsourced(text: str, evidence: Evidence) -> list[str]:
    numbers, tokens = _leaves(_evidence_tree(evidence))
    return [t for t in _NUMBER.findall(text) if t not in tokens and not any(_shown_as(v, t) for v in numbers)]


def _line_with(text: str, *needles: str) -> str:
    lines = [line for line in text.splitlines() if all(n in line for n in needles)]
    assert lines, f"no line holds {needles}"
    return lines[0]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = text.find("\n## ", start + len(heading))
    return text[start : following if following != -1 else len(text)]


# --- tests ----------------------------------------------------------------------------------------------


def test_the_nine_sections_of_annex_iv_in_order():
    text = td.annex_iv_markdown(make_evidence())
    titles = [
        "General description",
        "Development process and design choices",
        "Data and data governance",
        "Monitoring and control",
        "Performance and its limits",
        "Risk management",
        "Changes over the life cycle",
        "Standards applied",
        "Post-market monitoring",
    ]
    positions = [text.index(f"\n## {n}. {title}\n") for n, title in enumerate(titles, start=1)]
    assert positions == sorted(positions)
    assert text.index("\n## Open items\n") < positions[0]  # open items first
    # Annex IV point 8: the pipeline never issues the declaration of conformity
    assert "does not issue an EU declaration of conformity" in _section(text, "## 8. Standards applied")


def test_the_model_card_has_the_sections_of_mitchell_et_al():
    text = td.model_card_markdown(make_evidence())
    positions = [text.index(f"\n## {title}\n") for title in td.MODEL_CARD_SECTIONS]
    assert positions == sorted(positions) and text.index("\n## Open items\n") < positions[0]


@pytest.mark.parametrize("render", [td.annex_iv_markdown, td.model_card_markdown])
def test_every_figure_is_a_figure_of_the_evidence(render):
    evidence = make_evidence()
    text = render(evidence)
    assert _unsourced(text, evidence) == []
    # the check bites: a figure the evidence does not hold is found
    assert _unsourced(text + "\nROC AUC 0.713", evidence) == ["0.713"]


def test_the_performance_section_shows_only_evidence_figures():
    evidence = make_evidence()
    performance = _section(td.annex_iv_markdown(evidence), "## 5. Performance and its limits")
    figures = _NUMBER.findall(performance)
    assert len(figures) > 40 and _unsourced(performance, evidence) == []


@pytest.mark.parametrize("render", [td.annex_iv_markdown, td.model_card_markdown])
def test_key_figures_link_to_their_bundle_item(render):
    text = render(make_evidence())
    evaluation = "](../report/model_evaluation.json)"
    assert evaluation in _line_with(text, "| ROC AUC | 0.697 | [0.652, 0.742] | 0.6 |")
    assert evaluation in _line_with(text, "| accuracy | 0.834 | [0.810, 0.857] | 0.75 |")
    for attribute, figures in FAIRNESS_ATTRIBUTES.items():
        gaps = [f"{figures[key]:.3f}" for key, _, _ in td._FAIRNESS_METRICS]
        row = _line_with(text, f"| {attribute} | {gaps[0]} ")
        assert all(gap in row for gap in gaps), row
        assert "](../report/fairness_report.json)" in row
    batch = _line_with(text, "| 2001 | 1211 |")
    assert "](../report/batch_monitoring/2001.json)" in batch and "](../report/drift%202001.html)" in batch


def test_the_choice_against_the_explainable_alternative_is_documented():
    development = _section(td.annex_iv_markdown(make_evidence()), "## 2. Development process")
    row = _line_with(development, "`gradient_boosting`", "| 1040 |")
    assert "-0.012 [-0.029, 0.005] vs `logistic_regression`" in row
    assert "does not justify a less explainable model" in development
    assert "](../report/model_selection_report.json)" in development


def test_an_unwritten_provider_statement_is_open_and_never_filled_in():
    written = documentation(risk_assessment=None, intended_purpose="TODO: describe the decision")
    evidence = make_evidence(written)
    assert td.open_fields(evidence) == ["intended_purpose", "risk_assessment"]
    for text in (td.annex_iv_markdown(evidence), td.model_card_markdown(evidence)):
        opened = _section(text, "## Open items")
        assert "- `intended_purpose`:" in opened and "- `risk_assessment`:" in opened
        assert "- `provider`:" not in opened  # written, so not open
        assert "TODO" not in text  # the placeholder is never shown as if it were the statement
        assert "**Open:** not stated by the provider (`documentation.risk_assessment` in the policy)." in text
        assert written["provider"] in text
    annex = td.annex_iv_markdown(evidence)
    assert "**Intended purpose (1 (a)):**\n\n**Open:**" in annex
    assert "**Open:**" in _section(annex, "## 6. Risk management")


def test_with_every_statement_written_nothing_is_open():
    evidence = make_evidence(documentation(risk_assessment="Wrongful detention if used; it is not used."))
    assert td.open_fields(evidence) == []
    text = td.annex_iv_markdown(evidence)
    assert "**Open:**" not in text and "None: every provider statement" in text


def test_without_a_policy_every_statement_is_open():
    evidence = make_evidence(policy=None)
    assert td.open_fields(evidence) == list(DocumentationSpec.model_fields)
    assert "policy" in td.missing_evidence(evidence)


def test_an_empty_list_is_a_statement_not_an_open_item():
    evidence = make_evidence(documentation(standards_applied=[], changes_log=["v2: retrained on 2001"]))
    assert "standards_applied" not in td.open_fields(evidence)
    standards = _section(td.annex_iv_markdown(evidence), "## 8. Standards applied")
    assert "None, as stated by the provider." in standards
    assert "- v2: retrained on 2001" in td.annex_iv_markdown(evidence)


def test_missing_fairness_evidence_is_said_to_be_missing_not_invented():
    links = {k: v for k, v in LINKS.items() if k != "fairness"}
    evidence = make_evidence(fairness=None, links=links)
    assert td.missing_evidence(evidence) == ["fairness report"]
    for text in (td.annex_iv_markdown(evidence), td.model_card_markdown(evidence)):
        assert "Fairness gaps between groups: not available in the evidence." in text
        assert "Accuracy per group: not available in the evidence." in text
        assert "fairness_report.json" not in text
        assert "0.088" not in text and "0.098" not in text  # no gap of the (absent) report
        assert _unsourced(text, evidence) == []
    risk = _section(td.annex_iv_markdown(evidence), "## 6. Risk management")
    assert "| fairness | not available in the evidence |" in risk


def test_a_version_without_any_evidence_still_documents_what_is_missing():
    evidence = Evidence(meta={"registered_model": "m", "version": "1"})
    for text in (td.annex_iv_markdown(evidence), td.model_card_markdown(evidence)):
        assert _NUMBER.findall(text) == []
        assert text.count(td.NOT_AVAILABLE) > 10
        assert "](" not in text.replace("](../../manifest.json)", "")  # nothing to link but the manifest


def test_a_batch_scored_by_another_version_is_marked():
    other = {**BATCH, "model_uri": "models:/arrests_release_model/3"}
    text = td.annex_iv_markdown(make_evidence(monitoring=[other]))
    assert "`models:/arrests_release_model/3` (another version)" in text
    assert "No production batch has been monitored" in td.annex_iv_markdown(make_evidence(monitoring=[]))


def test_the_version_chain_and_previous_champion():
    changes = _section(td.annex_iv_markdown(make_evidence()), "## 7. Changes over the life cycle")
    assert "Previous champion: version 3" in changes and "7d" * 32 in changes
    first = make_evidence(
        meta={"registered_model": "arrests_release_model", "version": "1", "previous_manifest_sha256": None}
    )
    assert "the first version of the chain" in td.annex_iv_markdown(first)
    # before the bundle is signed the chain link may not be known yet: the manifest records it
    unknown = make_evidence(meta={"registered_model": "arrests_release_model", "version": "4"})
    chain = _line_with(td.annex_iv_markdown(unknown), "**Version chain:**")
    assert "[manifest.json](../../manifest.json)" in chain and "`previous_manifest_sha256`" in chain


def _hrefs(page: str) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]*)"', page)


def test_the_html_is_self_contained_and_links_stay_inside_the_bundle():
    evidence = make_evidence()
    pages = td.render_documents(evidence)
    assert set(pages) == {"annex_iv.md", "annex_iv.html", "model_card.md", "model_card.html"}
    for name in ("annex_iv.html", "model_card.html"):
        page = pages[name]
        assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
        assert f'<meta http-equiv="Content-Security-Policy" content="{td.CSP}">' in page
        assert td.CSP == "default-src 'none'; style-src 'unsafe-inline'"
        targets = {posixpath.normpath(posixpath.join(td.DOCUMENT_FOLDER, unquote(h))) for h in _hrefs(page)}
        assert targets == set(LINKS.values()) | {"manifest.json"}  # every link resolves to a bundle item
    assert "<h2>5. Performance and its limits</h2>" in pages["annex_iv.html"]
    assert "<h2>Quantitative analyses</h2>" in pages["model_card.html"]


def test_links_are_relative_to_where_the_document_lives():
    text = td.annex_iv_markdown(make_evidence(), folder="docs")
    assert "](../items/report/model_evaluation.json)" in text and "](../manifest.json)" in text
    assert "](items/report/model_evaluation.json)" in td.annex_iv_markdown(make_evidence(), folder="")


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.json", "items//x.json", "items\\x.json", ""])
def test_a_link_outside_the_bundle_is_refused(target):
    with pytest.raises(ValueError, match="relative to the bundle root"):
        td.annex_iv_markdown(make_evidence(links={**LINKS, "evaluation": target}))


def test_provider_text_cannot_add_links_markup_or_scripts():
    hostile = "[click](https://evil.example) <script>alert(1)</script> ![x](http://evil.example/x.png)"
    evidence = make_evidence(documentation(intended_purpose=hostile, provider="# Heading\n\n1. list"))
    for name, page in td.render_documents(evidence).items():
        if name.endswith(".html"):
            assert "<script" not in page and "evil.example" not in "".join(_hrefs(page))
            assert "&lt;script&gt;" in page and "<h1>Heading" not in page and "<ol>" not in page


def test_the_html_refuses_external_links_even_in_markdown_it_writes():
    page = td.render_html("[a](https://x.example) [b](//x.example/y) [c](javascript:alert(1)) [d](../ok.json)", "t")
    assert _hrefs(page) == ["../ok.json"]


def test_the_repository_policy_documents_the_demo_and_leaves_the_risk_assessment_open():
    policy = load_policy(REPO / "governance.yaml")
    evidence = make_evidence(policy=policy)
    assert td.open_fields(evidence) == ["risk_assessment"]
    assert policy.documentation.provider and policy.documentation.intended_purpose


def test_a_blank_or_unknown_documentation_key_is_refused():
    raw = default_policy()
    raw["documentation"] = {"intended_purpose": "  "}
    with pytest.raises(PolicyError, match="documentation.intended_purpose: empty text"):
        parse_policy(raw)
    raw["documentation"] = {"intended_use": "x"}
    with pytest.raises(PolicyError, match="documentation.intended_use: unknown key"):
        parse_policy(raw)


def test_the_documentation_in_its_yaml_form_round_trips():
    raw = default_policy()
    text = yaml.safe_dump(raw, sort_keys=False)
    assert parse_policy(yaml.safe_load(text)).documentation == parse_policy(raw).documentation


def test_links_keyed_by_bundle_item_name_and_the_bundles_shapes():
    """The audit bundle may key ``links`` by item name and hand over its own shapes of the promotion
    verdict (``promotion_record``) and data version (``raw_data_md5``, ``layers``)."""
    items = {
        "model_evaluation.json": "report",
        "fairness_report.json": "report",
        "model_selection_report.json": "report",
        "batch_monitoring/2001.json": "report",
        "batch_reports/drift-2001.html": "report",
        "trained_model.json": "record",
        "promotion_verdict.json": "record",
        "data_version.json": "data_version",
        "governance.yaml": "policy",
        "runtime.lock": "lock",
        "mlflow_run_run-gradient_boosting.json": "run",
    }
    links = {name: f"items/{kind}/{name}" for name, kind in items.items()}
    promotion = {"promoted": True, "verdict": VERDICT, "waivers": [], "promotion_record": RECORD}
    data_version = {
        "raw_data_md5": "f8569a72143dec63393d71ca8613fb66",
        "layers": {"data/prepared/holdout_data.parquet": {"sha256": "cd" * 32, "rows": 935}},
    }
    evidence = make_evidence(links=links, promotion=promotion, data_version=data_version)
    text = td.annex_iv_markdown(evidence)
    assert "](../report/model_evaluation.json)" in _line_with(text, "| ROC AUC | 0.697 |")
    assert "](../report/batch_reports/drift-2001.html)" in _line_with(text, "| 2001 | 1211 |")
    assert "](../run/mlflow_run_run-gradient_boosting.json)" in _line_with(text, "`gradient_boosting`", "| 1040 |")
    assert "Previous champion: version 3 (source: [promotion_verdict.json](../record/promotion_verdict.json))" in text
    assert "| `data/prepared/holdout_data.parquet` | `" + "cd" * 32 + "` | 935 |" in text
    assert "raw data `f8569a72143dec63393d71ca8613fb66`" in text
    assert f"public key `{RECORD['public_key']}`" in text
    assert _unsourced(text, evidence) == []


def test_a_version_refused_promotion_is_documented_as_such():
    refused = "refused: fairness gate failed: citizen equalized_odds_difference 0.31 > 0.25"
    promotion = {"promoted": False, "verdict": refused, "waivers": [], "promotion_record": None}
    text = td.annex_iv_markdown(make_evidence(promotion=promotion))
    assert "Promotion: not promoted; verdict: " + refused.replace(">", "\\>") in text  # escaped, as all quoted text
    assert "Previous champion: not available in the evidence" in text  # no record names it: never guessed
    assert "| promotion (every gate, and no worse than the champion) | not promoted |" in text
