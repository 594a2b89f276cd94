"""Outlier watch: the share of scored applications unlike anything the model was trained on.

The pipeline's detector (``data/monitoring/outlier_detector.joblib``) is a pickle whose hash no signed
record carries, so it is not unpickled here either. ``lib.outliers.fit_detector`` is deterministic (the
policy's seed, one job), so the service refits the same IsolationForest from the training reference
(``data/prepared/training_data.parquet``, a Parquet file: loading it runs no code) and compares its
reference outlier share with the one the pipeline recorded (``outlier_detector.json``). Without the
training reference the watch is off and ``/ready`` says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlcomops_assets.policy import Policy
from mlcomops_assets.settings import ProjectPaths

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class OutlierWatch:
    detector: Any | None
    status: dict = field(default_factory=dict)

    def flags(self, frame: pd.DataFrame, policy: Policy) -> list[bool] | None:
        """Per row, whether the detector calls it an outlier; None when the watch is off."""
        if self.detector is None:
            return None
        from mlcomops_assets.lib.modeling import features

        return [bool(v == -1) for v in self.detector.predict(features(frame, policy))]


def build_outlier_watch(paths: ProjectPaths, policy: Policy) -> OutlierWatch:
    from mlcomops_assets.io_manager import read_parquet, stored_value
    from mlcomops_assets.lib.outliers import fit_detector, fit_sample, outlier_share

    # Where the IO manager keeps them: under data/, or in the team profile's object store.
    reference = stored_value(paths.home, "training_data", ".parquet")
    if not reference.is_file():
        return OutlierWatch(None, {"active": False, "reason": f"no training reference at {reference}"})
    frame = read_parquet(reference)
    detector = fit_detector(frame, policy)
    share = outlier_share(detector, fit_sample(frame, policy), policy)
    recorded_file = stored_value(paths.home, "outlier_detector")
    recorded = None
    if recorded_file.is_file():
        recorded = json.loads(recorded_file.read_text(encoding="utf-8")).get("reference_outlier_share")
    status = {
        "active": True,
        "source": "refitted in the service from the training reference with lib.outliers.fit_detector (the "
        "saved detector is not unpickled: no signed record carries its hash)",
        "reference_rows": len(frame),
        "reference_outlier_share": round(share, 5),
        "pipeline_reference_outlier_share": recorded,
        "matches_pipeline_record": None if recorded is None else abs(round(share, 5) - float(recorded)) < 1e-9,
    }
    return OutlierWatch(detector, status)
