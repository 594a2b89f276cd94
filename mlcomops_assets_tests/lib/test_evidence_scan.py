"""The row scanner finds records in every format the project writes, and not in aggregates."""

import io
import json
import pickle
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest

from mlcomops_assets.lib.evidence_scan import RowIndex, scan_file, scan_folder


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "colour": rng.choice(["White", "Black"], 200),
            "age": rng.integers(12, 67, 200),
            "sex": rng.choice(["Male", "Female"], 200),
            "checks": rng.integers(0, 7, 200),
            "score": rng.normal(size=200).round(6),
        }
    )


class Holder:
    """An object that keeps a table deep inside its state, as an explainer's masker does."""

    def __init__(self, table):
        self.inner = {"masker": [None, {"data": table}]}


def _write(path, writer):
    writer(path)
    return path


def test_every_format_with_rows_is_found(data, tmp_path):
    index = RowIndex([data], key_columns=["colour", "age", "sex", "checks"])
    rows = data.sample(5, random_state=1)
    buffer = io.BytesIO()
    rows.to_parquet(buffer)
    files = [
        _write(tmp_path / "rows.parquet", lambda p: rows.to_parquet(p)),
        _write(tmp_path / "rows.joblib", lambda p: joblib.dump(Holder(rows.to_numpy()[:, [1, 3, 4]].astype(float)), p)),
        _write(tmp_path / "rows.pkl", lambda p: p.write_bytes(pickle.dumps(Holder(rows)))),
        _write(tmp_path / "rows.json", lambda p: p.write_text(json.dumps(rows.to_dict("records"), default=int))),
        _write(tmp_path / "rows.csv", lambda p: rows.to_csv(p, index=False)),
        _write(tmp_path / "rows.html", lambda p: p.write_text(rows.to_html(index=False))),
        _write(
            tmp_path / "rows.zip", lambda p: zipfile.ZipFile(p, "w").writestr("inner/rows.parquet", buffer.getvalue())
        ),
    ]
    for path in files:
        found = scan_file(path, index)
        assert sum(f.rows for f in found) >= 5, f"{path.name}: {found}"


def test_a_skops_model_with_rows_is_found(data, tmp_path):
    import skops.io as sio
    from sklearn.neighbors import KNeighborsClassifier

    numeric = data[["age", "checks", "score"]].astype(float)
    model = KNeighborsClassifier(n_neighbors=3).fit(numeric.to_numpy(), data["sex"])  # keeps its training rows
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    assert sum(f.rows for f in scan_file(path, RowIndex([data]))) >= 100


def test_aggregates_are_not_rows(data, tmp_path):
    index = RowIndex([data], key_columns=["colour", "age", "sex", "checks"])
    summary = data.groupby(["colour", "sex"]).agg(n=("age", "size"), mean_age=("age", "mean")).reset_index()
    (tmp_path / "groups.json").write_text(json.dumps(summary.to_dict("records")))
    (tmp_path / "groups.html").write_text(summary.to_html())
    joblib.dump({"mean": data[["age", "checks", "score"]].mean().to_numpy()}, tmp_path / "mean.joblib")
    summary.to_parquet(tmp_path / "groups.parquet")
    findings, opened = scan_folder(tmp_path, index)
    assert (findings, opened) == ([], 4)


def test_texts_of_reads_structured_and_nested_arrays(tmp_path):
    """Tree models keep structured arrays; a pickled object's strings and tables all become text."""
    from mlcomops_assets.lib.evidence_scan import texts_of

    nodes = np.array([(1, 2.5), (-1, 0.0)], dtype=[("left", "i8"), ("threshold", "f8")])
    joblib.dump(
        {"nodes": nodes, "cube": np.arange(8).reshape(2, 2, 2), "who": "alice@example.org"}, tmp_path / "m.joblib"
    )
    text = b"\n".join(blob for _, blob in texts_of(tmp_path / "m.joblib"))
    assert b"alice@example.org" in text and b"threshold" in text and b"2.5" in text
