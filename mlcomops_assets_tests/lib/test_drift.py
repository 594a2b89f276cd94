"""Drift methods are pinned: small and large batches use the same statistic, and real shifts are found."""

from mlcomops_assets.lib.drift import drift_report
from mlcomops_assets.lib.splitting import split_data


def test_pinned_methods_and_detected_shift(arrests, policy, tmp_path):
    splits = split_data(arrests, policy)
    small = splits.production[
        splits.production["batch"] == "2002"
    ]  # 277 rows: Evidently's auto mode would use p-values
    same = drift_report(splits.training, small, policy, tmp_path / "small.html")
    assert {c["method"] for c in same["columns"]} == {"wasserstein", "jensenshannon"}
    assert same["dataset_drift"] is False
    shifted = small.assign(age=small["age"] + 15, colour="Black", employed="No")
    moved = drift_report(splits.training, shifted, policy, tmp_path / "shifted.html")
    drifted = {c["column"] for c in moved["columns"] if c["drifted"]}
    assert {"age", "colour", "employed"} <= drifted
    assert moved["dataset_drift"] is True
    html = (tmp_path / "shifted.html").read_text()
    assert '<script src="http' not in html and len(html) > 100_000
