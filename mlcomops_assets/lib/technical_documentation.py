"""Technical documentation (EU AI Act Annex IV) and a model card for one model version, from its evidence.

Both documents are written for one registered model version from the evidence its audit bundle holds
(``lib/audit_bundle.py``): the model record, the selection report, the evaluation, the fairness and SHAP
reports, the batch monitoring results, the signed promotion record, the data contract verdict, the data
version, the policy, the compliance matrix, the SBOM and the dependency locks. Every figure is copied
from one of them, never computed here, and each table or statement with figures links to the bundle
item it comes from, relative to the folder the document is written to (``items/documentation/`` by
default), so the links work inside the bundle folder and its zip, offline.

What the pipeline cannot know (the intended purpose, the deployers, the human oversight measures, the
risk assessment, ...) is quoted from the policy's ``documentation:`` section (``DocumentationSpec``). A
statement the provider has not written is marked *open* where it belongs and listed under "Open items"
at the top of both documents; evidence missing for this version is marked "not available in the
evidence". Nothing is filled in otherwise.

Annex IV is followed in nine sections, each naming the points of Annex IV (Regulation (EU) 2024/1689) it
covers; the model card follows Mitchell et al., "Model Cards for Model Reporting" (FAT* 2019). Text
taken from the evidence or the policy is escaped, so it can never become a link, an image or markup.

Pure Python (markdown-it-py for the HTML): no Dagster, no MLflow.
"""

from __future__ import annotations

import html
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from mlcomops_assets.policy import DocumentationSpec, Policy

DOCUMENT_FOLDER = "items/documentation"  # where the bundle keeps the documents, relative to its root
ANNEX_IV = "annex_iv"
MODEL_CARD = "model_card"
NOT_AVAILABLE = "not available in the evidence"
MANIFEST = "manifest.json"  # the bundle's signed manifest, at its root: holds ``Evidence.meta``

# The nine sections of the technical documentation, numbered 1-9, and the points of Annex IV (and the
# articles) each covers. Annex IV point 8 (the EU declaration of conformity) is part of section 8.
ANNEX_IV_SECTIONS: tuple[tuple[str, str], ...] = (
    ("General description", "Annex IV point 1 (a)-(h)"),
    ("Development process and design choices", "Annex IV point 2 (a), (b), (c), (f), (h)"),
    ("Data and data governance", "Annex IV point 2 (d); Art. 10"),
    ("Monitoring and control", "Annex IV point 3 and point 2 (e); Art. 13, 14"),
    ("Performance and its limits", "Annex IV points 2 (g), 3 and 4; Art. 15"),
    ("Risk management", "Annex IV point 5; Art. 9"),
    ("Changes over the life cycle", "Annex IV point 6 and point 2 (f)"),
    ("Standards applied", "Annex IV points 7 and 8; Art. 40, 47"),
    ("Post-market monitoring", "Annex IV point 9; Art. 72"),
)
MODEL_CARD_SECTIONS: tuple[str, ...] = (
    "Model details",
    "Intended use",
    "Factors",
    "Metrics",
    "Evaluation data",
    "Training data",
    "Quantitative analyses",
    "Ethical considerations",
    "Caveats and recommendations",
)

# The keys of ``Evidence.links`` the documents cite (paths relative to the bundle root); per-item keys
# end in ``:<name>``.
LINK_KEYS: dict[str, str] = {
    "model_record": "the registered version's record (data/models/trained_model.json)",
    "model": "the model artifact",
    "selection": "the model selection report",
    "evaluation": "the holdout evaluation (model_evaluation.json)",
    "fairness": "the fairness report",
    "explainer": "the SHAP explainer report (shap_explainer.json)",
    "promotion": "the signed promotion record",
    "contract": "the data contract verdict",
    "data_version": "the data version: DVC md5 of the raw data, split hashes and rows",
    "outlier_detector": "the outlier detector's record",
    "policy": "the policy file (governance.yaml)",
    "compliance": "the compliance matrix",
    "sbom": "the software bill of materials",
    "monitoring:<batch>": "one production batch's monitoring result",
    "drift:<batch>": "one production batch's drift report (Evidently HTML)",
    "run:<candidate>": "one candidate's MLflow run",
    "lock:<name>": "one dependency lock file",
}

# The item names the audit bundle gives each piece of evidence: ``links`` may be keyed by them instead of
# by the evidence keys above (the key is tried first). Per-item keys: ``{}`` is the batch or lock name.
ITEM_NAMES: dict[str, tuple[str, ...]] = {
    "model_record": ("trained_model.json",),
    "model": ("model",),
    "selection": ("model_selection_report.json",),
    "evaluation": ("model_evaluation.json",),
    "fairness": ("fairness_report.json",),
    "explainer": ("shap_explainer.json",),
    "promotion": ("promotion_verdict.json", "promotion_record.json"),
    "contract": ("contract_verdict.json",),
    "data_version": ("data_version.json",),
    "outlier_detector": ("outlier_detector.json",),
    "policy": ("governance.yaml",),
    "compliance": ("compliance_matrix.json",),
    "sbom": ("sbom.cdx.json",),
    "monitoring": ("batch_monitoring/{}.json",),
    "drift": ("batch_reports/drift-{}.html",),
    "lock": ("{}",),
    "run": ("mlflow_run_{}.json",),
}

_EVIDENCE_NAMES = {
    "model_record": "model record",
    "selection": "model selection report",
    "evaluation": "holdout evaluation",
    "fairness": "fairness report",
    "explainer": "SHAP explainer report",
    "monitoring": "batch monitoring results",
    "promotion": "promotion record",
    "contract": "data contract verdict",
    "data_version": "data version",
    "outlier_detector": "outlier detector record",
    "policy": "policy",
    "compliance": "compliance matrix",
    "sbom": "software bill of materials",
    "locks": "dependency locks",
}

_FAIRNESS_METRICS = (
    ("demographic_parity_difference", "demographic parity difference", "max_demographic_parity_difference"),
    ("equalized_odds_difference", "equalized odds difference", "max_equalized_odds_difference"),
    ("demographic_parity_ratio", "selection-rate ratio", "min_demographic_parity_ratio"),
)


@dataclass(frozen=True)
class Evidence:
    """The evidence of one model version, as loaded from its bundle items; any of it may be missing (None).

    Shapes (the pipeline's own files; a key missing inside one is "not available" too):

    - ``meta``: ``registered_model``, ``version``, ``git_commit``, ``policy_fingerprint``, optionally
      ``created_at`` and ``previous_manifest_sha256`` (None for the first version of the chain); without
      the latter the documents point to the manifest, which records it.
    - ``model_record``: ``data/models/trained_model.json``; ``selection``: the selection report JSON;
      ``evaluation``: ``model_evaluation.json``; ``fairness``: ``fairness_report.json``; ``explainer``:
      ``shap_explainer.json``; ``outlier_detector``: ``outlier_detector.json``; ``contract``:
      ``data/validation/contract_verdict.json``.
    - ``monitoring``: the ``batch_monitoring/<batch>.json`` dicts of the batches (``[]``: none monitored
      yet); a batch scored by another version is marked so.
    - ``promotion``: ``{"promoted": bool, "verdict": str, "waivers": [str], "record" (or
      "promotion_record"): <signed promotion record>, "previous_champion": str}`` (the record as in
      ``published/promotion/<model>-v<N>.json``; ``previous_champion`` defaults to the record's).
    - ``data_version``: ``{"raw_md5" (or "raw_data_md5"): str, "splits" (or "layers"): {name: {"sha256" or
      "md5": str, "rows": int}}}``; further top-level text entries are listed as they are.
    - ``policy``: the ``Policy`` the bundle holds, or its ``model_dump(mode="json")``.
    - ``compliance``: matrix rows ``{"id", "framework", "reference", "title", "status", "detail"}``.
    - ``sbom``: ``{"format": str, "components": int}``; ``locks``: names, or ``{"name", "sha256"}``.
    - ``links``: bundle-relative path of each item, e.g. ``"items/report/model_evaluation.json"``, keyed by
      evidence key (``LINK_KEYS``: ``"evaluation"``, ``"monitoring:2001"``, ``"lock:runtime.lock"``) or
      by the item name the bundle gives it (``ITEM_NAMES``: ``"model_evaluation.json"``,
      ``"batch_monitoring/2001.json"``, ``"runtime.lock"``).
    """

    meta: Mapping[str, Any]
    model_record: Mapping[str, Any] | None = None
    selection: Mapping[str, Any] | None = None
    evaluation: Mapping[str, Any] | None = None
    fairness: Mapping[str, Any] | None = None
    explainer: Mapping[str, Any] | None = None
    monitoring: Sequence[Mapping[str, Any]] | None = None
    promotion: Mapping[str, Any] | None = None
    contract: Mapping[str, Any] | None = None
    data_version: Mapping[str, Any] | None = None
    outlier_detector: Mapping[str, Any] | None = None
    policy: Policy | Mapping[str, Any] | None = None
    compliance: Sequence[Mapping[str, Any]] | None = None
    sbom: Mapping[str, Any] | None = None
    locks: Sequence[str | Mapping[str, Any]] | None = None
    links: Mapping[str, str] = field(default_factory=dict)


