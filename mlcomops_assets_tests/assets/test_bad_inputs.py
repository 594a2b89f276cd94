"""The bad-input corpus: every broken file stops at validation with the rule, the column and the count.

One project home is first materialized end to end on good data. Each case then drops a broken file in
its inbox and runs the whole graph again: the run must fail at validation, materialize nothing past
``raw_data``, name the failed rule, its column and the number of offending rows, and leave the last
good validated data, model record and reports byte-identical.
"""

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from mlcomops_assets import constants as c
from mlcomops_assets.lib.files import file_md5
from mlcomops_assets.run_failures import failure_report
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.conftest import materialize, write_home
from mlcomops_assets_tests.data_factory import PSEUDONYM_KEY, credit_applications, credit_policy

pytestmark = pytest.mark.e2e

GOOD_LAYERS = ("validated", "prepared", "models", "explainers", "published/reports", "published/selection")
BASE = credit_applications()
ROWS = len(BASE)


def csv(frame: pd.DataFrame, **kwargs) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode(kwargs.pop("encoding", "utf-8"))


def with_rows(column: str, value, rows: int, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    out = (BASE if frame is None else frame).copy()
    out[column] = out[column].astype(object)
    out.loc[: rows - 1, column] = value
    return out


def truncated() -> bytes:
    text = csv(BASE).decode()
    body, last = text.rstrip("\n").rsplit("\n", 1)
    # Cut the last line after its 13th field: the label (last column) of that row is lost.
    return (body + "\n" + ",".join(last.split(",")[:13])).encode()


def ragged() -> bytes:
    lines = csv(BASE).decode().splitlines()
    lines[100] += ",EXTRA,FIELDS"  # one row with two fields more than the header
    return ("\n".join(lines) + "\n").encode()


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("applications.csv", csv(BASE))
    return buffer.getvalue()


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class Case:
    name: str
    content: Callable[[], bytes]
    rule: str
    column: str | None = None
    count: int | None = None
    text: str = ""
    filename: str = "applications.csv"


CASES = [
    Case(
        "missing_column", lambda: csv(BASE.drop(columns=["income"])), "columns_match_policy", text="missing ['income']"
    ),
    Case(
        "extra_undeclared_column",
        lambda: csv(BASE.assign(favourite_colour="blue")),
        "columns_match_policy",
        text="undeclared ['favourite_colour']",
    ),
    Case(
        "renamed_column",
        lambda: csv(BASE.rename(columns={"income": "Income"})),
        "columns_match_policy",
        text="missing ['income']; undeclared ['Income']",
    ),
    Case(
        "wrong_type",
        lambda: csv(with_rows("employment_years", "five", 3)),
        "employment_years__type",
        "employment_years",
        text="found dtype object",
    ),
    Case(
        "numbers_as_strings_with_commas",
        lambda: csv(BASE.assign(income=BASE["income"].map("{:,.2f}".format))),
        "income__type",
        "income",
        text="found dtype object",
    ),
    Case("out_of_range_values", lambda: csv(with_rows("debt_ratio", 1.7, 8)), "debt_ratio__range", "debt_ratio", 8),
    Case("negative_ages", lambda: csv(with_rows("age", -5, 6)), "age__range", "age", 6),
    Case("unknown_category", lambda: csv(with_rows("region", "atlantis", 5)), "region__allowed_values", "region", 5),
    Case("empty_file", lambda: b"", "file_is_readable", text="not a readable csv file"),
    Case("header_only", lambda: csv(BASE.head(0)), "row_count_within_bounds", text="observed: 0"),
    Case(
        "single_class_label",
        lambda: csv(BASE.assign(decision="approved")),
        "decision__both_classes_present",
        "decision",
    ),
    Case(
        "label_column_missing",
        lambda: csv(BASE.drop(columns=["decision"])),
        "columns_match_policy",
        text="missing ['decision']",
    ),
    Case("label_with_nulls", lambda: csv(with_rows("decision", None, 9)), "decision__not_null", "decision", 9),
    Case("all_null_column", lambda: csv(BASE.assign(region=None)), "region__not_null", "region", ROWS),
    Case(
        "duplicated_record_keys",
        lambda: csv(with_rows("application_id", "APP-000000", 5)),
        "application_id__unique",
        "application_id",
        5,
    ),
    Case(
        "duplicated_rows", lambda: csv(pd.concat([BASE, BASE.head(10)])), "application_id__unique", "application_id", 20
    ),
    Case(
        "latin1_encoding",
        lambda: csv(with_rows("full_name", "Zoë Brontë", 3), encoding="latin-1"),
        "file_is_readable",
        text="codec can't decode",
    ),
    Case(
        "mojibake_category", lambda: csv(with_rows("region", "northâ€“east", 4)), "region__allowed_values", "region", 4
    ),
    Case("semicolon_delimiter", lambda: csv(BASE, sep=";"), "columns_match_policy", text="missing ["),
    Case("truncated_last_line", truncated, "decision__not_null", "decision", 1),
    Case(
        "row_count_beyond_bound", lambda: csv(pd.concat([BASE] * 25)), "row_count_within_bounds", text="observed: 60000"
    ),
    Case("extreme_outliers", lambda: csv(with_rows("income", 1e13, 3)), "income__range", "income", 3),
    Case(
        "time_outside_window",
        lambda: csv(with_rows("application_date", "2031-05-01", 7)),
        "application_date__date_window",
        "application_date",
        7,
    ),
    Case(
        "unparseable_dates",
        lambda: csv(with_rows("application_date", "31/02/2023", 4)),
        "application_date__date_format",
        "application_date",
        4,
    ),
    Case(
        "protected_group_too_small",
        lambda: csv(BASE.assign(gender=["female"] * 5 + ["male"] * (ROWS - 5))),
        "gender__group__female__min_size",
        "gender",
        text="the group has 5 of 2,400 rows",
    ),
    Case(
        "identifier_leaked_into_feature",
        lambda: csv(with_rows("occupation", BASE["email"].head(6).tolist(), 6)),
        "occupation__no_direct_identifiers",
        "occupation",
        6,
    ),
    Case(
        "identifier_like_feature",
        lambda: csv(BASE.assign(occupation=BASE["national_id"])),
        "occupation__not_identifier_like",
        "occupation",
    ),
    Case(
        "not_a_csv_png",
        lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
        "file_is_readable",
        text="not a readable csv file",
    ),
    Case("zip_archive_renamed_csv", zipped, "file_is_readable", text="not a readable csv file"),
    Case("json_instead_of_csv", lambda: BASE.head(50).to_json(orient="records").encode(), "columns_match_policy"),
    Case("ragged_rows", ragged, "file_is_readable", text="Expected 14 fields in line 101, saw 16"),
    Case("nulls_in_protected_attribute", lambda: csv(with_rows("gender", None, 40)), "gender__not_null", "gender", 40),
    Case(
        "class_share_below_minimum",
        lambda: csv(BASE.assign(decision=["rejected"] * 30 + ["approved"] * (ROWS - 30))),
        "decision__class_share__rejected",
        "decision",
        text="30 of 2,400 rows (1.2%) are in the class",
    ),
    Case(
        "whitespace_in_categories",
        lambda: csv(with_rows("region", " north", 11)),
        "region__allowed_values",
        "region",
        11,
    ),
    Case(
        "label_as_numbers",
        lambda: csv(BASE.assign(decision=(BASE["decision"] == "approved").astype(int))),
        "decision__allowed_values",
        "decision",
        ROWS,
    ),
    Case(
        "record_key_missing",
        lambda: csv(with_rows("application_id", None, 3)),
        "application_id__not_null",
        "application_id",
        3,
    ),
    Case("infinite_values", lambda: csv(with_rows("income", float("inf"), 2)), "income__range", "income", 2),
    Case(
        "na_strings_in_numbers",
        lambda: csv(with_rows("employment_years", "N/A", 5)),
        "employment_years__not_null",
        "employment_years",
        5,
    ),
    Case(
        "parquet_with_wrong_types",
        lambda: parquet(BASE.assign(income=BASE["income"].astype(str))),
        "income__type",
        "income",
        filename="applications.parquet",
    ),
]


def _layer_hashes(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): file_md5(p)
        for layer in GOOD_LAYERS
        for p in sorted((home / "data" / layer).rglob("*"))
        if p.is_file()
    }


