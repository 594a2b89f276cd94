"""The compliance matrix: each requirement of a versioned list, evaluated against the evidence that serves it.

The requirements (``mlcomops_assets/compliance/requirements.yaml``) are data: an id, the framework (EU AI
Act, GDPR, DSK, BaFin), the article or principle, a title, the requirement in a sentence or two, and the
evidence that serves it, named by id:

- ``asset:<asset key>``: the asset's latest materialization;
- ``check:<asset key>:<check name>``: the check's latest evaluation. The check name may hold ``*`` to
  stand for every check of that asset it matches (``check:raw_data:*`` is the whole data contract,
  whose check names depend on the policy's columns).

A requirement the project cannot evidence has ``not_covered: <reason>`` instead of evidence; one it
evidences only in part keeps its evidence and says what lies outside in ``partial``.

Each piece of evidence is observed (``compliance_evidence.observe`` reads the Dagster instance) as
``passed``, ``failed``, ``waived`` (passed only under a waiver: by whom, until when), ``not_evaluated``
(the figure could not be measured) or ``missing`` (never materialized, never evaluated). A requirement
is then:

- ``failed`` when any of its evidence failed;
- else ``not evaluated`` when any is not evaluated or missing: nothing is satisfied without an
  observation;
- else ``waived`` when any passed only under a waiver (the waivers' approvers and earliest expiry);
- else ``satisfied``;
- ``not covered`` when it has no evidence, with the reason.

Pure: no Dagster, no MLflow (``lib/`` layering); the readers of check and asset metadata are here
(:func:`check_observation`, :func:`asset_observation`) so they are tested without an instance.
"""

from __future__ import annotations

import fnmatch
import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

SCHEMA = "mlcomops.compliance-matrix/1"
FRAMEWORKS = ("EU AI Act", "GDPR", "DSK", "BaFin")
ASSET_PREFIX = "asset:"
CHECK_PREFIX = "check:"
# A Dagster asset key as a user string (``a/b`` for a key with two parts) and a check name; ``*`` is
# allowed in the check name only.
_KEY = r"[A-Za-z0-9_]+(?:/[A-Za-z0-9_]+)*"
_EVIDENCE_ID = re.compile(rf"^(?:asset:{_KEY}|check:{_KEY}:[A-Za-z0-9_*]+)$")
_REQUIREMENT_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ROW_KEYS = {"id", "framework", "reference", "title", "requirement", "evidence", "not_covered", "partial"}
_FILE_KEYS = {"requirements", "sources"}
# Long check verdicts (every analysis of a fairness gate) are cut here in a row's detail.
MAX_DETAIL = 600


class RequirementsError(ValueError):
    """The requirements file is unreadable or invalid; the message names every problem and its row."""


class EvidenceStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    WAIVED = "waived"  # passed only because a waiver in force covers a violation
    NOT_EVALUATED = "not_evaluated"  # evaluated, but the figure could not be measured
    MISSING = "missing"  # never materialized, never evaluated (or only planned)


class RowStatus(StrEnum):
    SATISFIED = "satisfied"
    WAIVED = "waived"
    FAILED = "failed"
    NOT_EVALUATED = "not evaluated"
    NOT_COVERED = "not covered"


@dataclass(frozen=True)
class Requirement:
    """One row of the requirements file."""

    id: str
    framework: str
    reference: str
    title: str
    requirement: str
    evidence: tuple[str, ...] = ()
    not_covered: str | None = None  # why the project cannot evidence it (then there is no evidence)
    partial: str | None = None  # what lies outside the project, for a requirement evidenced in part


@dataclass(frozen=True)
class Observation:
    """What the latest materialization or check evaluation says about one piece of evidence."""

    status: EvidenceStatus
    detail: str = ""  # the check's verdict (its figure and limit, where it has them), or the materialization
    waived_by: str | None = None
    waived_until: str | None = None  # ISO date: the earliest expiry of the waivers it relies on
    when: str | None = None  # ISO timestamp (UTC) of the materialization or evaluation
    run_id: str | None = None
    partition: str | None = None  # the partition (production batch) it is about, if any

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", EvidenceStatus(self.status))