# --- what is open ------------------------------------------------------------------------------------


def _record(promotion: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The signed promotion record inside the promotion evidence (``record`` or ``promotion_record``)."""
    return _get(promotion, "record") or _get(promotion, "promotion_record")


def _raw_md5(data_version: Mapping[str, Any] | None) -> str | None:
    return _get(data_version, "raw_md5") or _get(data_version, "raw_data_md5")


def _splits(data_version: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Each data layer's hash and rows (``splits``, or ``layers`` keyed by path)."""
    return _get(data_version, "splits") or _get(data_version, "layers") or {}


def _policy_dict(policy: Policy | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    if isinstance(policy, Policy):
        return policy.model_dump(mode="json")
    return dict(policy)


def _unwritten(value: Any) -> bool:
    """A provider statement that is not there: absent, blank, or a TODO left in place."""
    if value is None:
        return True
    texts = value if isinstance(value, list) else [value]
    return any(not str(t).strip() or str(t).strip().upper().startswith("TODO") for t in texts)


def open_fields(evidence: Evidence) -> list[str]:
    """The ``documentation:`` keys the provider has not written (all of them without a policy), in the
    schema's order."""
    policy = _policy_dict(evidence.policy)
    written = (policy or {}).get("documentation") or {}
    return [key for key in DocumentationSpec.model_fields if _unwritten(written.get(key))]


def missing_evidence(evidence: Evidence) -> list[str]:
    """The kinds of evidence this version's bundle does not hold (readable names)."""
    missing = [name for key, name in _EVIDENCE_NAMES.items() if getattr(evidence, key) is None]
    if evidence.compliance is not None and not evidence.compliance:
        missing.append(_EVIDENCE_NAMES["compliance"])
    return missing


# --- Markdown text -----------------------------------------------------------------------------------

_SPECIAL = re.compile(r"([\\`*\[\]<>|])")
_LONE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_ENTITY = re.compile(r"&(?=[A-Za-z#])")
_BLOCK_MARK = re.compile(r"^([#>+=~-])")
_LIST_NUMBER = re.compile(r"^(\d+)([.)])")


def _esc(text: Any, block: bool = False) -> str:
    """Text from the evidence or the policy as literal Markdown on one line: no link, image, markup,
    entity or table cell break can come out of it; with ``block`` (text that starts a line or a list
    item), no heading, quote or list either."""
    value = " ".join(str(text).split())
    value = _SPECIAL.sub(r"\\\1", value)
    value = _LONE_UNDERSCORE.sub(r"\\_", value)
    value = _ENTITY.sub(r"\\&", value)
    if block:
        value = _BLOCK_MARK.sub(r"\\\1", value)
        value = _LIST_NUMBER.sub(r"\1\\\2", value)
    return value


def _code(text: Any) -> str:
    """An identifier, hash or URI as inline code."""
    value = " ".join(str(text).split()).replace("|", "\\|")
    fence = "``" if "`" in value else "`"
    pad = " " if "`" in value else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _paragraphs(text: str) -> list[str]:
    return [_esc(p, block=True) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _f(value: Any, digits: int = 3) -> str:
    """A figure as the evidence holds it, rounded for reading; a missing one says so."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "not available"
    if isinstance(value, int):
        return str(value)
    if value != 0 and abs(value) < 0.5 * 10**-digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def _g(value: Any) -> str:
    """A policy value as written there (0.6, 0.02, 1e-06)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.10g}"
    return "not set" if value is None else _esc(value)


def _ci(interval: Any) -> str:
    if not isinstance(interval, Mapping) or "low" not in interval or "high" not in interval:
        return ""
    return f"[{_f(interval['low'])}, {_f(interval['high'])}]"


def _get(node: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, Sequence) and not isinstance(node, str) and isinstance(key, int):
            node = node[key] if -len(node) <= key < len(node) else None
        else:
            return None
    return node


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [_row(*header), _row(*(["---"] * len(header))), *(_row(*r) for r in rows), ""]


class _Writer:
    """Builds one document: links relative to its folder, provider statements, figures with sources."""

    def __init__(self, evidence: Evidence, folder: str) -> None:
        self.ev = evidence
        self.folder = folder.strip("/")
        self.policy = _policy_dict(evidence.policy)
        self.doc = (self.policy or {}).get("documentation") or {}
        self.open = open_fields(evidence)
        self.lines: list[str] = []

    # -- output

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def para(self, text: str) -> None:
        self.lines.extend([text, ""])

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"

    # -- links

    def target(self, key: str) -> str | None:
        """The bundle-relative path of the item behind ``key``: by evidence key, else by item name."""
        if key in self.ev.links:
            return self.ev.links[key]
        kind, _, item = key.partition(":")
        for name in ITEM_NAMES.get(kind, ()):
            if (item and "{}" in name) or (not item and "{}" not in name):
                found = self.ev.links.get(name.format(item))
                if found is not None:
                    return found
        return None

    def href(self, key: str) -> str | None:
        target = self.target(key)
        if target is None:
            return None
        parts = target.split("/")
        if not target or target.startswith("/") or "\\" in target or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"links[{key!r}] = {target!r}: expected a path relative to the bundle root")
        return quote(posixpath.relpath(target, self.folder or "."), safe="/")

    def src(self, key: str, label: str | None = None) -> str:
        """A link to the bundle item behind ``key``, labelled with its file name."""
        target = self.target(key)
        href = self.href(key)
        name = label or (posixpath.basename(target) if target else key)
        if href is None:
            return f"{_esc(name)} (not linked in the bundle)"
        return f"[{_esc(name)}]({href})"

    def optional_src(self, key: str) -> str:
        """``, <link>`` when the bundle holds the item, else nothing (items not every bundle has)."""
        return f", {self.src(key)}" if self.target(key) is not None else ""

    def manifest(self) -> str:
        """A link to the bundle's signed manifest, which holds the meta (version, commit, fingerprint)."""
        return f"[{MANIFEST}]({quote(posixpath.relpath(MANIFEST, self.folder or '.'), safe='/')})"

    def sourced(self, key: str) -> str:
        return f"(source: {self.src(key)})"

    # -- provider statements

    def statement(self, key: str) -> str:
        """The provider's statement ``documentation.<key>``, or an explicit open marker."""
        if key in self.open:
            return f"**Open:** not stated by the provider (`documentation.{key}` in the policy)."
        value = self.doc[key]
        if isinstance(value, list):
            if not value:
                return "None, as stated by the provider."
            return "\n".join(f"- {_esc(v, block=True)}" for v in value)
        return "\n\n".join(_paragraphs(value))

    def labelled(self, label: str, key: str) -> None:
        """A labelled provider statement, its source the policy's documentation section."""
        body = self.statement(key)
        if key in self.open or isinstance(self.doc.get(key), list):
            self.para(f"**{label}**")
            self.para(body)
            return
        self.para(f"**{label}** {body}")

    # -- shared pieces

    def pol(self, *keys: str) -> Any:
        return _get(self.policy, *keys)

    @property
    def name(self) -> str:
        return str(self.ev.meta.get("registered_model") or _get(self.ev.model_record, "registered_name") or "model")

    @property
    def version(self) -> str:
        return str(self.ev.meta.get("version") or _get(self.ev.model_record, "version") or "?")

    def header(self, title: str, kind: str) -> None:
        meta = self.ev.meta
        record = self.ev.model_record
        self.add(f"# {_esc(title)}", "")
        self.para(
            f"{kind} of {_code(self.name)} version {_esc(self.version)}, generated from the evidence in its audit "
            "bundle. Every figure is copied from a bundle item and links to it; what only the provider can state "
            "is quoted from the `documentation:` section of the policy "
            f"({self.src('policy')}). A statement the provider has not written is marked **open** and listed "
            f'under "Open items"; evidence missing for this version is marked "{NOT_AVAILABLE}". Nothing is '
            "filled in otherwise."
        )
        rows = [
            ["registered model", _code(self.name), self.src("model_record")],
            ["version", _esc(self.version), self.src("model_record")],
            [
                "model URI",
                _code(_get(record, "model_uri")) if _get(record, "model_uri") else NOT_AVAILABLE,
                self.src("model_record"),
            ],
            ["git commit", _code(meta["git_commit"]) if meta.get("git_commit") else NOT_AVAILABLE, self.manifest()],
            [
                "policy fingerprint",
                _code(meta["policy_fingerprint"]) if meta.get("policy_fingerprint") else NOT_AVAILABLE,
                self.src("policy"),
            ],
        ]
        # The bundle's creation time is in its manifest; the documents leave it out, so the same evidence
        # always gives the same documents (an unchanged bundle is not rebuilt).
        if meta.get("created_at"):
            rows.append(["bundle created (UTC)", _esc(meta["created_at"]), self.manifest()])
        self.add(*_table(["", "", "source"], rows))

    def open_items(self) -> None:
        self.add("## Open items", "")
        if self.open:
            self.para(
                "The provider has not written these statements in the policy's `documentation:` section; "
                "this document is incomplete until they are:"
            )
            fields = DocumentationSpec.model_fields
            self.add(*(f"- `{key}`: {_esc(fields[key].description or '')}" for key in self.open), "")
        else:
            self.para("None: every provider statement of the policy's `documentation:` section is written.")
        missing = missing_evidence(self.ev)
        if missing:
            self.para(
                "Evidence not in the bundle for this version (the statements that need it say "
                f'"{NOT_AVAILABLE}"): ' + ", ".join(missing) + "."
            )
        else:
            self.para("Every kind of evidence is in the bundle.")

    def sources(self) -> None:
        self.add("## Sources", "")
        if not self.ev.links:
            self.para(NOT_AVAILABLE)
            return
        rows = [[_code(key), self.src(key, self.ev.links[key])] for key in sorted(self.ev.links)]
        self.add(*_table(["evidence", "bundle item"], rows))

    def version_line(self) -> str:
        record = self.ev.model_record
        if record is None:
            return f"The model record is {NOT_AVAILABLE}."
        parts = [
            f"{_code(self.name)} version {_esc(self.version)}",
            f"registered at {_esc(record['trained_at'])}" if record.get("trained_at") else "",
            f"from candidate {_code(record['candidate'])}" if record.get("candidate") else "",
        ]
        return ", ".join(p for p in parts if p) + f" {self.sourced('model_record')}."

    def previous_champion_line(self) -> str:
        promotion = self.ev.promotion
        if promotion is None:
            return f"Previous champion: {NOT_AVAILABLE}."
        record = _record(promotion) or {}
        if "previous_champion" in promotion:
            previous = promotion["previous_champion"]
        elif "previous_champion" in record:
            previous = record["previous_champion"]
        else:  # e.g. a version refused promotion: no signed record names the champion it was compared with
            return f"Previous champion: {NOT_AVAILABLE}."
        before = f"version {_esc(previous)}" if previous else "none (no version was champion before)"
        return f"Previous champion: {before} {self.sourced('promotion')}."

    def promotion_line(self) -> str:
        promotion = self.ev.promotion
        if promotion is None:
            return f"Promotion: {NOT_AVAILABLE}."
        outcome = "promoted to champion" if promotion.get("promoted") else "not promoted"
        verdict = promotion.get("verdict") or _get(_record(promotion), "verdict")
        text = f"Promotion: {outcome}" + (f"; verdict: {_esc(verdict)}" if verdict else "")
        waivers = promotion.get("waivers") or []
        if waivers:
            text += "; under waivers: " + "; ".join(_esc(w) for w in waivers)
        return text + f" {self.sourced('promotion')}."

    def metric_rows(self) -> list[list[str]]:
        """The holdout metrics with their intervals and the policy's minimums."""
        evaluation = self.ev.evaluation or {}
        minimums = self.pol("gates", "evaluation") or {}
        rows = []
        for key, label in (
            ("roc_auc", "ROC AUC"),
            ("accuracy", "accuracy"),
            ("balanced_accuracy", "balanced accuracy"),
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "F1"),
            ("brier_score", "Brier score"),
            ("expected_calibration_error", "expected calibration error"),
            ("majority_class_accuracy", "majority-class accuracy (always the majority label)"),
            ("positive_rate", "favourable-label rate on the holdout"),
            ("predicted_positive_rate", "favourable-decision rate of the model"),
        ):
            if key not in evaluation:
                continue
            minimum = minimums.get(f"min_{key}")
            rows.append(
                [
                    label,
                    _f(evaluation[key]),
                    _ci(_get(evaluation, "intervals", key)),
                    _g(minimum) if minimum is not None else "",
                    f"{self.src('evaluation')} {_code(key)}",
                ]
            )
        return rows

    def metrics_table(self) -> None:
        if self.ev.evaluation is None:
            self.para(f"Holdout metrics: {NOT_AVAILABLE}.")
            return
        level = _get(self.ev.fairness, "confidence_level") or self.pol("model", "selection", "confidence_level")
        ci = f"{level:.0%} interval" if isinstance(level, float) else "interval"
        self.add(*_table(["metric", "value", ci, "policy minimum", "source"], self.metric_rows()))
        gate = _get(self.ev.evaluation, "gate")
        if gate:
            self.para(f"Evaluation gate: **{_esc(gate.get('status', '?'))}**: {_esc(gate.get('verdict', ''))}.")
        waived = _get(self.ev.evaluation, "waived") or []
        if waived:
            self.para("Passed only under waivers: " + "; ".join(_esc(w) for w in waived) + ".")

    def fairness_table(self) -> None:
        fairness = self.ev.fairness
        if fairness is None:
            self.para(f"Fairness gaps between groups: {NOT_AVAILABLE}.")
            return
        limits = self.pol("gates", "fairness") or {}
        rows = []
        for analysis, figures in (fairness.get("attributes") or {}).items():
            cells = [_esc(analysis)]
            if not figures.get("evaluable", True):
                cells += ["not evaluated (groups too small)"] * len(_FAIRNESS_METRICS)
            else:
                for key, _, _ in _FAIRNESS_METRICS:
                    cells.append(f"{_f(figures.get(key))} {_ci(_get(figures, 'intervals', key))}".strip())
            cells.append(self.src("fairness"))
            rows.append(cells)
        limit_row = ["policy limit"]
        for _, _, limit_key in _FAIRNESS_METRICS:
            bound = limits.get(limit_key)
            limit_row.append(
                "" if bound is None else ("at least " if limit_key.startswith("min_") else "at most ") + _g(bound)
            )
        rows.append([*limit_row, self.src("policy")])
        header = ["analysis", *(label for _, label, _ in _FAIRNESS_METRICS), "source"]
        level = fairness.get("confidence_level")
        samples = fairness.get("bootstrap_samples")
        if isinstance(level, float):
            self.para(
                f"Fairness on the holdout, with {level:.0%} bootstrap intervals"
                + (f" ({_f(samples)} resamples)" if samples is not None else "")
                + f", groups of fewer than {_f(fairness.get('min_group_size'))} rows left out of the gaps "
                f"{self.sourced('fairness')}:"
            )
        self.add(*_table(header, rows))
        gate = fairness.get("gate") or {}
        if gate:
            self.para(f"Fairness gate: **{_esc(gate.get('status', '?'))}**: {_esc(gate.get('verdict', ''))}.")
        for label, key in (("Violations", "violations"), ("Passed only under waivers", "waived")):
            if fairness.get(key):
                self.para(f"{label}: " + "; ".join(_esc(v) for v in fairness[key]) + ".")

    def group_table(self) -> None:
        fairness = self.ev.fairness
        if fairness is None:
            self.para(f"Accuracy per group: {NOT_AVAILABLE}.")
            return
        rows = []
        for analysis, figures in (fairness.get("attributes") or {}).items():
            for group in figures.get("groups") or []:
                rows.append(
                    [
                        _esc(analysis),
                        _esc(group.get("group")),
                        _f(group.get("count")),
                        _f(group.get("accuracy")),
                        _f(group.get("selection_rate")),
                        _f(group.get("true_positive_rate")),
                        _f(group.get("false_positive_rate")),
                        "too small to compare" if group.get("too_small") else "",
                    ]
                )
        self.para(f"Per group of each protected attribute and intersection, on the holdout {self.sourced('fairness')}:")
        header = ["analysis", "group", "rows", "accuracy", "favourable-decision rate", "TPR", "FPR", "note"]
        self.add(*_table(header, rows))

    def small_groups(self) -> list[str]:
        out = []
        for analysis, figures in (_get(self.ev.fairness, "attributes") or {}).items():
            if not figures.get("evaluable", True):
                out.append(f"{_esc(analysis)} (not evaluated)")
            out += [
                f"{_esc(analysis)}: {_esc(g.get('group'))} ({_f(g.get('count'))} rows)"
                for g in figures.get("groups") or []
                if g.get("too_small")
            ]
        return out

    def baseline_statement(self) -> str:
        """The model's accuracy against deciding the majority label for everyone, from the evaluation."""
        evaluation = self.ev.evaluation
        if evaluation is None or "accuracy" not in evaluation or "majority_class_accuracy" not in evaluation:
            return f"Accuracy against the majority-class baseline: {NOT_AVAILABLE}."
        accuracy, majority = evaluation["accuracy"], evaluation["majority_class_accuracy"]
        low = _get(evaluation, "intervals", "accuracy", "low")
        text = (
            f"The holdout accuracy is {_f(accuracy)}; deciding the majority label for everyone would reach "
            f"{_f(majority)} {self.sourced('evaluation')}."
        )
        if isinstance(low, float) and low <= majority:
            text += (
                f" The accuracy interval (lower bound {_f(low)}) includes that baseline: the decisions are not "
                "shown to be more accurate than deciding the majority label for everyone."
            )
        if "roc_auc" in evaluation:
            text += f" The ROC AUC of {_f(evaluation['roc_auc'])} measures how well the scores rank people."
        return text

    def features_line(self) -> str:
        features = _get(self.ev.model_record, "feature_columns")
        if not features:
            return f"Model inputs: {NOT_AVAILABLE}."
        return f"Model inputs: {', '.join(_code(f) for f in features)} {self.sourced('model_record')}."

    def protected_lines(self) -> list[str]:
        columns = self.pol("data", "columns") or {}
        protected = {n: c for n, c in columns.items() if c.get("role") == "protected"}
        if not protected:
            return [f"- protected attributes: {NOT_AVAILABLE}"]
        lines = []
        for name, spec in protected.items():
            if spec.get("use_as_feature"):
                lines.append(
                    f"- {_code(name)}: a model input and monitored for fairness; justification: "
                    f"{_esc(spec.get('justification') or '')}"
                )
            else:
                lines.append(f"- {_code(name)}: fairness analysis only, never a model input")
        return lines

    def additivity_line(self) -> str:
        explainer = self.ev.explainer
        if explainer is None:
            return f"Explanations (SHAP): {NOT_AVAILABLE}."
        limit = self.pol("gates", "explainability", "max_additivity_error")
        error = explainer.get("additivity_error")
        return (
            f"Explanations: {_esc(explainer.get('explainer_type', 'SHAP'))} on {_f(explainer.get('rows_explained'))} "
            f"holdout rows; the SHAP values add up to the model's output within {_f(error)} "
            + (f"(policy maximum {_g(limit)}) " if limit is not None else "")
            + f"{self.sourced('explainer')}."
        )

    def explainer_lines(self) -> None:
        explainer = self.ev.explainer
        if explainer is None:
            self.para(f"Explanations (SHAP): {NOT_AVAILABLE}.")
            return
        self.para(f"{self.additivity_line()} Global importance (mean |SHAP|):")
        rows = [
            [_code(i.get("feature")), _f(i.get("mean_abs_shap")), _code(i.get("source_column"))]
            for i in explainer.get("global_importance") or []
        ]
        self.add(*_table(["encoded feature", "mean absolute SHAP value", "input column"], rows))

    def batch_table(self) -> None:
        batches = self.ev.monitoring
        if batches is None:
            self.para(f"Production batch monitoring: {NOT_AVAILABLE}.")
            return
        if not batches:
            self.para("No production batch has been monitored with this version yet.")
            return
        own = _get(self.ev.model_record, "model_uri")
        rows = []
        for b in batches:
            drift = b.get("data_drift") or {}
            prediction = b.get("prediction_drift") or {}
            columns = drift.get("columns")
            drifted = (
                f"{_f(drift.get('drifted_columns'))} of {len(columns)}" if columns is not None else "not available"
            )
            model = _code(b.get("model_uri")) if b.get("model_uri") else "not available"
            if own and b.get("model_uri") and b.get("model_uri") != own:
                model += " (another version)"
            rows.append(
                [
                    _esc(b.get("batch")),
                    _f(b.get("rows")),
                    _f(b.get("labeled_rows")),
                    model,
                    drifted,
                    _f(drift.get("drift_share")),
                    _f(prediction.get("score_ks")),
                    _f(prediction.get("positive_rate_change")),
                    _f(b.get("outlier_share")),
                    _f(b.get("roc_auc")),
                    _f(b.get("accuracy")),
                    _f(b.get("largest_fairness_gap")),
                    ", ".join(_esc(a) for a in b.get("alarms") or []) or "none",
                    self.src(f"monitoring:{b.get('batch')}") + self.optional_src(f"drift:{b.get('batch')}"),
                ]
            )
        header = [
            "batch",
            "rows",
            "labeled rows",
            "scored by",
            "drifted columns",
            "drift share",
            "score KS",
            "favourable-rate change",
            "outlier share",
            "ROC AUC",
            "accuracy",
            "largest fairness gap",
            "alarms",
            "source",
        ]
        self.add(*_table(header, rows))

    def retraining_line(self) -> str:
        monitoring = self.pol("monitoring")
        if not monitoring:
            return f"Retraining policy: {NOT_AVAILABLE}."
        triggers = ", ".join(_code(t) for t in monitoring.get("retrain_on") or []) or "none"
        return (
            f"Retraining policy {self.sourced('policy')}: an alarm of {triggers} on a production batch launches "
            f"a retraining, at most once per {_g(monitoring.get('retrain_cooldown_hours'))} hours; retraining adds "
            f"the labeled rows of the {_g(monitoring.get('retrain_window_batches'))} latest validated batches; "
            f"a full re-validation and retraining also runs on the schedule {_code(monitoring.get('retraining_cron'))} "
            f"and monitoring on {_code(monitoring.get('monitoring_cron'))}; a champion older than "
            f"{_g(monitoring.get('champion_max_age_days'))} days is flagged. Every retrained version is a new "
            "version that must pass every gate again and replaces the champion only through a signed promotion."
        )


