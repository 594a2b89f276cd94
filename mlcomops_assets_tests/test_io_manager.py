"""Asset values are files under data/: Parquet for frames, JSON for records, with clear errors."""

import dagster as dg
import pandas as pd
import pytest

from mlcomops_assets.io_manager import DataFolderIOManager


def test_round_trip_and_missing_input(tmp_path):
    manager = DataFolderIOManager(home=str(tmp_path))
    frame = pd.DataFrame({"a": [1, 2]})
    manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey("training_data")), frame)
    manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey("trained_model")), {"version": "3"})
    assert (tmp_path / "data/prepared/training_data.parquet").exists()
    loaded = manager.load_input(dg.build_input_context(asset_key=dg.AssetKey("training_data")))
    pd.testing.assert_frame_equal(loaded, frame)
    assert manager.load_input(dg.build_input_context(asset_key=dg.AssetKey("trained_model"))) == {"version": "3"}
    with pytest.raises(FileNotFoundError, match="holdout_data has not been materialized"):
        manager.load_input(dg.build_input_context(asset_key=dg.AssetKey("holdout_data")))
    with pytest.raises(TypeError, match="cannot store a list"):
        manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey("x")), [1])