def _point_policy_at(home: Path, filename: str) -> None:
    (home / "governance.yaml").write_text(yaml.safe_dump(credit_policy(f"inbox/{filename}"), sort_keys=False))


@pytest.fixture(scope="module")
def good_home(tmp_path_factory):
    """A home materialized end to end on good data; the state every case must leave untouched."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLCOMOPS_PSEUDONYM_KEY", PSEUDONYM_KEY)
        home = write_home(tmp_path_factory.mktemp("corpus"), credit_policy("inbox/applications.csv"))
        (home / "inbox").mkdir()
        (home / "inbox/applications.csv").write_bytes(csv(BASE))
        with materialize(home) as (result, _):
            assert result.success, [e.event_specific_data.error.message for e in result.get_step_failure_events()]
        yield home, _layer_hashes(home)


def test_corpus_has_at_least_30_cases():
    assert len(CASES) >= 30 and len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_broken_input_stops_at_validation(case: Case, good_home, monkeypatch):
    monkeypatch.setenv("MLCOMOPS_PSEUDONYM_KEY", PSEUDONYM_KEY)
    home, good = good_home
    _point_policy_at(home, case.filename)
    (home / "inbox" / case.filename).write_bytes(case.content())
    with materialize(home) as (result, _):
        assert not result.success
        assert {e.asset_key for e in result.get_asset_materialization_events()} == {c.RAW_DATA}
        blocking = {
            e.check_name: e
            for e in result.get_asset_check_evaluations()
            if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
        }
    assert case.rule in blocking, f"expected {case.rule} to fail; failed: {sorted(blocking)}"
    evaluation = blocking[case.rule]
    message = evaluation.description
    assert f"rule '{case.rule}'" in message
    if case.column:
        assert evaluation.metadata["column"].value == case.column and f"'{case.column}'" in message
    if case.count is not None:
        assert evaluation.metadata["unexpected_count"].value == case.count
        assert f"{case.count:,} of " in message
    assert case.text in message
    if case.rule != "file_is_readable":  # an unreadable file never reaches GX, so it has no Data Docs page
        assert "data_docs" in evaluation.metadata
    assert _layer_hashes(home) == good, "the last good data, model record and reports must stay untouched"


def test_missing_source_file_fails_at_ingestion_with_a_clear_error(good_home, monkeypatch):
    monkeypatch.setenv("MLCOMOPS_PSEUDONYM_KEY", PSEUDONYM_KEY)
    home, good = good_home
    _point_policy_at(home, "no_such_file.csv")
    with materialize(home) as (result, _):
        assert not result.success
        assert result.get_asset_materialization_events() == []
        (failure,) = result.get_step_failure_events()
        message = failure.event_specific_data.error.message
        assert message.startswith("dagster._core.definitions.events.Failure: data.source.path: file not found")
    assert _layer_hashes(home) == good


def test_last_good_model_and_data_stay_usable_after_the_corpus(good_home, monkeypatch):
    """After every broken input, the registered model still scores the last good holdout data."""
    import mlflow.sklearn

    from mlcomops_assets.lib import modeling
    from mlcomops_assets.policy import parse_policy
    from mlcomops_assets.settings import ProjectPaths

    home, good = good_home
    paths = ProjectPaths(home)
    assert _layer_hashes(home) == good
    record = json.loads((paths.models_dir / "trained_model.json").read_text())
    mlflow.set_tracking_uri(paths.mlflow_tracking_uri)
    model = mlflow.sklearn.load_model(record["model_uri"])
    holdout = pd.read_parquet(paths.prepared_dir / "holdout_data.parquet")
    policy = parse_policy(credit_policy("inbox/applications.csv"))
    scores = modeling.positive_scores(model, holdout, policy)
    assert len(scores) == len(holdout) and 0.0 <= scores.min() <= scores.max() <= 1.0


def test_spreadsheet_export_with_byte_order_mark_is_accepted(home_factory, monkeypatch):
    """Not a broken input: a UTF-8 CSV with a BOM, as spreadsheet programs write it, validates."""
    monkeypatch.setenv("MLCOMOPS_PSEUDONYM_KEY", PSEUDONYM_KEY)
    home = home_factory(credit_policy("inbox/applications.csv"))
    (home / "inbox").mkdir()
    (home / "inbox/applications.csv").write_bytes(b"\xef\xbb\xbf" + csv(BASE))
    with materialize(home, "raw_data,validated_data") as (result, _):
        assert result.success
        assert [e.check_name for e in result.get_asset_check_evaluations() if not e.passed] == []


def _dates_after_cutoff() -> pd.DataFrame:
    """Every application after the training cutoff (2023-09-30): nothing to train on."""
    days = pd.to_datetime(BASE["application_date"]).dt.dayofyear % 90
    return BASE.assign(
        application_date=(pd.Timestamp("2023-10-01") + pd.to_timedelta(days, unit="D")).dt.strftime("%Y-%m-%d")
    )


def _one_class_before_cutoff() -> pd.DataFrame:
    """Both classes overall (the contract passes) but only 'approved' in the training window."""
    before = BASE["application_date"] <= "2023-09-30"
    after_labels = ["rejected" if i % 2 else "approved" for i in range(int((~before).sum()))]
    decision = BASE["decision"].copy()
    decision[before] = "approved"
    decision[~before] = after_labels
    return BASE.assign(decision=decision)


@pytest.mark.parametrize(
    ("make", "reason"),
    [(_one_class_before_cutoff, "1 class(es)"), (_dates_after_cutoff, "only 0 row(s) at or before")],
    ids=["single_class_training_window", "no_rows_before_cutoff"],
)
def test_data_that_cannot_be_split_publishes_nothing(make, reason, good_home, monkeypatch):
    """Data that passes the contract but cannot be split stops before the validated layer is written:
    a readable failure naming splits_are_usable, no unhandled exception, the good layers untouched."""
    monkeypatch.setenv("MLCOMOPS_PSEUDONYM_KEY", PSEUDONYM_KEY)
    home, good = good_home
    _point_policy_at(home, "applications.csv")
    (home / "inbox/applications.csv").write_bytes(csv(make()))
    with materialize(home) as (result, _):
        assert not result.success
        assert [
            e.check_name
            for e in result.get_asset_check_evaluations()
            if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
        ] == []
        assert {e.asset_key for e in result.get_asset_materialization_events()} == {c.RAW_DATA}
        (failure,) = result.get_step_failure_events()
        error = failure.event_specific_data.error
    assert failure.asset_key == c.VALIDATED_DATA or failure.step_key == "validated_data"
    assert error.cls_name == "Failure", error.message  # a dg.Failure, not a ValueError traceback
    assert f"rule '{c.SPLITS_ARE_USABLE}'" in error.message and reason in error.message
    # What `make run` prints: the reason with its numbers, not only the step's name.
    report = failure_report(result, ProjectPaths(home))
    assert "step validated_data" in report and reason in report
    assert _layer_hashes(home) == good, "the last good validated and prepared data must stay untouched"


def test_splits_are_audited_before_the_prepared_layer_is_written(good_home, monkeypatch):
    """data_splits alone (a subset run) on a validated file with one label class: the check fails with
    its counts and data/prepared/ keeps the last good training, holdout and production sets."""
    monkeypatch.setenv("MLCOMOPS_PSEUDONYM_KEY", PSEUDONYM_KEY)
    home, good = good_home
    validated = home / "data/validated/validated_data.parquet"
    saved = validated.read_bytes()
    try:
        pd.read_parquet(validated).assign(decision="approved").to_parquet(validated, index=False)
        with materialize(home, "training_data,holdout_data,production_data") as (result, _):
            assert not result.success
            assert result.get_asset_materialization_events() == []
            (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == c.SPLITS_ARE_USABLE]
            report = failure_report(result, ProjectPaths(home))
    finally:
        validated.write_bytes(saved)
    assert not check.passed and "training:" in check.description and "1 class(es)" in check.description
    assert f"check training_data:{c.SPLITS_ARE_USABLE}: training:" in report
    assert _layer_hashes(home) == good