# --- the technical documentation (Annex IV) ----------------------------------------------------------


def annex_iv_markdown(evidence: Evidence, folder: str = DOCUMENT_FOLDER) -> str:
    """The technical documentation of ``evidence``'s model version, sections 1-9, as Markdown whose links
    are relative to ``folder`` (the document's folder, relative to the bundle root)."""
    w = _Writer(evidence, folder)
    w.header(f"Technical documentation (EU AI Act Annex IV): {w.name} v{w.version}", "Technical documentation")
    w.open_items()
    for number, (title, points) in enumerate(ANNEX_IV_SECTIONS, start=1):
        w.add(f"## {number}. {title}", "")
        w.para(f"*{points}.*")
        _ANNEX_IV_BODIES[number - 1](w)
    w.sources()
    return w.text()


def _general_description(w: _Writer) -> None:
    w.labelled("Intended purpose (1 (a)):", "intended_purpose")
    w.labelled("Provider (1 (a)):", "provider")
    w.labelled("Deployers and context of use (1 (g), (h)):", "deployers")
    w.labelled("Persons the system is used on:", "affected_persons")
    w.labelled("Uses it is not intended for:", "out_of_scope_uses")
    data = w.pol("data")
    if data:
        w.para(
            f"**The decision and its data** {w.sourced('policy')}: dataset {_code(data.get('name'))}: "
            f"{_esc(data.get('description') or '')} Purpose of the processing: {_esc(data.get('purpose') or '')} "
            f"Legal basis: {_esc(data.get('legal_basis') or '')}. The model learns {_code(data.get('target'))}, "
            f"whose favourable outcome is {_code(data.get('positive_label'))}."
        )
    else:
        w.para(f"**The decision and its data:** {NOT_AVAILABLE}.")
    artifact = f" Model artifact: {w.src('model')}." if "model" in w.ev.links else ""
    w.para(f"**Version and previous versions (1 (a)):** {w.version_line()}{artifact} {w.previous_champion_line()}")
    w.para(w.promotion_line())
    commit = w.ev.meta.get("git_commit")
    software = [f"code at git commit {_code(commit)}" if commit else f"git commit: {NOT_AVAILABLE}"]
    if w.ev.locks is None:
        software.append(f"dependency locks: {NOT_AVAILABLE}")
    else:
        names = [lock if isinstance(lock, str) else str(lock.get("name")) for lock in w.ev.locks]
        software.append("exact dependency versions: " + (", ".join(w.src(f"lock:{n}", n) for n in names) or "none"))
    if w.ev.sbom is None:
        software.append(f"software bill of materials: {NOT_AVAILABLE}")
    else:
        software.append(
            f"software bill of materials ({_esc(w.ev.sbom.get('format', 'SBOM'))}): "
            f"{_f(_component_count(w.ev.sbom))} components {w.sourced('sbom')}"
        )
    w.para("**Software versions (1 (c)):** " + "; ".join(software) + ".")
    w.labelled(
        "Forms of deployment, hardware, interaction with other software (1 (b), (d), (e)):", "hardware_and_deployment"
    )
    w.labelled("Instructions for use (1 (h)):", "instructions_for_use")


