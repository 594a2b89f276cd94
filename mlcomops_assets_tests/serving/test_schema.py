"""The request schema is generated from the policy: feature types, ranges and categories, identifiers only
as the policy pseudonymizes them, protected attributes only where the policy accepts them for monitoring;
every refusal names the field and its rule and never the value."""

from __future__ import annotations

import pytest

from mlcomops_assets.policy import parse_policy
from mlcomops_assets.serving.schema import (
    InvalidRequest,
    application_schema,
    parse_applications,
    parse_json,
    parse_outcome,
)
from mlcomops_assets_tests.conftest import default_policy
from mlcomops_assets_tests.serving.conftest import ADVERSE


def _policy(**serving):
    raw = default_policy()
    columns = raw["data"]["columns"]
    columns["application_id"] = {"role": "identifier", "treatment": "pseudonymize", "dtype": "string"}
    columns["full_name"] = {"role": "identifier"}  # dropped by the policy: never accepted
    columns["notes"] = {"role": "feature", "dtype": "string", "max_null_fraction": 0.5}
    columns["applied_on"] = {"role": "feature", "dtype": "string", "date_format": "%Y-%m-%d", "min_date": "2020-01-01"}
    columns["postcode"] = {"role": "quasi_identifier", "dtype": "string"}
    raw["serving"].update(serving)
    return parse_policy(raw)


def _problems(body, policy, max_batch: int = 1000) -> list[tuple[str, str]]:
    with pytest.raises(InvalidRequest) as info:
        parse_applications(body, application_schema(policy, max_batch), policy)
    return [(p.field, p.rule) for p in info.value.problems]


APPLICATION = {**ADVERSE, "notes": "first offence", "applied_on": "2024-03-01"}


def test_the_schema_follows_the_policy():
    policy = _policy()
    schema = application_schema(policy)
    json_schema = schema.model.model_json_schema()
    properties = json_schema["properties"]
    assert set(properties) == {*policy.data.feature_columns, "application_id", "colour", "sex"}
    assert json_schema["additionalProperties"] is False
    assert set(json_schema["required"]) == {"age", "citizen", "employed", "checks", "applied_on"}
    assert (properties["age"]["minimum"], properties["age"]["maximum"]) == (10, 100)
    assert properties["citizen"]["enum"] == ["Yes", "No"]
    parsed = parse_applications({**APPLICATION, "application_id": "A-1001", "checks": 6.0}, schema, policy)
    inputs, identifiers, protected = schema.split(parsed.applications[0])
    assert inputs == {
        "age": 19,
        "citizen": "No",
        "employed": "No",
        "checks": 6,
        "notes": "first offence",
        "applied_on": "2024-03-01",
    }
    assert type(inputs["checks"]) is int, "6.0 is the integer 6"
    assert identifiers == {"application_id": "A-1001"} and protected == {"colour": "Black", "sex": "Male"}
    assert schema.labels == ("Yes", "No")


def test_protected_attributes_only_where_the_policy_allows_them_for_monitoring():
    policy = _policy(protected_for_monitoring=["age"])  # age is a feature anyway; colour/sex are not accepted
    assert ("colour", "extra") in _problems(APPLICATION, policy)
    schema = application_schema(policy)
    body = {k: v for k, v in APPLICATION.items() if k not in ("colour", "sex")}
    inputs, _, protected = schema.split(parse_applications(body, schema, policy).applications[0])
    assert protected == {"age": 19} and "colour" not in inputs


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"checks": None}, "checks", "wrong_type"),
        ({"checks": "6"}, "checks", "wrong_type"),
        ({"checks": True}, "checks", "wrong_type"),
        ({"checks": 6.5}, "checks", "wrong_type"),
        ({"checks": 11}, "checks", "out_of_range"),
        ({"age": 9}, "age", "out_of_range"),
        ({"employed": "Maybe"}, "employed", "unknown_category"),
        ({"employed": 1}, "employed", "wrong_type"),
        ({"notes": "call me on 0151 496 0123"}, "notes", "identifier_like"),
        ({"notes": "write to jane@example.org"}, "notes", "identifier_like"),
        ({"notes": "x" * 1001}, "notes", "too_long"),
        ({"applied_on": "01/03/2024"}, "applied_on", "invalid_date"),
        ({"applied_on": "2019-12-31"}, "applied_on", "out_of_range"),
        ({"full_name": "Jane Doe"}, "full_name", "extra"),
        ({"postcode": "M5V 2T6"}, "postcode", "extra"),
        ({"year": 2001}, "year", "extra"),
        ({"application_id": ""}, "application_id", "invalid"),
    ],
)
def test_each_refusal_names_the_field_and_the_rule(change, field, rule):
    assert (field, rule) in _problems({**APPLICATION, **change}, _policy())


def test_missing_fields_and_batches():
    policy = _policy()
    assert _problems({k: v for k, v in APPLICATION.items() if k != "age"}, policy) == [("age", "missing")]
    no_notes = {k: v for k, v in APPLICATION.items() if k != "notes"}
    assert parse_applications(no_notes, application_schema(policy), policy).applications, "notes may be missing"
    assert _problems({"applications": [APPLICATION] * 3}, policy, max_batch=2) == [("applications", "too_many")]
    assert _problems({"applications": []}, policy) == [("applications", "empty_batch")]
    assert _problems({"applications": [APPLICATION, {**APPLICATION, "checks": -1}]}, policy) == [
        ("applications[1].checks", "out_of_range")
    ]
    assert _problems([APPLICATION], policy) == [("body", "wrong_type")]


def test_a_refusal_never_repeats_the_value():
    policy = _policy()
    with pytest.raises(InvalidRequest) as info:
        parse_applications(
            {**APPLICATION, "notes": "jane@example.org", "employed": "SECRET-VALUE"}, application_schema(policy), policy
        )
    text = repr([p.as_dict() for p in info.value.problems])
    assert "jane" not in text and "SECRET-VALUE" not in text


def test_json_and_outcomes():
    for body in (b"{", b'{"age": NaN}', b"\xff\xfe", b"[" * 100_000):
        with pytest.raises(InvalidRequest) as info:
            parse_json(body)
        assert info.value.problems[0].rule == "invalid_json"
    schema = application_schema(_policy())
    rid = "00000000-0000-4000-8000-000000000000"
    assert parse_outcome({"receipt_id": rid, "outcome": "Yes"}, schema).outcome == "Yes"
    for body, field, rule in (
        ({"receipt_id": rid, "outcome": "Maybe"}, "outcome", "unknown_category"),
        ({"receipt_id": "x", "outcome": "No"}, "receipt_id", "wrong_type"),
        ({"receipt_id": rid}, "outcome", "missing"),
        ({"receipt_id": rid, "outcome": "No", "note": 1}, "note", "extra"),
    ):
        with pytest.raises(InvalidRequest) as info:
            parse_outcome(body, schema)
        assert (field, rule) in [(p.field, p.rule) for p in info.value.problems]
