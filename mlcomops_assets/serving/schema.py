"""The request schema of the scoring service, generated from the policy, and the rules of a 422.

An application holds exactly:

- every **feature** column (``role: feature``, and protected attributes with ``use_as_feature``) with its
  type, range (``min``/``max``) or allowed values; required unless the policy allows it to be missing
  (``max_null_fraction > 0``), then it may be ``null`` or left out;
- the **identifiers** the policy pseudonymizes (``role: identifier, treatment: pseudonymize``), optional;
  they are replaced by their keyed pseudonym before anything is stored and never reach the model.
  Identifiers the policy drops are not accepted at all;
- the **protected attributes** the policy accepts for fairness monitoring
  (``serving.protected_for_monitoring``), optional; stored apart from the model inputs and never passed
  to the model.

Anything else is refused (``extra="forbid"``). Values are checked strictly: ``"5"`` is not a number,
``true`` is not an integer, ``5.0`` is accepted for an integer. A text value that looks like an e-mail
address or a phone number (``lib/rules.IDENTIFIER_PATTERN``, the data contract's own rule) is refused in
any feature or protected attribute unless it is one of the column's allowed values; a date column is
checked against its ``date_format`` instead (an ISO date matches the phone pattern).

A refusal names each field and its rule, never the value sent (it may be personal data):
``missing``, ``extra``, ``wrong_type``, ``out_of_range``, ``unknown_category``, ``identifier_like``,
``too_long``, ``invalid_date``, ``invalid_json``, ``empty_batch``, ``too_many``, ``invalid``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
)
from pydantic_core import PydanticCustomError

from mlcomops_assets.lib.rules import IDENTIFIER_PATTERN
from mlcomops_assets.policy import ColumnRole, ColumnSpec, ColumnType, Policy

RULES = (
    "missing",
    "extra",
    "wrong_type",
    "out_of_range",
    "unknown_category",
    "identifier_like",
    "too_long",
    "invalid_date",
    "invalid_json",
    "empty_batch",
    "too_many",
    "invalid",
)
MAX_TEXT_LENGTH = 1000
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)

# pydantic's error types, by the rule a person reads.
_RULE_OF_ERROR = {
    "missing": "missing",
    "extra_forbidden": "extra",
    "literal_error": "unknown_category",
    "enum": "unknown_category",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than": "out_of_range",
    "finite_number": "out_of_range",
    "identifier_like": "identifier_like",
    "string_too_long": "too_long",
    "invalid_date": "invalid_date",
    "too_short": "empty_batch",
    "too_long": "too_many",
}


@dataclass(frozen=True)
class Problem:
    """One reason a request is refused: the field (``applications[2].checks`` in a batch), the rule and a
    message that states the rule, never the value that broke it."""

    field: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


class InvalidRequest(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.rule}" for p in problems))
        self.problems = problems


def _whole_number(value: Any) -> Any:
    """JSON does not tell 5 from 5.0: a float that is a whole number is that integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _text_only(allowed: frozenset[str] | None, identifiers: bool = True):
    """Refuse a value that is not text, or that looks like an e-mail address or phone number (unless it
    is one of the column's allowed values, or ``identifiers`` is false: a date such as 2024-03-01 matches
    the phone pattern, and its own format check decides), before the category or length is checked."""

    def check(value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "Input should be a valid string")
        if identifiers and (allowed is None or value not in allowed) and _IDENTIFIER.search(value):
            raise PydanticCustomError(
                "identifier_like",
                "looks like an e-mail address or a phone number: direct identifiers are not accepted here",
            )
        return value

    return check


def _date_check(spec: ColumnSpec):
    def check(value: str | None) -> str | None:
        if value is None or spec.date_format is None:
            return value
        try:
            day = dt.datetime.strptime(value, spec.date_format).date()
        except ValueError:
            raise PydanticCustomError(
                "invalid_date", "must be a date written as {fmt}", {"fmt": spec.date_format}
            ) from None
        if (spec.min_date and day < spec.min_date) or (spec.max_date and day > spec.max_date):
            raise PydanticCustomError(
                "greater_than_equal",
                "must lie within {low} and {high}",
                {"low": str(spec.min_date), "high": str(spec.max_date)},
            )
        return value

    return check