def _component_count(sbom: Mapping[str, Any]) -> Any:
    count = sbom.get("components", sbom.get("component_count"))
    return len(count) if isinstance(count, list) else count


def _development(w: _Writer) -> None:
    model = w.pol("model")
    if model:
        selection = model.get("selection") or {}
        w.para(
            f"**Methods and steps (2 (a)):** every candidate of the policy {w.sourced('policy')} is fitted on "
            f"the training rows with the seed {_g(w.pol('seed'))}; the hyperparameters of its grid are chosen by "
            f"{_g(selection.get('cv_folds'))}-fold stratified cross-validation on the training rows only (the "
            f"holdout and the production rows are never used), by {_code(selection.get('metric'))}. The candidates "
            "are then compared on the holdout and the policy's selection rule chooses one; scikit-learn provides "
            "the estimators, fairlearn the fairness definitions and the mitigation, SHAP the explanations."
        )
        rows = [
            [
                _code(name),
                _code(spec.get("estimator")),
                "yes" if spec.get("interpretable") else "no",
                _esc(_mapping_text(spec.get("params"))),
                _esc(_mapping_text(spec.get("grid"))),
            ]
            for name, spec in (model.get("candidates") or {}).items()
        ]
        w.add(*_table(["candidate", "estimator", "interpretable", "fixed parameters", "tuned over"], rows))
    else:
        w.para(f"**Methods and steps (2 (a)):** {NOT_AVAILABLE}.")
    record = w.ev.model_record
    if record is not None:
        w.para(
            f"**Design choices (2 (b)):** the registered model is candidate {_code(record.get('candidate'))} "
            f"(estimator {_code(record.get('estimator'))}, "
            f"{'interpretable' if record.get('interpretable') else 'not inherently interpretable'}), with "
            f"hyperparameters {_esc(_mapping_text(record.get('best_params')))} {w.sourced('model_record')}. "
            + w.features_line()
        )
    else:
        w.para(f"**Design choices (2 (b)):** the model record is {NOT_AVAILABLE}.")
    if model:
        w.para(
            f"A score at or above the decision threshold {_g(model.get('decision_threshold'))} gives the "
            f"favourable decision {_code(w.pol('data', 'positive_label'))} {w.sourced('policy')}. Protected "
            "attributes:"
        )
        w.add(*w.protected_lines(), "")
    _selection(w)
    w.para(
        "**Architecture (2 (c)):** Dagster assets in life-cycle order: the raw data is copied and versioned "
        "(DVC md5), checked against the data contract, split into training, holdout and production rows; the "
        "candidates are trained and compared, the chosen one is registered in MLflow, evaluated, its fairness "
        "and explanations computed; every gate re-derived from that evidence decides its promotion, signed with "
        "Ed25519; production batches are scored only by a verified champion and monitored. "
        f"Computational resources used for development: {NOT_AVAILABLE}."
    )
    w.para(f"**Pre-determined changes (2 (f)):** {w.retraining_line()}")
    record_hash = _get(_record(w.ev.promotion), "artifact_sha256")
    key = _get(_record(w.ev.promotion), "public_key")
    if record_hash and key:
        evidence_security = (
            f"the promotion record binds the model artifact (SHA-256 {_code(record_hash)}) and the evidence "
            f"hashes to the verdict, signed with Ed25519 (public key {_code(key)}) {w.sourced('promotion')}; "
            "scoring and monitoring refuse a model whose record or artifact does not verify. This bundle's "
            "manifest is signed and hash-chained to the previous version's."
        )
    else:
        evidence_security = f"the signed promotion record is {NOT_AVAILABLE}."
    w.para(f"**Cybersecurity (2 (h)):** from the evidence: {evidence_security}")
    w.labelled("Cybersecurity measures stated by the provider:", "cybersecurity")