@dataclass(frozen=True)
class EvidenceResult:
    """One piece of a requirement's evidence as evaluated: a pattern id reports the checks it matched."""

    id: str
    status: EvidenceStatus
    detail: str
    when: str | None = None
    run_id: str | None = None
    partition: str | None = None
    waived_by: str | None = None
    waived_until: str | None = None
    matched: tuple[str, ...] = ()  # for an id with ``*``: the concrete ids it stands for


@dataclass(frozen=True)
class MatrixRow:
    """A requirement with its status, the reason in words, and the status of each piece of evidence."""

    id: str
    framework: str
    reference: str
    title: str
    requirement: str
    status: RowStatus
    detail: str
    evidence: tuple[EvidenceResult, ...] = ()
    not_covered: str | None = None
    partial: str | None = None
    waived_by: str | None = None
    waived_until: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the requirements file ---------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (the second would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read(path: Path | str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RequirementsError(f"{path}: cannot read the requirements: {exc}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise RequirementsError(f"{path}: not valid YAML: {exc}") from None


def load_requirements(path: Path | str) -> list[Requirement]:
    """The requirements of ``path``, validated; every problem is reported at once, naming its row."""
    return parse_requirements(_read(path), source=str(path))


def load_sources(path: Path | str) -> dict[str, str]:
    """The ``sources`` section of ``path``: the document each framework's references point into."""
    data = _read(path)
    sources = data.get("sources", {}) if isinstance(data, dict) else {}
    return {str(k): str(v) for k, v in sources.items()} if isinstance(sources, dict) else {}


def is_pattern(evidence_id: str) -> bool:
    return "*" in evidence_id


def _text_field(row: Mapping[str, Any], key: str, where: str, errors: list[str], required: bool = True) -> str | None:
    value = row.get(key)
    if value is None:
        if required:
            errors.append(f"{where}: '{key}' is missing")
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{where}: '{key}' must be non-empty text, got {value!r}")
        return None
    return " ".join(value.split())


def parse_requirements(data: Any, source: str = "requirements") -> list[Requirement]:
    """Requirements from the parsed file (``{"requirements": [...], "sources": {...}}``), validated: known
    keys, unique ids, known frameworks, well-formed evidence ids, and either evidence or ``not_covered``."""
    errors: list[str] = []
    if not isinstance(data, dict):
        raise RequirementsError(f"{source} is invalid:\n  - the file must be a mapping with a 'requirements' list")
    for key in sorted(set(data) - _FILE_KEYS, key=str):
        errors.append(f"unknown top-level key {key!r} (known: {', '.join(sorted(_FILE_KEYS))})")
    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        errors.append("'sources' must map a framework to the document it cites")
    else:
        errors += [
            f"sources: unknown framework {k!r} (known: {', '.join(FRAMEWORKS)})" for k in sources if k not in FRAMEWORKS
        ]
    rows = data.get("requirements")
    if not isinstance(rows, list) or not rows:
        errors.append("'requirements' must be a non-empty list")
        rows = []
    requirements: list[Requirement] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        where = f"requirements[{index}]"
        if not isinstance(row, dict):
            errors.append(f"{where}: each requirement must be a mapping, got {type(row).__name__}")
            continue
        raw_id = row.get("id")
        where += f" (id {raw_id!r})" if raw_id is not None else ""
        problems: list[str] = []
        problems += [
            f"{where}: unknown key {k!r} (known: {', '.join(sorted(_ROW_KEYS))})"
            for k in sorted(set(row) - _ROW_KEYS, key=str)
        ]
        rid = _text_field(row, "id", where, problems)
        if rid is not None:
            if not _REQUIREMENT_ID.match(rid):
                problems.append(f"{where}: id must be lower-case words joined by '-' (e.g. euaia-art10)")
            elif rid in seen:
                problems.append(f"{where}: id {rid!r} is already used by requirements[{seen[rid]}]")
            else:
                seen[rid] = index
        framework = _text_field(row, "framework", where, problems)
        if framework is not None and framework not in FRAMEWORKS:
            problems.append(f"{where}: unknown framework {framework!r} (known: {', '.join(FRAMEWORKS)})")
        reference = _text_field(row, "reference", where, problems)
        title = _text_field(row, "title", where, problems)
        text = _text_field(row, "requirement", where, problems)
        not_covered = _text_field(row, "not_covered", where, problems, required=False)
        partial = _text_field(row, "partial", where, problems, required=False)
        evidence = row.get("evidence")
        ids: list[str] = []
        if evidence is not None:
            if not isinstance(evidence, list) or not evidence:
                problems.append(f"{where}: 'evidence' must be a non-empty list of evidence ids")
            else:
                for item in evidence:
                    if not isinstance(item, str) or not _EVIDENCE_ID.match(item):
                        problems.append(
                            f"{where}: evidence {item!r} is not 'asset:<asset key>' or "
                            "'check:<asset key>:<check name>' ('*' allowed in the check name)"
                        )
                    elif item in ids:
                        problems.append(f"{where}: evidence {item!r} is listed twice")
                    else:
                        ids.append(item)
        if evidence is None and "not_covered" not in row:
            problems.append(f"{where}: needs 'evidence' (what serves it) or 'not_covered' (why the project cannot)")
        if evidence is not None and "not_covered" in row:
            problems.append(
                f"{where}: has both 'evidence' and 'not_covered'; for a requirement covered in part keep the "
                "evidence and say what lies outside in 'partial'"
            )
        if "partial" in row and evidence is None:
            problems.append(f"{where}: 'partial' qualifies evidence; a requirement without evidence is 'not_covered'")
        errors += problems
        if not problems:
            requirements.append(
                Requirement(
                    id=rid,  # type: ignore[arg-type]  (validated above)
                    framework=framework,  # type: ignore[arg-type]
                    reference=reference,  # type: ignore[arg-type]
                    title=title,  # type: ignore[arg-type]
                    requirement=text,  # type: ignore[arg-type]
                    evidence=tuple(ids),
                    not_covered=not_covered,
                    partial=partial,
                )
            )
    if errors:
        raise RequirementsError(f"{source} is invalid:\n  - " + "\n  - ".join(errors))
    return requirements


def evidence_ids(requirements: Iterable[Requirement]) -> list[str]:
    """Every evidence id the requirements name (patterns included), once each, in file order."""
    return list(dict.fromkeys(e for r in requirements for e in r.evidence))


def matches(pattern: str, known_ids: Iterable[str]) -> list[str]:
    """The ids of ``known_ids`` that ``pattern`` stands for (itself, for an id without ``*``), sorted."""
    if not is_pattern(pattern):
        return [pattern] if pattern in set(known_ids) else []
    return sorted(k for k in known_ids if fnmatch.fnmatchcase(k, pattern))


def expand(ids: Iterable[str], known_ids: Iterable[str]) -> list[str]:
    """``ids`` with each pattern replaced by the known ids it matches; concrete ids are kept as they are."""
    known = list(known_ids)
    out: list[str] = []
    for evidence_id in ids:
        out += matches(evidence_id, known) if is_pattern(evidence_id) else [evidence_id]
    return list(dict.fromkeys(out))


def unknown_evidence(requirements: Iterable[Requirement], known_ids: Iterable[str]) -> list[str]:
    """The evidence ids (or patterns) that name nothing in ``known_ids``, once each, in file order."""
    known = set(known_ids)
    return [e for e in evidence_ids(requirements) if not matches(e, known)]


# --- reading evidence --------------------------------------------------------------------------------

# "... waived by <who> [on <date>] until <date>", as lib/gates.py words every waiver.
_WAIVER = re.compile(r"waived by (?P<by>.+?) (?:on \d{4}-\d{2}-\d{2} )?until (?P<until>\d{4}-\d{2}-\d{2})")
# A verdict of something that could not be measured, read from its start so that a measured failure or a
# waiver that merely mentions an unmeasured analysis is not mistaken for one: lib/gates.py ("sex: not
# evaluated: ..."), the leakage checks ("not evaluated: ..."), the contract on an unreadable file ("FAILED
# rule 'x': not evaluated, ..."), batch fairness without labels ("no labels in this batch: ... not assessable").
_NOT_EVALUATED = re.compile(
    r"^(?:FAILED rule '[^']*': )?(?:[\w .-]+: )?not evaluated\b|^no labels in this batch\b.*\bnot assessable\b",
    re.IGNORECASE,
)
_NO_WAIVER = {"", "(none)", "none", "[]"}


def parse_waivers(text: str | None) -> list[tuple[str, str]]:
    """(approved by, expires) of each waiver named in ``text``, in order."""
    return [(m.group("by").strip(), m.group("until")) for m in _WAIVER.finditer(text or "")]


def _waiver_fields(waivers: Sequence[tuple[str, str]]) -> tuple[str | None, str | None]:
    if not waivers:
        return None, None
    by = ", ".join(dict.fromkeys(b for b, _ in waivers))
    return by, min(u for _, u in waivers)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return str(value).strip()


def _cut(text: str, limit: int = MAX_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def check_observation(
    passed: bool,
    metadata: Mapping[str, Any] | None = None,
    description: str | None = None,
    *,
    severity: str | None = None,
    when: str | None = None,
    run_id: str | None = None,
    partition: str | None = None,
    note: str | None = None,
) -> Observation:
    """The observation of one check evaluation (its metadata as plain values).

    The check's own ``status`` metadata decides when present (passed, waived, failed, not evaluated, as
    ``mlcomops_assets/check_metadata.py`` writes it; a failing check is never read as passed). Without it:
    ``evaluated: False`` or a verdict that opens by saying "not evaluated" is not evaluated; a passing
    check whose verdict says "passed only under waivers" or whose ``waived`` metadata names a waiver is
    waived. The detail is the ``verdict`` metadata, else the description, marked "(warning)" for a failed
    check of WARN severity; ``batch`` metadata names the partition when Dagster recorded none."""
    metadata = metadata or {}
    status_text = _text(metadata.get("status")).lower().replace("_", " ")
    verdict = _text(metadata.get("verdict")) or (description or "").strip()
    waived_text = _text(metadata.get("waived"))
    not_measured = metadata.get("evaluated") is False or bool(_NOT_EVALUATED.match(verdict))
    if status_text:
        if status_text == "not evaluated":
            status = EvidenceStatus.NOT_EVALUATED
        elif not passed:
            status = EvidenceStatus.FAILED
        elif status_text == "waived":
            status = EvidenceStatus.WAIVED
        elif status_text == "failed":  # a passing check that says it failed: a warning that still passes
            status = EvidenceStatus.FAILED
        else:
            status = EvidenceStatus.PASSED
    elif not_measured:
        status = EvidenceStatus.NOT_EVALUATED
    elif not passed:
        status = EvidenceStatus.FAILED
    elif verdict.lower().startswith("passed only under waivers") or waived_text.lower() not in _NO_WAIVER:
        status = EvidenceStatus.WAIVED
    else:
        status = EvidenceStatus.PASSED
    waivers = (parse_waivers(waived_text) or parse_waivers(verdict)) if status == EvidenceStatus.WAIVED else []
    by, until = _waiver_fields(waivers)
    if status == EvidenceStatus.WAIVED and not waivers and waived_text.lower() not in _NO_WAIVER:
        by = waived_text  # a waiver text that does not follow the usual wording: shown as it is
    detail = verdict or ("passed" if passed else "failed")
    if status == EvidenceStatus.WAIVED and waived_text.lower() not in _NO_WAIVER and waived_text not in detail:
        detail += f" (waived: {waived_text})"
    if status == EvidenceStatus.FAILED and (severity or "").upper() == "WARN":
        detail = f"(warning) {detail}"
    if note:
        detail += f" [{note}]"
    batch = _text(metadata.get("batch"))
    return Observation(
        status=status,
        detail=_cut(detail),
        waived_by=by,
        waived_until=until,
        when=when,
        run_id=run_id,
        partition=partition or batch or None,
    )


def asset_observation(
    metadata: Mapping[str, Any] | None = None,
    *,
    when: str | None = None,
    run_id: str | None = None,
    partition: str | None = None,
    note: str | None = None,
) -> Observation:
    """The observation of an asset's latest materialization: it exists, so it passed, unless its metadata
    records waivers it relies on (``waivers`` or ``waived``, as ``champion_model`` does), then waived.

    Nothing else of the metadata is interpreted: an asset is materialized only when its blocking checks
    passed (``publish_gate``), and what a check decided is read from the check itself."""
    metadata = metadata or {}
    waived_text = "; ".join(
        t for t in (_text(metadata.get("waivers")), _text(metadata.get("waived"))) if t.lower() not in _NO_WAIVER
    )
    where = f" (partition {partition})" if partition else ""
    detail = f"materialized{where}" + (f" at {when}" if when else "") + (f" in run {run_id[:8]}" if run_id else "")
    status = EvidenceStatus.PASSED
    by = until = None
    if waived_text:
        status = EvidenceStatus.WAIVED
        by, until = _waiver_fields(parse_waivers(waived_text))
        by = by or waived_text
        detail += f"; relies on waivers: {waived_text}"
    if note:
        detail += f" [{note}]"
    return Observation(
        status=status,
        detail=_cut(detail),
        waived_by=by,
        waived_until=until,
        when=when,
        run_id=run_id,
        partition=partition,
    )


# --- evaluating the matrix ---------------------------------------------------------------------------

_MISSING_OBSERVATION = "no observation: never materialized or evaluated"
# Which evidence outcome decides a pattern's aggregate (first present wins).
_EVIDENCE_ORDER = (
    EvidenceStatus.FAILED,
    EvidenceStatus.NOT_EVALUATED,
    EvidenceStatus.MISSING,
    EvidenceStatus.WAIVED,
    EvidenceStatus.PASSED,
)


def _single(evidence_id: str, observation: Observation | None) -> EvidenceResult:
    if observation is None:
        return EvidenceResult(evidence_id, EvidenceStatus.MISSING, _MISSING_OBSERVATION)
    return EvidenceResult(
        evidence_id,
        observation.status,
        observation.detail,
        observation.when,
        observation.run_id,
        observation.partition,
        observation.waived_by,
        observation.waived_until,
    )


def _pattern(pattern: str, observations: Mapping[str, Observation]) -> EvidenceResult:
    matched = matches(pattern, observations)
    if not matched:
        return EvidenceResult(pattern, EvidenceStatus.MISSING, "no observed check matches this pattern")
    parts = [_single(m, observations[m]) for m in matched]
    status = next(s for s in _EVIDENCE_ORDER if any(p.status == s for p in parts))
    tally = ", ".join(
        f"{sum(p.status == s for p in parts)} {s.value}" for s in _EVIDENCE_ORDER if any(p.status == s for p in parts)
    )
    notable = [p for p in parts if p.status != EvidenceStatus.PASSED]
    shown = "; ".join(f"{p.id.rsplit(':', 1)[-1]}: {p.detail}" for p in notable[:3])
    more = f"; and {len(notable) - 3} more" if len(notable) > 3 else ""
    detail = f"{len(parts)} checks: {tally}" + (f" ({shown}{more})" if shown else "")
    latest = max(parts, key=lambda p: p.when or "")
    by, until = _waiver_fields(
        [(b.strip(), p.waived_until) for p in parts if p.waived_by and p.waived_until for b in p.waived_by.split(",")]
    )
    return EvidenceResult(
        pattern,
        status,
        _cut(detail),
        latest.when,
        latest.run_id,
        latest.partition,
        by,
        until,
        tuple(matched),
    )


def _row_status(results: Sequence[EvidenceResult]) -> RowStatus:
    statuses = {r.status for r in results}
    if EvidenceStatus.FAILED in statuses:
        return RowStatus.FAILED
    if not results or statuses & {EvidenceStatus.NOT_EVALUATED, EvidenceStatus.MISSING}:
        return RowStatus.NOT_EVALUATED
    if EvidenceStatus.WAIVED in statuses:
        return RowStatus.WAIVED
    return RowStatus.SATISFIED


def _listing(results: Iterable[EvidenceResult]) -> str:
    return "; ".join(f"{r.id}: {r.detail}" for r in results)


def evaluate(requirements: Iterable[Requirement], observations: Mapping[str, Observation]) -> list[MatrixRow]:
    """Each requirement's status from the observations of its evidence (keyed by concrete evidence id;
    a pattern in a requirement is matched against these keys). See the module's docstring for the rule."""
    rows: list[MatrixRow] = []
    for req in requirements:
        base = {
            "id": req.id,
            "framework": req.framework,
            "reference": req.reference,
            "title": req.title,
            "requirement": req.requirement,
            "not_covered": req.not_covered,
            "partial": req.partial,
        }
        if not req.evidence:
            reason = req.not_covered or "no evidence is named for it"
            rows.append(MatrixRow(**base, status=RowStatus.NOT_COVERED, detail=f"not covered by the project: {reason}"))
            continue
        results = tuple(
            _pattern(e, observations) if is_pattern(e) else _single(e, observations.get(e)) for e in req.evidence
        )
        status = _row_status(results)
        by = until = None
        if status == RowStatus.FAILED:
            detail = "failed: " + _listing(r for r in results if r.status == EvidenceStatus.FAILED)
        elif status == RowStatus.NOT_EVALUATED:
            detail = "not evaluated: " + _listing(
                r for r in results if r.status in (EvidenceStatus.NOT_EVALUATED, EvidenceStatus.MISSING)
            )
        elif status == RowStatus.WAIVED:
            waived = [r for r in results if r.status == EvidenceStatus.WAIVED]
            by, until = _waiver_fields(
                [(b.strip(), r.waived_until or "") for r in waived if r.waived_by for b in r.waived_by.split(",")]
            )
            until = until or None
            detail = f"passed under waivers (by {by or 'unnamed'} until {until or 'unknown'}): " + _listing(waived)
        else:
            latest = max((r.when for r in results if r.when), default=None)
            detail = f"all {len(results)} pieces of evidence passed" + (f" (latest {latest})" if latest else "")
        if req.partial:
            detail += f". Outside the project: {req.partial}"
        rows.append(MatrixRow(**base, status=status, detail=detail, evidence=results, waived_by=by, waived_until=until))
    return rows


def counts(rows: Iterable[MatrixRow]) -> dict[str, int]:
    """How many requirements have each status, every status listed (zero included), in a fixed order."""
    tally = {s.value: 0 for s in RowStatus}
    for row in rows:
        tally[RowStatus(row.status).value] += 1
    return tally


# --- rendering ---------------------------------------------------------------------------------------


def to_json(rows: Sequence[MatrixRow], **meta: Any) -> str:
    """The matrix as JSON: schema, ``meta`` (e.g. when it was evaluated), the counts and every row."""
    payload = {"schema": SCHEMA, **meta, "counts": counts(rows), "rows": [r.as_dict() for r in rows]}
    return json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n"


def _md(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _evidence_summary(row: MatrixRow) -> str:
    return "; ".join(f"{e.id} {e.status.value}" for e in row.evidence)


def to_markdown(rows: Sequence[MatrixRow]) -> str:
    """The matrix as one Markdown table: requirement, status, why, and each evidence id with its status."""
    lines = [
        "| id | framework | reference | requirement | status | detail | evidence |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {_md(r.id)} | {_md(r.framework)} | {_md(r.reference)} | {_md(r.title)} | **{_md(r.status.value)}** "
            f"| {_md(r.detail)} | {_md(_evidence_summary(r)) or '-'} |"
        )
    return "\n".join(lines) + "\n"


CSP = "default-src 'none'; style-src 'unsafe-inline'"
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:2rem;color:#1d1f21;line-height:1.45}
h1{font-size:1.5rem;margin:0 0 .5rem}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.35rem .55rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}
.status{font-weight:600;white-space:nowrap}
.satisfied{color:#1e7e34}.waived{color:#8a5a00}.failed{color:#bd2130}
.not-evaluated{color:#5a5f66}.not-covered{color:#6c757d;font-style:italic}
.evidence{margin:0;padding-left:1.1rem}.evidence li{margin:.1rem 0}
code{font-size:.85em;word-break:break-all}
.muted{color:#6c757d;font-size:.85rem}
.counts span{margin-right:1rem}
@media (prefers-color-scheme:dark){body{background:#1d1f21;color:#e6e6e6}th{background:#2a2d30}
 td,th{border-color:#45494e}.satisfied{color:#5cc27a}.failed{color:#f07178}.waived{color:#e0b050}}
"""


def _css_class(status: str) -> str:
    return {
        "passed": "satisfied",
        "not_evaluated": "not-evaluated",
        "missing": "not-evaluated",
    }.get(status, status.replace(" ", "-"))


def to_html(
    rows: Sequence[MatrixRow],
    title: str = "Compliance matrix",
    subtitle: str | None = None,
    sources: Mapping[str, str] | None = None,
) -> str:
    """The matrix as a self-contained page: inline style, no script, no link or resource from elsewhere,
    and a Content-Security-Policy that lets the browser load nothing, so opening it contacts no one."""
    esc = html.escape
    tally = counts(rows)
    count_line = "".join(f'<span class="{_css_class(status)}">{n} {esc(status)}</span>' for status, n in tally.items())
    body_rows = []
    for r in rows:
        items = "".join(
            f'<li><code>{esc(e.id)}</code> <span class="status {_css_class(e.status.value)}">'
            f"{esc(e.status.value.replace('_', ' '))}</span>: {esc(e.detail)}"
            + (f' <span class="muted">({esc(e.when)})</span>' if e.when else "")
            + "</li>"
            for e in r.evidence
        )
        evidence = f'<ul class="evidence">{items}</ul>' if items else "-"
        body_rows.append(
            f'<tr id="{esc(r.id)}"><td><code>{esc(r.id)}</code></td><td>{esc(r.framework)}</td>'
            f"<td>{esc(r.reference)}</td><td><strong>{esc(r.title)}</strong><br>{esc(r.requirement)}</td>"
            f'<td class="status {_css_class(r.status.value)}">{esc(r.status.value)}</td>'
            f"<td>{esc(r.detail)}</td><td>{evidence}</td></tr>"
        )
    source_list = ""
    if sources:
        source_list = (
            "<h2>Sources</h2><ul>"
            + "".join(f"<li><strong>{esc(k)}</strong>: {esc(v)}</li>" for k, v in sources.items())
            + "</ul>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>{esc(title)}</h1>\n"
        + (f'<p class="muted">{esc(subtitle)}</p>\n' if subtitle else "")
        + f'<p class="counts">{count_line}</p>\n'
        '<p class="muted">satisfied: every piece of evidence passed in its latest materialization or check '
        "evaluation; waived: passed only under a waiver (by whom, until when); failed: a piece of evidence "
        "failed; not evaluated: some evidence was never materialized or evaluated, or could not be measured; "
        "not covered: outside what this project can evidence (with the reason).</p>\n"
        "<table><thead><tr><th>id</th><th>framework</th><th>reference</th><th>requirement</th><th>status</th>"
        "<th>detail</th><th>evidence</th></tr></thead><tbody>\n"
        + "\n".join(body_rows)
        + "\n</tbody></table>\n"
        + source_list
        + "</body></html>\n"
    )