def _value_type(spec: ColumnSpec) -> Any:
    """The annotated type of one column's value, as strict as its contract."""
    # Constraints first, validators after: a BeforeValidator wraps (and runs before) what precedes it,
    # and constraints given before it are published in the JSON schema as minimum/maximum.
    bounds = {k: v for k, v in (("ge", spec.min), ("le", spec.max)) if v is not None}
    if spec.dtype == ColumnType.INTEGER:
        whole = {k: int(v) if float(v).is_integer() else v for k, v in bounds.items()}
        return Annotated[int, Field(strict=True, **whole), BeforeValidator(_whole_number)]
    if spec.dtype == ColumnType.FLOAT:
        return Annotated[float, Field(strict=True, allow_inf_nan=False, **bounds)]
    if spec.allowed_values:
        allowed = frozenset(spec.allowed_values)
        return Annotated[Literal[tuple(spec.allowed_values)], BeforeValidator(_text_only(allowed))]
    return Annotated[
        str,
        Field(strict=True, max_length=MAX_TEXT_LENGTH),
        AfterValidator(_date_check(spec)),
        BeforeValidator(_text_only(None, identifiers=spec.date_format is None)),
    ]


def _identifier_type(spec: ColumnSpec) -> Any:
    if spec.dtype == ColumnType.INTEGER:
        return Annotated[int, Field(strict=True), BeforeValidator(_whole_number)]
    return Annotated[str, Field(strict=True, min_length=1, max_length=256)]


@dataclass(frozen=True)
class ApplicationSchema:
    """The request model generated from the policy, and which of its fields go where."""

    model: type[BaseModel]
    batch: type[BaseModel]
    outcome: type[BaseModel]
    features: tuple[str, ...]  # model inputs, in the policy's order
    identifiers: tuple[str, ...]  # pseudonymized before anything is stored
    monitoring: tuple[str, ...]  # protected attributes kept for fairness monitoring (features among them too)
    labels: tuple[str, ...]  # the target's labels: what an outcome may be

    def split(self, application: BaseModel) -> tuple[dict, dict, dict]:
        """The validated application as (model inputs, identifiers, protected attributes for monitoring);
        identifiers and protected attributes left out are omitted."""
        values = application.model_dump(by_alias=True)
        inputs = {name: values[name] for name in self.features}
        identifiers = {n: values[n] for n in self.identifiers if values.get(n) is not None}
        protected = {n: values[n] for n in self.monitoring if values.get(n) is not None}
        return inputs, identifiers, protected


def application_schema(policy: Policy, max_batch: int = 1000) -> ApplicationSchema:
    """Build the request models of ``policy``. Fields are named by their columns (pydantic aliases, so any
    column name works)."""
    spec = policy.data
    features = tuple(spec.feature_columns)
    identifiers = tuple(spec.pseudonymized_columns)
    monitoring = tuple(policy.serving.protected_for_monitoring)
    fields: dict[str, Any] = {}

    def add(name: str, annotation: Any, required: bool, description: str) -> None:
        key = f"field_{len(fields)}"
        if required:
            fields[key] = (annotation, Field(alias=name, description=description))
        else:
            fields[key] = (annotation | None, Field(default=None, alias=name, description=description))

    for name in features:
        column = spec.columns[name]
        role = "protected attribute used as a feature" if column.role == ColumnRole.PROTECTED else "feature"
        add(name, _value_type(column), column.max_null_fraction == 0, f"{role}: {column.description}".strip(": "))
    for name in identifiers:
        add(name, _identifier_type(spec.columns[name]), False, "identifier, pseudonymized before it is stored")
    for name in monitoring:
        if name not in features:
            text = "protected attribute for fairness monitoring only: stored apart, never passed to the model"
            add(name, _value_type(spec.columns[name]), False, text)
    config = ConfigDict(extra="forbid", populate_by_name=False, frozen=True)
    model = create_model("Application", __config__=config, **fields)
    model.__doc__ = "One application to decide on; the fields are the policy's columns."
    batch = create_model(
        "DecisionBatch",
        __config__=ConfigDict(extra="forbid"),
        applications=(list[model], Field(min_length=1, max_length=max_batch)),
    )
    batch.__doc__ = f"Up to {max_batch} applications, decided and logged together (all or none)."
    labels = tuple(spec.columns[spec.target].allowed_values or ())
    outcome = create_model(
        "OutcomeReport",
        __config__=ConfigDict(extra="forbid"),
        receipt_id=(Annotated[str, Field(strict=True, pattern=_UUID, description="The decision's receipt id.")], ...),
        outcome=(Literal[labels], Field(description=f"The true label, one of {list(labels)}.")),
    )
    outcome.__doc__ = "The true outcome of a decision, reported once it is known."
    return ApplicationSchema(model, batch, outcome, features, identifiers, monitoring, labels)