def _mapping_text(value: Any) -> str:
    if not value:
        return "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    return str(value)


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _selection(w: _Writer) -> None:
    selection = w.ev.selection
    if selection is None:
        w.para(f"**Comparison with the more explainable alternative (2 (b)):** {NOT_AVAILABLE}.")
        return
    w.para(
        f"**Comparison with the more explainable alternative (2 (b)):** rule: {_esc(selection.get('rule', ''))}. "
        f"Chosen: {_code(selection.get('chosen')) if selection.get('chosen') else 'none'}. Justification: "
        f"{_esc(selection.get('justification', ''))} {w.sourced('selection')}."
    )
    rows = []
    for c in selection.get("candidates") or []:
        holdout = c.get("holdout") or {}
        gates = c.get("gates") or {}
        status = _esc(gates.get("status", "not available"))
        if gates.get("blocking"):
            status += ": " + "; ".join(_esc(b) for b in gates["blocking"])
        difference = c.get("difference_to_interpretable")
        gain = (
            f"{_f(difference.get('estimate'))} {_ci(difference)} vs {_code(difference.get('versus'))}"
            if difference
            else ""
        )
        rows.append(
            [
                _code(c.get("name"))
                + (w.optional_src(f"run:{c.get('name')}") or w.optional_src(f"run:{c.get('run_id')}")),
                "yes" if c.get("interpretable") else "no",
                "yes" if c.get("deployable") else f"no: {_esc(c.get('not_deployable_because', ''))}",
                _f(_get(c, "size", "parameters")),
                f"{_f(holdout.get('roc_auc'))} {_ci(_get(c, 'intervals', 'roc_auc'))}".strip(),
                f"{_f(holdout.get('accuracy'))} {_ci(_get(c, 'intervals', 'accuracy'))}".strip(),
                f"{_f(holdout.get('balanced_accuracy'))} {_ci(_get(c, 'intervals', 'balanced_accuracy'))}".strip(),
                _f(c.get("largest_fairness_gap")),
                status,
                gain,
            ]
        )
    header = [
        "candidate",
        "interpretable",
        "deployable",
        "parameters",
        "ROC AUC",
        "accuracy",
        "balanced accuracy",
        "largest fairness gap",
        "gates",
        "ROC AUC gain over the interpretable one",
    ]
    w.add(*_table(header, rows))
    for c in selection.get("candidates") or []:
        m = c.get("mitigation")
        if m:
            w.para(
                f"Mitigated alternative {_code(c.get('name'))}: fairlearn {_esc(m.get('method'))} "
                f"({_esc(m.get('constraint'))}) on {_code(m.get('attribute'))}, accuracy cost "
                f"{_f(m.get('accuracy_cost'))}, balanced accuracy cost {_f(m.get('balanced_accuracy_cost'))} "
                f"{w.sourced('selection')}."
            )


