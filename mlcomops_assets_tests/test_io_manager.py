"""Asset values are files under data/: Parquet for frames, JSON for records, with clear errors."""

import json

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


@pytest.fixture(params=["local", "object_store"])
def manager(request, tmp_path):
    """Both IO managers: the local data folder and the object store (moto's S3 server as the stand-in)."""
    if request.param == "local":
        return DataFolderIOManager(home=str(tmp_path)), tmp_path / "data"
    from upath import UPath

    from mlcomops_assets.io_manager import ObjectStoreIOManager

    s3 = request.getfixturevalue("s3_env")
    url = s3.url(f"io-{tmp_path.name}/data")
    root = UPath(url, client_kwargs={"endpoint_url": s3.endpoint_url}, use_listings_cache=False)
    return ObjectStoreIOManager(url=url, endpoint_url=s3.endpoint_url), root


def test_same_layout_and_partitions_on_both_stores(manager):
    """The object store holds the same layout as data/: Parquet/JSON by folder, one file per partition;
    loading every partition returns those stored (a dotted key included), a missing one is absent."""
    io_manager, root = manager
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    io_manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey("training_data")), frame)
    io_manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey("trained_model")), {"version": "3"})
    assert (root / "prepared" / "training_data.parquet").exists()
    assert json.loads((root / "models" / "trained_model.json").read_text()) == {"version": "3"}
    pd.testing.assert_frame_equal(
        io_manager.load_input(dg.build_input_context(asset_key=dg.AssetKey("training_data"))), frame
    )
    assert io_manager.load_input(dg.build_input_context(asset_key=dg.AssetKey("trained_model"))) == {"version": "3"}

    keys = ["b1", "b.2", "b3"]
    partitions = dg.StaticPartitionsDefinition(keys)  # the layout is the same as for dynamic batches
    for key, value in (("b1", frame), ("b.2", {"verdict": "ok"})):  # b3: never written (quarantined)
        context = dg.build_output_context(
            asset_key=dg.AssetKey("batch_monitoring"), partition_key=key, asset_partitions_def=partitions
        )
        io_manager.handle_output(context, value)
    assert sorted(p.name for p in (root / "monitoring" / "batch_monitoring").iterdir()) == ["b.2.json", "b1.parquet"]
    upstream = dg.build_output_context(asset_key=dg.AssetKey("batch_monitoring"), asset_partitions_def=partitions)
    context = dg.build_input_context(
        asset_key=dg.AssetKey("batch_monitoring"),
        asset_partitions_def=partitions,
        asset_partition_key_range=dg.PartitionKeyRange("b1", "b3"),
        upstream_output=upstream,
    )
    loaded = io_manager.load_input(context)
    assert sorted(loaded) == ["b.2", "b1"]
    pd.testing.assert_frame_equal(loaded["b1"], frame)
    assert loaded["b.2"] == {"verdict": "ok"}
