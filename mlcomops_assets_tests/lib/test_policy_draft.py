"""The draft policy inferred from a data file (``mlcomops policy init``): roles, types, ranges, labels
and missing shares; it validates with the policy schema and never quotes an identifier's value."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlcomops_assets.lib.policy_check import check_policy
from mlcomops_assets.lib.policy_draft import (
    DraftError,
    dataset_name,
    draft_from_file,
    draft_text,
    name_tokens,
    null_fraction_ceiling,
    outward_range,
    propose_bins,
    row_bounds,
    source_reference,
)
from mlcomops_assets.policy import ColumnRole, ColumnType, DocumentationSpec, Policy, load_policy, parse_policy

IDENTIFIERS = ["customer_id", "full_name", "email", "phone"]


def applicants(rows: int = 400, seed: int = 11) -> pd.DataFrame:
    """Loan applicants with direct identifiers (Faker, seeded and offline), a numeric age, a column with
    missing values, a 0/1 integer target and no date column."""
    from faker import Faker

    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    income = rng.lognormal(mean=10.5, sigma=0.4, size=rows).round(2)
    income[rng.random(rows) < 0.15] = np.nan
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(rows)],
            "full_name": [fake.name() for _ in range(rows)],
            "email": [fake.unique.email() for _ in range(rows)],
            "phone": [fake.phone_number() for _ in range(rows)],
            "age": rng.integers(18, 80, size=rows),
            "gender": rng.choice(["female", "male"], size=rows),
            "income": income,
            "region": rng.choice(["north", "south", "east", "west"], size=rows),
            "approved": rng.integers(0, 2, size=rows),
        }
    )


def _draft(frame: pd.DataFrame, **kwargs) -> tuple[str, Policy]:
    text = draft_text(frame, name="applicants", source_path="applicants.csv", source_label="applicants.csv", **kwargs)
    return text, parse_policy(yaml.safe_load(text))


def test_draft_of_applicants_loads_and_declares_every_column(tmp_path: Path) -> None:
    frame = applicants()
    text, _ = _draft(frame)
    (tmp_path / "governance.yaml").write_text(text)
    policy = load_policy(tmp_path / "governance.yaml")  # the round trip through the real loader
    columns = policy.data.columns
    assert list(columns) == list(frame.columns)
    assert {n for n, c in columns.items() if c.role == ColumnRole.IDENTIFIER} == set(IDENTIFIERS)
    assert all(columns[n].dtype is None for n in IDENTIFIERS)  # dropped: no type needed
    assert columns["age"].role == ColumnRole.PROTECTED and columns["gender"].role == ColumnRole.PROTECTED
    assert columns["gender"].allowed_values is not None
    assert sorted(columns["gender"].allowed_values) == ["female", "male"]
    assert columns["income"].dtype == ColumnType.FLOAT and columns["region"].dtype == ColumnType.CATEGORY
    assert policy.data.target == "approved" and sorted(columns["approved"].allowed_values or []) == ["0", "1"]
    assert policy.data.positive_label == "1"
    assert policy.data.time_column is None and policy.data.training_cutoff is None
    assert "no time column: stratified split, batches from the inbox" in text
    assert policy.data.extra_expectations is None and policy.waivers == []
    assert policy.gates.fairness.intersections == []
    assert policy.data.min_group_size == 30


def test_missing_share_is_rounded_up_with_a_comment() -> None:
    frame = applicants()
    observed = float(frame["income"].isna().mean())
    text, policy = _draft(frame)
    declared = policy.data.columns["income"].max_null_fraction
    assert declared == null_fraction_ceiling(observed) and observed + 0.1 < declared < observed + 0.2
    assert f"{observed:.1%} missing now, plus room for batch-to-batch variation" in text
    assert policy.data.columns["region"].max_null_fraction == 0.0


def test_numeric_protected_attribute_gets_bins_that_cover_the_range_with_large_groups() -> None:
    frame = applicants()
    _, policy = _draft(frame)
    age = policy.data.columns["age"]
    edges = age.fairness_bins
    assert edges is not None and len(edges) >= 3 and edges == sorted(set(edges))
    assert edges[0] <= age.min <= frame["age"].min() and frame["age"].max() <= age.max < edges[-1]
    sizes = pd.cut(frame["age"], bins=edges, right=False).value_counts()
    assert sizes.min() >= 30


def test_the_draft_quotes_no_identifier_value() -> None:
    frame = applicants()
    text, _ = _draft(frame)
    for column in IDENTIFIERS:
        leaked = [value for value in frame[column].astype(str) if value in text]
        assert leaked == [], column


def test_min_and_max_are_rounded_outward() -> None:
    assert outward_range(pd.Series([18, 79]), integer=True) == (10, 80)
    assert outward_range(pd.Series([0, 6]), integer=True) == (0, 6)
    assert outward_range(pd.Series([0.013, 0.87]), integer=False) == (0, 0.9)
    assert outward_range(pd.Series([1997, 2002]), integer=True) == (1997, 2002)


def test_null_fraction_ceiling() -> None:
    assert null_fraction_ceiling(0.0) == 0.0
    # 7.7% missing: + 3 * sqrt(0.077 * 0.923 / 50) = 0.113 -> 20%, so a 300-row batch with 10.3% passes
    assert null_fraction_ceiling(0.077) == 0.2
    assert null_fraction_ceiling(0.077, batch_rows=5000) == 0.09
    assert null_fraction_ceiling(0.5) < 0.8  # a column that breaks is still refused
    assert null_fraction_ceiling(1.0) == 1.0


def test_bins_fall_back_to_fewer_groups_on_small_data() -> None:
    values = pd.Series(np.arange(20, 90))  # 70 rows: four groups of 30 are impossible, two are not
    edges, sizes = propose_bins(values, 20, 90)
    assert len(edges) == 3 and min(sizes) >= 30 and sum(sizes) == 70


def test_name_tokens() -> None:
    assert name_tokens("customerID") == ["customer", "id"]
    assert name_tokens("E-Mail") == ["e", "mail"]
    assert name_tokens("marital_status") == ["marital", "status"]


@pytest.mark.parametrize(
    ("column", "values", "role"),
    [
        ("contact", [f"person{i}@example.org" for i in range(60)], ColumnRole.IDENTIFIER),  # by value
        ("reference", [f"REF{i:04d}x" for i in range(60)], ColumnRole.IDENTIFIER),  # near-unique text
        ("notes", [f"called about the application, said {i} times that it was late" for i in range(60)], None),
        ("ticket", [f"T{i}" for i in range(60)], ColumnRole.IDENTIFIER),  # by name
        ("email_verified", ["yes", "no"] * 30, ColumnRole.FEATURE),  # a name match with two values
        ("row", list(range(60)), ColumnRole.IDENTIFIER),  # consecutive unique integers
        ("Sex", ["F", "M"] * 30, ColumnRole.PROTECTED),
        ("marital_status", ["single", "married", "other"] * 20, ColumnRole.PROTECTED),
        ("citizenship", ["yes", "no"] * 30, ColumnRole.PROTECTED),
        ("mileage", list(range(0, 600, 10)), ColumnRole.FEATURE),  # 'age' inside a word is not age
        ("postcode", [f"AB{i % 9} 1XY" for i in range(60)], ColumnRole.QUASI_IDENTIFIER),
    ],
)
def test_roles_by_name_and_values(column: str, values: list, role: ColumnRole | None) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({column: values, "score": rng.normal(size=60), "label": ["a", "b"] * 30})
    _, policy = _draft(frame)
    expected = role or ColumnRole.IDENTIFIER  # free text: dropped as it may name people
    assert policy.data.columns[column].role == expected


def test_target_must_be_named_given_and_binary() -> None:
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "outcome_code": ["a", "b", "c", "a"]})
    with pytest.raises(DraftError, match="--target"):
        _draft(frame)
    with pytest.raises(DraftError, match="3 distinct"):
        _draft(frame, target="outcome_code")
    with pytest.raises(DraftError, match="not a column"):
        _draft(frame, target="nope")
    _, policy = _draft(frame.assign(kind=["p", "q"] * 2), target="kind")
    assert policy.data.target == "kind"


def test_favourable_label_is_proposed_and_unfavourable_events_inverted() -> None:
    frame = pd.DataFrame({"x": [i % 7 for i in range(40)], "released": ["No", "Yes", "Yes", "Yes"] * 10})
    text, policy = _draft(frame)
    assert policy.data.positive_label == "Yes"
    assert "confirm which label is the favourable outcome" in text
    _, policy = _draft(pd.DataFrame({"x": [i % 7 for i in range(40)], "default": [0, 1] * 20}))
    assert policy.data.positive_label == "0"  # a loan default is not the favourable outcome


def test_a_date_column_becomes_the_time_column_with_a_cutoff() -> None:
    days = pd.date_range("2023-01-01", periods=365, freq="D")
    frame = pd.DataFrame(
        {"applied_on": days.strftime("%Y-%m-%d"), "x": np.arange(365) % 7, "target": ["a", "b"] * 182 + ["a"]}
    )
    text, policy = _draft(frame)
    data = policy.data
    assert data.time_column == "applied_on" and data.columns["applied_on"].date_format == "%Y-%m-%d"
    share = float((days <= pd.Timestamp(data.training_cutoff)).mean())
    assert 0.5 <= share <= 0.8
    assert "later rows become production batches" in text


def test_a_year_is_a_time_column_but_a_month_of_the_year_is_not() -> None:
    rows = 600
    frame = pd.DataFrame(
        {
            "year": np.repeat(np.arange(2000, 2006), rows // 6),
            "month": np.tile(np.arange(1, 13), rows // 12),
            "target": ["a", "b"] * (rows // 2),
        }
    )
    _, policy = _draft(frame)
    assert policy.data.time_column == "year"
    assert 2000 <= policy.data.training_cutoff < 2005
    assert policy.data.columns["month"].role == ColumnRole.FEATURE


def test_dataset_name_and_row_bounds() -> None:
    assert dataset_name("2023 credit-data") == "data_2023_credit_data"
    assert dataset_name("---") == "dataset"
    for rows in (1, 50, 400, 5226, 1_000_000):
        low, high = row_bounds(rows)
        assert low <= rows <= high


def test_source_path_is_relative_inside_the_home_and_confined_outside(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    assert source_reference(home / "data" / "a.csv", home) == ("data/a.csv", [])
    path, roots = source_reference(tmp_path / "elsewhere" / "a.csv", home)
    assert Path(path).is_absolute() and roots == [str((tmp_path / "elsewhere").resolve())]


def test_csv_labels_keep_their_spelling_and_the_draft_checks_clean(tmp_path: Path) -> None:
    # pandas reads true/false as booleans; the pipeline reads label columns as text: "true" stays "true".
    rows = 120
    (tmp_path / "flags.csv").write_text(
        "member,amount,outcome\n" + "".join(f"{'true' if i % 3 else 'false'},{i},{i % 2}\n" for i in range(rows))
    )
    text = draft_from_file(tmp_path / "flags.csv", tmp_path)
    (tmp_path / "governance.yaml").write_text(text)
    policy = load_policy(tmp_path / "governance.yaml")
    assert sorted(policy.data.columns["member"].allowed_values or []) == ["false", "true"]
    assert check_policy(policy, tmp_path).problems == []


def test_unreadable_files_are_refused_without_quoting_them(tmp_path: Path) -> None:
    with pytest.raises(DraftError, match="not found"):
        draft_from_file(tmp_path / "missing.csv", tmp_path)
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(DraftError, match=r"\.csv or \.parquet"):
        draft_from_file(tmp_path / "a.txt", tmp_path)
    (tmp_path / "latin.csv").write_bytes("name,target\nJos\xe9 Secreto,1\n".encode("latin-1"))
    with pytest.raises(DraftError) as info:
        draft_from_file(tmp_path / "latin.csv", tmp_path)
    assert "Secreto" not in str(info.value)


def test_parquet_timestamps_are_ignored_with_a_reason(tmp_path: Path) -> None:
    rows = 80
    frame = pd.DataFrame(
        {
            "seen": pd.date_range("2024-01-01", periods=rows, freq="D"),
            "x": np.arange(rows) % 5,
            "label": ["a", "b"] * (rows // 2),
        }
    )
    frame.to_parquet(tmp_path / "events.parquet")
    text = draft_from_file(tmp_path / "events.parquet", tmp_path)
    policy = parse_policy(yaml.safe_load(text))
    assert policy.data.columns["seen"].role == ColumnRole.IGNORED
    assert "which the data contract cannot check" in text


def test_the_accuracy_floor_is_the_majority_share_of_this_data() -> None:
    frame = applicants()
    frame["approved"] = (np.arange(len(frame)) % 10 < 7).astype(int)  # 70% "1"
    _, policy = _draft(frame)
    assert policy.gates.evaluation.min_accuracy == 0.7


def test_the_draft_lists_every_documentation_statement_commented_out() -> None:
    """Every provider statement of the technical documentation is in the draft as a TODO, left out (so the
    generated documents list it as open); uncommenting the section as it is still gives a valid policy."""
    text, policy = _draft(applicants())
    assert policy.documentation == DocumentationSpec()
    block = text[text.index("# documentation:") :]
    for key in DocumentationSpec.model_fields:
        assert re.search(rf"^#   {key}: +# TODO: ", block, re.MULTILINE), key
    uncommented = yaml.safe_load("\n".join(line.removeprefix("# ") for line in block.splitlines()))
    assert parse_policy({**yaml.safe_load(text), **uncommented}).documentation == DocumentationSpec()