def _data_governance(w: _Writer) -> None:
    data = w.pol("data")
    if data:
        source = data.get("source") or {}
        where = f"file {_code(source.get('path'))}" if source.get("kind") == "file" else _code(source.get("kind"))
        w.para(
            f"**Source and provenance:** {where}; {_esc(data.get('description') or 'no description in the policy')} "
            f"{w.sourced('policy')}."
        )
    else:
        w.para(f"**Source and provenance:** {NOT_AVAILABLE}.")
    version = w.ev.data_version
    if version is None:
        w.para(f"**Data version:** {NOT_AVAILABLE}.")
    else:
        rows = []
        if _raw_md5(version):
            rows.append(["raw data (DVC md5)", _code(_raw_md5(version)), ""])
        for key, value in version.items():
            if (
                key not in ("raw_md5", "raw_data_md5", "splits", "layers")
                and isinstance(value, str | int | float)
                and not isinstance(value, bool)
            ):
                rows.append([_esc(key), _code(value), ""])
        for name, split in _splits(version).items():
            digest = split.get("sha256") or split.get("md5") or "not available"
            rows.append([_code(name), _code(digest), _f(split.get("rows"))])
        w.para(f"**Data version** {w.sourced('data_version')}:")
        w.add(*_table(["data", "hash", "rows"], rows))
    split = w.pol("split")
    if data and split:
        if data.get("time_column"):
            how = (
                f"rows with {_code(data['time_column'])} up to {_esc(data.get('training_cutoff'))} are split into "
                f"training and holdout ({_g(split.get('holdout_fraction'))} held out, "
                f"{'stratified by label' if split.get('stratify') else 'not stratified'}); later rows are "
                "production batches"
            )
        else:
            how = (
                f"a seeded split of all rows into training and holdout ({_g(split.get('holdout_fraction'))} held "
                "out); production batches come from the inbox only"
            )
        w.para(f"**Training, validation and testing data:** {how} {w.sourced('policy')}.")
    columns = (data or {}).get("columns") or {}
    if columns:
        rows = [
            [
                _code(name),
                _esc(spec.get("role")),
                _esc(spec.get("dtype") or ""),
                _esc(_contract(spec)),
                _usage(name, spec, data),
            ]
            for name, spec in columns.items()
        ]
        w.para(f"**Columns, roles and contract** {w.sourced('policy')}:")
        w.add(*_table(["column", "role", "type", "contract", "use"], rows))
        w.para(
            f"**Labelling:** the label is the recorded outcome {_code(data.get('target'))}; favourable: "
            f"{_code(data.get('positive_label'))}. **Quality requirements:** between "
            f"{_g(_get(data, 'row_count', 'min'))} and {_g(_get(data, 'row_count', 'max'))} rows, each label class "
            f"at least {_g(data.get('min_class_share'))} of the rows, each group of each protected attribute at "
            f"least {_g(data.get('min_group_size'))} rows {w.sourced('policy')}."
        )
    contract = w.ev.contract
    if contract is None:
        w.para(f"**Data contract validation:** {NOT_AVAILABLE}.")
    else:
        w.para(
            f"**Data contract validation:** {'passed' if contract.get('passed') else 'FAILED'}: "
            f"{_f(contract.get('rules_passed'))} of {_f(contract.get('rules_evaluated'))} rules passed on raw data "
            f"{_code(contract.get('raw_md5'))} under policy {_code(contract.get('policy_fingerprint'))} "
            f"{w.sourced('contract')}. Data that fails a critical rule never reaches training."
        )
    detector = w.ev.outlier_detector
    if detector is None:
        w.para(f"**Outlier detection:** {NOT_AVAILABLE}.")
    else:
        w.para(
            f"**Outlier detection:** an isolation forest fitted on {_f(detector.get('reference_rows'))} training "
            f"rows flags {_f(detector.get('reference_outlier_share'))} of them as outliers (calibrated to "
            f"{_f(detector.get('contamination'))}) {w.sourced('outlier_detector')}; production batches are "
            "compared with that share (section 9)."
        )


def _contract(spec: Mapping[str, Any]) -> str:
    parts = []
    if spec.get("allowed_values") is not None:
        parts.append("one of " + ", ".join(str(v) for v in spec["allowed_values"]))
    if spec.get("min") is not None or spec.get("max") is not None:
        parts.append(f"from {_plain(spec.get('min'))} to {_plain(spec.get('max'))}")
    if spec.get("min_date") or spec.get("max_date"):
        parts.append(f"dates from {spec.get('min_date')} to {spec.get('max_date')}")
    if spec.get("max_null_fraction"):
        parts.append(f"at most {_plain(spec['max_null_fraction'])} missing")
    if spec.get("fairness_bins"):
        parts.append(f"fairness groups at {_plain(spec['fairness_bins'])}")
    return "; ".join(parts)