_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def parse_json(body: bytes) -> Any:
    """The request body as JSON; NaN and Infinity (which Python would accept) are refused."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    try:
        return json.loads(body, parse_constant=refuse)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise InvalidRequest([Problem("body", "invalid_json", "the request body is not a JSON document")]) from None


def _field_name(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith("function-") or part in ("literal", "constrained-str", "str", "int", "float"):
            continue  # pydantic's names for the inner validators of a field
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _problems(exc: ValidationError, expected: dict[str, str]) -> list[Problem]:
    problems = []
    seen = set()
    for err in exc.errors(include_input=False, include_url=False):
        name = _field_name(err["loc"])
        rule = _RULE_OF_ERROR.get(err["type"])
        if rule is None:
            rule = "wrong_type" if err["type"].endswith(("_type", "_parsing", "_from_float")) else "invalid"
        if (name, rule) in seen:  # a nullable field reports its type error once per union member
            continue
        seen.add((name, rule))
        column = name.rsplit(".", 1)[-1]
        message = err["msg"]
        if rule == "missing":
            message = f"required: {expected.get(column, 'a value')}"
        elif rule == "extra":
            message = "not part of the application schema (see /openapi.json)"
        elif rule == "wrong_type" and column in expected:
            message = f"{message}: expected {expected[column]}"
        problems.append(Problem(name, rule, message))
    return problems


def _expected(policy: Policy) -> dict[str, str]:
    """What each column takes, in words (for the 'missing' and 'wrong_type' messages)."""
    out = {}
    for name, column in policy.data.columns.items():
        if column.dtype in (ColumnType.INTEGER, ColumnType.FLOAT):
            kind = "an integer" if column.dtype == ColumnType.INTEGER else "a number"
            low = "" if column.min is None else f" >= {column.min:g}"
            high = "" if column.max is None else f" <= {column.max:g}"
            out[name] = f"{kind}{low}{high}".replace(f"{low} ", f"{low} and ") if low and high else f"{kind}{low}{high}"
        elif column.allowed_values:
            out[name] = f"one of {column.allowed_values}"
        else:
            out[name] = "text"
    return out


@dataclass(frozen=True)
class ParsedRequest:
    applications: list[BaseModel]
    batch: bool


def parse_applications(raw: Any, schema: ApplicationSchema, policy: Policy) -> ParsedRequest:
    """One application (a JSON object) or a batch (``{"applications": [...]}``), validated; raises
    ``InvalidRequest`` naming every problem of every application (a batch is refused as a whole)."""
    if not isinstance(raw, dict):
        raise InvalidRequest([Problem("body", "wrong_type", "expected a JSON object: one application or a batch")])
    try:
        if "applications" in raw:
            parsed = schema.batch.model_validate(raw)
            return ParsedRequest(list(parsed.applications), batch=True)
        return ParsedRequest([schema.model.model_validate(raw)], batch=False)
    except ValidationError as exc:
        raise InvalidRequest(_problems(exc, _expected(policy))) from None


def parse_outcome(raw: Any, schema: ApplicationSchema) -> BaseModel:
    if not isinstance(raw, dict):
        raise InvalidRequest([Problem("body", "wrong_type", "expected a JSON object {receipt_id, outcome}")])
    try:
        return schema.outcome.model_validate(raw)
    except ValidationError as exc:
        expected = {"receipt_id": "a receipt id (a UUID)", "outcome": f"one of {list(schema.labels)}"}
        problems = [
            Problem(p.field, "wrong_type", f"must be {expected['receipt_id']}")
            if p.field == "receipt_id" and p.rule in ("invalid", "wrong_type")
            else p
            for p in _problems(exc, expected)
        ]
        raise InvalidRequest(problems) from None
