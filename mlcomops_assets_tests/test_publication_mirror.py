"""The publication folder's mirror on the object store (team profile): exactly the files the report
server would serve that pass the row-level scan, one PUT each, nothing from outside the folder; a
deleted or newly failing file leaves the mirror.

The object store is moto's S3 server (``team_services``), the stand-in for cloud storage; s3fs reaches
it over HTTP as it would reach MinIO or a cloud endpoint.
"""

import io
import uuid

import pandas as pd
import pytest

from mlcomops_assets.lib.evidence_scan import RowIndex
from mlcomops_assets.lib.publication import mirror, row_scan, served_files
from mlcomops_assets.profile import Profile
from mlcomops_assets.publication_mirror import PUBLISHED_PREFIX, mirror_publication
from mlcomops_assets.settings import ProjectPaths

DATA = pd.DataFrame(
    {
        "age": [23, 41, 37, 58, 29, 64],
        "colour": ["Black", "White", "White", "Black", "White", "Black"],
        "checks": [3, 0, 5, 1, 2, 4],
        "income": [1830.5, 2411.25, 3022.75, 1277.0, 2950.5, 4101.0],
    }
)
FEATURES = ["age", "colour", "checks", "income"]


def _publication(home) -> ProjectPaths:
    """A publication folder as the graph leaves it: reports, Data Docs, a plot, a temporary file of an
    atomic write in progress, and a link to a file outside the folder."""
    paths = ProjectPaths(home)
    published = paths.published_dir
    (published / "reports").mkdir(parents=True)
    (published / "data_docs" / "validations").mkdir(parents=True)
    (published / "reports" / "fairness_report.json").write_text('{"demographic_parity_difference": 0.081}')
    (published / "reports" / "fairness_report.html").write_text("<table><tr><td>colour</td><td>0.081</td></tr></table>")
    (published / "data_docs" / "index.html").write_text("<h1>Data Docs</h1><p>6 rows, 4 columns, 0 failed</p>")
    (published / "data_docs" / "validations" / "run.json").write_text('{"success": true, "unexpected_count": 0}')
    (published / "reports" / "shap_summary.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64)
    (published / "reports" / ".fairness_report.html.abcd1234-77.x.tmp").write_text("half-written")
    outside = home / "data" / "validated" / "validated_data.csv"
    outside.parent.mkdir(parents=True)
    DATA.to_csv(outside, index=False)
    (published / "reports" / "linked.csv").symlink_to(outside)
    return paths


SERVED = [
    "data_docs/index.html",
    "data_docs/validations/run.json",
    "reports/fairness_report.html",
    "reports/fairness_report.json",
    "reports/shap_summary.png",
]


@pytest.fixture
def target(s3_env):
    """A fresh ``s3://bucket/<prefix>/published`` on the S3 server, with its key prefix."""
    from upath import UPath

    prefix = f"team-{uuid.uuid4().hex[:8]}/{PUBLISHED_PREFIX}"
    url = s3_env.url(prefix)
    return UPath(url, use_listings_cache=False, client_kwargs={"endpoint_url": s3_env.endpoint_url}), prefix + "/"


def _mirrored(s3, prefix: str) -> dict[str, bytes]:
    return {key.removeprefix(prefix): s3.read(key) for key in s3.keys(prefix)}


def test_the_mirror_holds_exactly_the_served_files(tmp_path, target, s3_env):
    paths = _publication(tmp_path)
    upath, prefix = target
    result = mirror(paths.published_dir, upath, row_scan(RowIndex([DATA], key_columns=FEATURES)))
    stored = _mirrored(s3_env, prefix)
    assert sorted(stored) == SERVED == sorted(result.uploaded)
    assert all(stored[name] == (paths.published_dir / name).read_bytes() for name in SERVED)
    # Nothing from outside the folder: the link to the validated data is named and left out.
    assert result.refused == {"reports/linked.csv": "a symbolic link: only files written into the folder are mirrored"}
    # The report server's rule for hidden names holds for the mirror too.
    assert [p.name for p in served_files(paths.published_dir)[0] if p.name.startswith(".")] == []


def test_a_file_failing_the_scan_is_not_uploaded_and_a_retracted_one_is_removed(tmp_path, target, s3_env):
    paths = _publication(tmp_path)
    upath, prefix = target
    scan = row_scan(RowIndex([DATA], key_columns=FEATURES))
    mirror(paths.published_dir, upath, scan)
    # A report that now shows records (as a table and as JSON) and a new file that does.
    (paths.published_dir / "reports" / "fairness_report.html").write_text(DATA.head(3).to_html(index=False))
    (paths.published_dir / "reports" / "leak.json").write_text(DATA.iloc[[4]].to_json(orient="records"))
    result = mirror(paths.published_dir, upath, scan)
    assert set(result.refused) == {"reports/fairness_report.html", "reports/leak.json", "reports/linked.csv"}
    assert "row(s) of the reference data" in result.refused["reports/leak.json"]
    assert result.removed == ["reports/fairness_report.html"]
    stored = _mirrored(s3_env, prefix)
    assert "reports/leak.json" not in stored and "reports/fairness_report.html" not in stored
    assert not any(b"Black" in data and b"1830.5" in data for data in stored.values())


def test_a_deleted_report_leaves_the_mirror_and_unchanged_files_are_not_uploaded_again(tmp_path, target, s3_env):
    paths = _publication(tmp_path)
    upath, prefix = target
    scan = row_scan(RowIndex([DATA], key_columns=FEATURES))
    mirror(paths.published_dir, upath, scan)
    (paths.published_dir / "reports" / "shap_summary.png").unlink()
    (paths.published_dir / "reports" / "fairness_report.json").write_text('{"demographic_parity_difference": 0.05}')
    result = mirror(paths.published_dir, upath, scan)
    assert result.removed == ["reports/shap_summary.png"]
    assert result.uploaded == ["reports/fairness_report.json"]
    assert sorted(result.unchanged) == [n for n in SERVED if n not in result.uploaded + result.removed]
    assert sorted(_mirrored(s3_env, prefix)) == [n for n in SERVED if n != "reports/shap_summary.png"]


def test_a_file_that_cannot_be_scanned_is_kept_here(tmp_path, target, s3_env):
    paths = _publication(tmp_path)
    (paths.published_dir / "reports" / "broken.parquet").write_bytes(b"not parquet")
    upath, prefix = target
    result = mirror(paths.published_dir, upath, row_scan(RowIndex([DATA], key_columns=FEATURES)))
    assert result.refused["reports/broken.parquet"].startswith("could not be scanned")
    assert "reports/broken.parquet" not in _mirrored(s3_env, prefix)


def _team(s3_env, store: str) -> Profile:
    return Profile(name="team", object_store_url=store, s3_endpoint_url=s3_env.endpoint_url)


def test_mirror_publication_scans_against_the_data_layers_in_the_object_store(tmp_path, s3_env):
    """The call the audit makes: reference rows come from the object store's data/ layout (the team
    IO manager's), the mirror goes to <object store>/published."""
    store = s3_env.url(f"team-{uuid.uuid4().hex[:8]}")
    paths = _publication(tmp_path)
    (paths.published_dir / "reports" / "leak.html").write_text(DATA.iloc[[2]].to_html(index=False))
    buffer = io.BytesIO()
    DATA.to_parquet(buffer, index=False)
    prefix = store.removeprefix(f"s3://{s3_env.bucket}/")
    s3_env.client().put_object(
        Bucket=s3_env.bucket, Key=f"{prefix}/data/validated/validated_data.parquet", Body=buffer.getvalue()
    )
    result = mirror_publication(paths, FEATURES, _team(s3_env, store))
    assert "reports/leak.html" in result.refused and sorted(result.uploaded) == SERVED
    assert sorted(k.removeprefix(f"{prefix}/published/") for k in s3_env.keys(f"{prefix}/published/")) == SERVED


def test_without_any_data_layer_nothing_is_mirrored(tmp_path, s3_env):
    store = s3_env.url(f"team-{uuid.uuid4().hex[:8]}")
    result = mirror_publication(_publication(tmp_path), FEATURES, _team(s3_env, store))
    assert result.uploaded == [] and set(SERVED) <= set(result.refused)
    assert s3_env.keys(store.removeprefix(f"s3://{s3_env.bucket}/")) == []


def test_the_local_profile_mirrors_nothing(tmp_path):
    assert mirror_publication(_publication(tmp_path), FEATURES, Profile()) is None