def _usage(name: str, spec: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    role = spec.get("role")
    if role == "identifier":
        return "pseudonymized (keyed HMAC)" if spec.get("treatment") == "pseudonymize" else "dropped before validation"
    if role == "ignored":
        return "dropped"
    if role == "protected":
        return "model input and fairness analysis" if spec.get("use_as_feature") else "fairness analysis only"
    if role == "feature":
        return "model input"
    if role == "target":
        return "label"
    if role == "time":
        return "orders the rows (split and batches)"
    if role == "quasi_identifier":
        return "kept, never a model input"
    return ""


def _monitoring_and_control(w: _Writer) -> None:
    w.para(f"**Capabilities and limitations in performance:** {w.baseline_statement()} Details in section 5.")
    w.para("**Degrees of accuracy for specific groups of persons:**")
    w.group_table()
    small = w.small_groups()
    if small:
        w.para("Groups too small for their gaps to be compared: " + "; ".join(small) + ".")
    w.para("**Foreseeable unintended outcomes and sources of risk:** the provider's risk assessment (section 6):")
    w.para(w.statement("risk_assessment"))
    w.labelled("Human oversight measures (Art. 14, 2 (e)):", "human_oversight")
    w.para(
        "**Technical measures that help interpret the outputs (Art. 13 (3) (d)):** every decision comes with a "
        "score; the SHAP explainer attributes a score to the inputs."
    )
    w.explainer_lines()
    w.para(f"**Specifications on input data:** the columns and their contract are in section 3. {w.features_line()}")
    w.para(
        "**Control:** the registry alias `champion` is given only when every gate passed, with a signed "
        f"promotion record; consumers verify it before use. {w.promotion_line()}"
    )


def _performance(w: _Writer) -> None:
    evaluation = w.ev.evaluation
    rows = _f(_get(evaluation, "rows")) if evaluation else NOT_AVAILABLE
    w.para(
        f"**Validation and testing (2 (g)):** the model is tested on {rows} holdout rows, never used for training "
        "or tuning; ROC AUC intervals by DeLong's method, accuracy and fairness intervals by the bootstrap "
        f"{w.sourced('evaluation')}."
    )
    w.metrics_table()
    calibration = _get(evaluation, "calibration")
    if calibration:
        w.para(f"Calibration on the holdout (bins of the score) {w.sourced('evaluation')}:")
        rows_ = [[_f(b.get("mean_predicted")), _f(b.get("observed_rate"))] for b in calibration]
        w.add(*_table(["mean score", "observed favourable rate"], rows_))
    w.para("**Potentially discriminatory impacts (2 (g)):**")
    w.fairness_table()
    w.para(f"**Explainability:** {w.additivity_line()} The global importance is in section 4.")
    w.para("**Appropriateness of the performance metrics (point 4):**")
    metric = w.pol("model", "selection", "metric")
    positive = _get(evaluation, "positive_rate")
    majority = _get(evaluation, "majority_class_accuracy")
    if evaluation is not None and positive is not None and majority is not None:
        w.para(
            f"On the holdout {_f(positive)} of the people had the favourable outcome, so deciding the majority "
            f"label for everyone reaches an accuracy of {_f(majority)} {w.sourced('evaluation')}: accuracy alone "
            "does not show that the model decides well. The documentation therefore reports and gates ROC AUC (how "
            "well the scores rank people, independent of the threshold) and balanced accuracy (the mean of the "
            "recall of both classes) beside accuracy, and the Brier score and calibration error for the scores. "
            f"The model is chosen by {_code(metric) if metric else NOT_AVAILABLE} {w.sourced('policy')}. Fairness "
            "is measured as gaps in favourable-decision rates (demographic parity), in error rates (equalized "
            "odds) and as the ratio of favourable-decision rates (the four-fifths rule), each against the policy's "
            "limit."
        )
    else:
        w.para(f"The class balance of the holdout is {NOT_AVAILABLE}.")
    w.para("**Limits:**")
    limits = [w.baseline_statement()]
    small = w.small_groups()
    if small:
        limits.append("Groups too small for their gaps to be compared: " + "; ".join(small) + ".")
    if w.ev.fairness is not None:
        limits.append(
            "The fairness intervals above are wide where groups are small; a gap within the limit whose interval "
            "crosses it is not shown to be within it."
        )
    w.add(*(f"- {line}" for line in limits), "")


def _risk_management(w: _Writer) -> None:
    w.para("**Risk assessment of the provider (Art. 9):**")
    w.para(w.statement("risk_assessment"))
    w.para("**Gates applied to this version, from the evidence:**")
    rows = []
    contract = w.ev.contract
    rows.append(
        [
            "data contract",
            ("passed" if contract.get("passed") else "failed") if contract else NOT_AVAILABLE,
            f"{_f(contract.get('rules_passed'))} of {_f(contract.get('rules_evaluated'))} rules passed"
            if contract
            else "",
            w.src("contract") if contract else "",
        ]
    )
    chosen = _chosen_candidate(w.ev.selection)
    rows.append(
        [
            "selection (every gate on the holdout)",
            _esc(_get(chosen, "gates", "status") or NOT_AVAILABLE),
            _esc("; ".join(_get(chosen, "gates", "blocking") or []) or f"chosen: {_get(w.ev.selection, 'chosen')}")
            if w.ev.selection
            else "",
            w.src("selection") if w.ev.selection else "",
        ]
    )
    for label, item, key in (("evaluation", w.ev.evaluation, "evaluation"), ("fairness", w.ev.fairness, "fairness")):
        gate = _get(item, "gate") or {}
        rows.append(
            [
                label,
                _esc(gate.get("status") or NOT_AVAILABLE),
                _esc(gate.get("verdict") or ""),
                w.src(key) if item else "",
            ]
        )
    explainer = w.ev.explainer
    limit = w.pol("gates", "explainability", "max_additivity_error")
    error = _get(explainer, "additivity_error")
    if isinstance(error, int | float) and isinstance(limit, int | float):
        status = "passed" if error <= limit else "failed"
        detail = f"additivity error {_f(error)}, maximum {_g(limit)}"
    else:
        status, detail = NOT_AVAILABLE, ""
    rows.append(["explanations add up", status, detail, w.src("explainer") if explainer else ""])
    promotion = w.ev.promotion
    rows.append(
        [
            "promotion (every gate, and no worse than the champion)",
            ("promoted" if promotion.get("promoted") else "not promoted") if promotion else NOT_AVAILABLE,
            _esc(promotion.get("verdict") or "") if promotion else "",
            w.src("promotion") if promotion else "",
        ]
    )
    if w.ev.monitoring:
        alarmed = [b for b in w.ev.monitoring if b.get("alarms")]
        rows.append(
            [
                "production monitoring",
                f"alarms on {len(alarmed)} of {len(w.ev.monitoring)} batches",
                "; ".join(f"{_esc(b.get('batch'))}: {', '.join(_esc(a) for a in b['alarms'])}" for b in alarmed),
                "section 9",
            ]
        )
    w.add(*_table(["gate", "result", "detail", "source"], rows))
    waivers = w.pol("waivers")
    if waivers is None:
        w.para(f"Waivers: {NOT_AVAILABLE}.")
    elif not waivers:
        w.para(f"Waivers in the policy: none {w.sourced('policy')}.")
    else:
        w.para(f"Waivers in the policy {w.sourced('policy')}:")
        w.add(
            *(
                f"- {_esc(x.get('gate'))} / {_code(x.get('metric'))}"
                + (f" / {_esc(x['attribute'])}" if x.get("attribute") else "")
                + (f" up to {_g(x['up_to'])}" if x.get("up_to") is not None else "")
                + f": approved by {_esc(x.get('approved_by'))} on {_esc(x.get('approved_on'))}, expires "
                f"{_esc(x.get('expires'))}; {_esc(x.get('reason'))}"
                for x in waivers
            ),
            "",
        )


def _chosen_candidate(selection: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    chosen = _get(selection, "chosen")
    return next((c for c in _get(selection, "candidates") or [] if c.get("name") == chosen), None)


def _changes(w: _Writer) -> None:
    meta = w.ev.meta
    record = w.ev.model_record
    w.para(f"**This version:** {w.version_line()}")
    lineage = []
    if meta.get("git_commit"):
        lineage.append(f"code {_code(meta['git_commit'])}")
    if meta.get("policy_fingerprint"):
        lineage.append(f"policy {_code(meta['policy_fingerprint'])}")
    raw = _raw_md5(w.ev.data_version) or _get(record, "raw_data_md5")
    if raw:
        lineage.append(f"raw data {_code(raw)}")
    w.para("Produced by " + (", ".join(lineage) if lineage else NOT_AVAILABLE) + ".")
    w.para(f"**Previous versions:** {w.previous_champion_line()} {w.promotion_line()}")
    if "previous_manifest_sha256" in meta:
        previous = meta["previous_manifest_sha256"]
        chain = (
            f"this bundle's manifest records the SHA-256 of the previous version's manifest, {_code(previous)}; "
            "`mlcomops audit verify` checks the whole chain"
            if previous
            else "this is the first version of the chain of audit bundles"
        )
    else:
        chain = (
            f"this bundle's {w.manifest()} records the SHA-256 of the previous version's manifest "
            "(`previous_manifest_sha256`, null for the first version); `mlcomops audit verify` checks the chain"
        )
    w.para(f"**Version chain:** {chain}.")
    w.labelled("Changes recorded by the provider:", "changes_log")
    w.para(f"**Pre-determined changes:** {w.retraining_line()}")


def _standards(w: _Writer) -> None:
    w.labelled("Standards and specifications applied (point 7):", "standards_applied")
    w.para("**Requirements checked from the evidence (compliance matrix):**")
    rows_in = w.ev.compliance
    if not rows_in:
        w.para(NOT_AVAILABLE + ".")
    else:
        rows = [
            [
                _esc(r.get("id", "")),
                _esc(r.get("framework", "")),
                _esc(r.get("reference", "")),
                _esc(r.get("title", "")),
                _esc(r.get("status", "")),
                _esc(r.get("detail", "")),
            ]
            for r in rows_in
        ]
        w.para(f"Source: {w.src('compliance')}.")
        w.add(*_table(["id", "framework", "reference", "requirement", "status", "detail"], rows))
    w.add("### EU declaration of conformity (point 8)", "")
    w.para(
        "The pipeline does not issue an EU declaration of conformity (Art. 47): the provider draws it up and "
        "signs it. Reference given by the provider:"
    )
    w.para(w.statement("declaration_of_conformity"))


def _post_market(w: _Writer) -> None:
    w.para(
        "**Automated monitoring of each production batch** (data drift against the training data, drift of the "
        "scores and of the favourable-decision rate against the holdout, outliers, and on labeled rows "
        "performance and fairness):"
    )
    w.batch_table()
    monitoring = w.pol("monitoring")
    drift = w.pol("gates", "drift")
    if monitoring and drift:
        w.para(
            f"Alarm thresholds {w.sourced('policy')}: data drift when more than {_g(drift.get('drift_share'))} of "
            f"the columns drift ({_code(drift.get('num_method'))} for numbers, {_code(drift.get('cat_method'))} for "
            f"categories, column threshold {_g(drift.get('column_threshold'))}); score KS above "
            f"{_g(monitoring.get('max_score_ks'))} or a favourable-rate change above "
            f"{_g(monitoring.get('max_positive_rate_change'))}; an outlier share above "
            f"{_g(monitoring.get('max_outlier_share'))}; fairness gaps on labeled rows beyond the fairness gate's "
            "limits."
        )
    else:
        w.para(f"Alarm thresholds: {NOT_AVAILABLE}.")
    w.para(w.retraining_line())
    w.labelled("Post-market monitoring plan of the provider (Art. 72 (3)):", "post_market_monitoring_plan")


_ANNEX_IV_BODIES = (
    _general_description,
    _development,
    _data_governance,
    _monitoring_and_control,
    _performance,
    _risk_management,
    _changes,
    _standards,
    _post_market,
)


# --- the model card (Mitchell et al.) ----------------------------------------------------------------


def model_card_markdown(evidence: Evidence, folder: str = DOCUMENT_FOLDER) -> str:
    """The model card of ``evidence``'s model version (after Mitchell et al., 2019), as Markdown whose
    links are relative to ``folder``."""
    w = _Writer(evidence, folder)
    w.header(f"Model card: {w.name} v{w.version}", "Model card")
    w.open_items()
    for title, body in zip(MODEL_CARD_SECTIONS, _CARD_BODIES, strict=True):
        w.add(f"## {title}", "")
        body(w)
    w.sources()
    return w.text()


def _card_details(w: _Writer) -> None:
    record = w.ev.model_record
    w.labelled("Provider:", "provider")
    w.para(w.version_line())
    if record is not None:
        w.para(
            f"Type: {_code(record.get('estimator'))} "
            f"({'interpretable' if record.get('interpretable') else 'not inherently interpretable'}), "
            f"hyperparameters {_esc(_mapping_text(record.get('best_params')))}, binary classifier of "
            f"{_code(w.pol('data', 'target') or NOT_AVAILABLE)} {w.sourced('model_record')}. {w.features_line()}"
        )
        if record.get("selection_justification"):
            w.para(f"Why this model: {_esc(record['selection_justification'])} {w.sourced('model_record')}.")
    commit = w.ev.meta.get("git_commit")
    w.para(f"Code: git commit {_code(commit)}." if commit else f"Code version: {NOT_AVAILABLE}.")
    w.para(w.promotion_line())


def _card_intended_use(w: _Writer) -> None:
    w.labelled("Primary intended uses:", "intended_purpose")
    w.labelled("Primary intended users:", "deployers")
    w.labelled("Persons it is used on:", "affected_persons")
    w.labelled("Out-of-scope uses:", "out_of_scope_uses")


def _card_factors(w: _Writer) -> None:
    columns = w.pol("data", "columns")
    if columns is None:
        w.para(f"Relevant factors: {NOT_AVAILABLE}.")
        return
    w.para(f"Relevant factors: the protected attributes of the policy {w.sourced('policy')}:")
    w.add(*w.protected_lines(), "")
    intersections = w.pol("gates", "fairness", "intersections") or []
    if intersections:
        w.para(
            "Evaluated also in combination: "
            + "; ".join(" x ".join(_code(a) for a in combo) for combo in intersections)
            + "."
        )
    groups = []
    for analysis, figures in (_get(w.ev.fairness, "attributes") or {}).items():
        names = [_esc(g.get("group")) for g in figures.get("groups") or []]
        groups.append(f"- {_esc(analysis, block=True)}: {', '.join(names)}")
    if groups:
        w.para(f"Evaluation factors: the groups of the fairness report {w.sourced('fairness')}:")
        w.add(*groups, "")


def _card_metrics(w: _Writer) -> None:
    selection = w.pol("model", "selection") or {}
    threshold = w.pol("model", "decision_threshold")
    w.para(
        f"Model selection by {_code(selection.get('metric') or NOT_AVAILABLE)} on the holdout; a less "
        f"explainable candidate must beat the best interpretable one by {_g(selection.get('min_gain_for_complexity'))} "
        f"{w.sourced('policy')}. Decision threshold {_g(threshold)}. Gated: ROC AUC, accuracy and balanced accuracy "
        "(minimums), demographic parity difference, equalized odds difference and the selection-rate ratio "
        "(limits). Variation: DeLong intervals for ROC AUC, bootstrap intervals for accuracy and the fairness gaps."
    )


def _card_evaluation_data(w: _Writer) -> None:
    w.para(
        f"The holdout: {_f(_get(w.ev.evaluation, 'rows')) if w.ev.evaluation else NOT_AVAILABLE} rows "
        f"{w.sourced('evaluation')}, never used for training or tuning; then every production batch "
        "(section Quantitative analyses). Hashes and rows of every split:"
    )
    _splits_table(w)


def _splits_table(w: _Writer) -> None:
    splits = _splits(w.ev.data_version)
    if not splits:
        w.para(NOT_AVAILABLE + ".")
        return
    rows = [
        [_code(name), _code(s.get("sha256") or s.get("md5") or "not available"), _f(s.get("rows"))]
        for name, s in splits.items()
    ]
    w.para(f"Source: {w.src('data_version')}.")
    w.add(*_table(["data", "hash", "rows"], rows))


def _card_training_data(w: _Writer) -> None:
    data = w.pol("data")
    if not data:
        w.para(f"Training data: {NOT_AVAILABLE}.")
        return
    cutoff = (
        f"rows with {_code(data['time_column'])} up to {_esc(data.get('training_cutoff'))}"
        if data.get("time_column")
        else "a seeded split of all rows"
    )
    raw = _raw_md5(w.ev.data_version) or _get(w.ev.model_record, "raw_data_md5")
    w.para(
        f"Dataset {_code(data.get('name'))}: {_esc(data.get('description') or '')} Training rows: {cutoff}, less "
        f"the holdout {w.sourced('policy')}. Raw data version (DVC md5): "
        f"{_code(raw) if raw else NOT_AVAILABLE}. Legal basis: {_esc(data.get('legal_basis') or '')}."
    )
    contract = w.ev.contract
    if contract is not None:
        w.para(
            f"Data contract: {'passed' if contract.get('passed') else 'FAILED'}, {_f(contract.get('rules_passed'))} "
            f"of {_f(contract.get('rules_evaluated'))} rules {w.sourced('contract')}."
        )
    else:
        w.para(f"Data contract: {NOT_AVAILABLE}.")


def _card_quantitative(w: _Writer) -> None:
    w.add("### Unitary results (holdout)", "")
    w.metrics_table()
    w.add("### Intersectional results (holdout)", "")
    w.fairness_table()
    w.group_table()
    w.add("### Production batches", "")
    w.batch_table()


def _card_ethics(w: _Writer) -> None:
    w.para("Risks and their mitigations, as assessed by the provider:")
    w.para(w.statement("risk_assessment"))
    w.labelled("Human oversight:", "human_oversight")
    data = w.pol("data")
    if data:
        w.para(
            f"Personal data: purpose of the processing: {_esc(data.get('purpose') or '')} Legal basis: "
            f"{_esc(data.get('legal_basis') or '')} {w.sourced('policy')}."
        )
    w.para("Protected attributes:")
    w.add(*w.protected_lines(), "")


def _card_caveats(w: _Writer) -> None:
    w.add(f"- {w.baseline_statement()}")
    small = w.small_groups()
    if small:
        w.add("- Groups too small for their gaps to be compared: " + "; ".join(small) + ".")
    w.add(
        "- Not evaluated outside the data described under Training data; " + "uses out of scope are listed above.", ""
    )
    w.labelled("Instructions for use:", "instructions_for_use")
    if w.open:
        w.para("Provider statements still open: " + ", ".join(f"`{k}`" for k in w.open) + ".")


_CARD_BODIES = (
    _card_details,
    _card_intended_use,
    _card_factors,
    _card_metrics,
    _card_evaluation_data,
    _card_training_data,
    _card_quantitative,
    _card_ethics,
    _card_caveats,
)


# --- HTML ----------------------------------------------------------------------------------------------

CSP = "default-src 'none'; style-src 'unsafe-inline'"
_STYLE = """
body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eee}
code{background:#f4f4f4;padding:0 .2rem;font-size:.85em;word-break:break-all}
h2{border-bottom:1px solid #ccc;margin-top:2rem}
"""
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _relative_link(url: str) -> bool:
    """Only links inside the bundle: no scheme, no host, no absolute path."""
    return not (_SCHEME.match(url) or url.startswith(("/", "\\")))


def render_html(markdown_text: str, title: str) -> str:
    """A self-contained HTML page for a Markdown document: inline style, no script, no external
    reference, a Content-Security-Policy that forbids loading anything; raw HTML in the source is
    escaped and any link that leaves the bundle (a scheme, a host, an absolute path) stays text."""
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    renderer.validateLink = _relative_link
    body = renderer.render(markdown_text)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n{body}</body></html>\n"
    )


def render_documents(evidence: Evidence, folder: str = DOCUMENT_FOLDER) -> dict[str, str]:
    """Both documents in both forms, by file name (``annex_iv.md``, ``annex_iv.html``, ``model_card.md``,
    ``model_card.html``), their links relative to ``folder``, where they are meant to be written."""
    name = f"{evidence.meta.get('registered_model', 'model')} v{evidence.meta.get('version', '?')}"
    annex = annex_iv_markdown(evidence, folder)
    card = model_card_markdown(evidence, folder)
    return {
        f"{ANNEX_IV}.md": annex,
        f"{ANNEX_IV}.html": render_html(annex, f"Technical documentation (EU AI Act Annex IV): {name}"),
        f"{MODEL_CARD}.md": card,
        f"{MODEL_CARD}.html": render_html(card, f"Model card: {name}"),
    }
