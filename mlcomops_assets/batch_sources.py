"""Which data source a production batch was recorded under, read back from the Dagster instance.

``production_batch`` records ``lib.batches.source_identity`` as materialization metadata; training (which
batches to learn from) and the summary (which monitored batches belong to the current source) read it
back here. It queries the Dagster instance, so it lives outside ``lib/`` (which imports no Dagster), and
outside ``assets/`` because asset modules do not import each other.
"""

from __future__ import annotations

import dagster as dg

from mlcomops_assets.constants import PRODUCTION_BATCH
from mlcomops_assets.lib.batches import DATA_SOURCE_KEY


def recorded_source(instance: dg.DagsterInstance, key: str, before_storage_id: int | None = None) -> str | None:
    """The data source recorded on batch ``key``'s latest production_batch materialization (the one before
    ``before_storage_id`` when given, i.e. the batch a later step read); None when none was recorded."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=PRODUCTION_BATCH, asset_partitions=[key], before_storage_id=before_storage_id),
        limit=1,
    ).records
    metadata = records[0].asset_materialization.metadata if records else {}
    return metadata[DATA_SOURCE_KEY].value if DATA_SOURCE_KEY in metadata else None
