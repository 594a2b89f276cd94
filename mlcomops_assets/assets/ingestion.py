"""Ingestion: the configured source copied into ``data/raw`` and versioned by its DVC md5."""

from typing import Any

import dagster as dg

from mlcomops_assets.constants import DATA, RAW_DATA
from mlcomops_assets.lib.files import file_md5
from mlcomops_assets.resources import ProjectResource


@dg.asset(
    key=RAW_DATA,
    group_name=DATA,
    kinds={"pandas", "dvc"},
    code_version="1",
    tags={"compliance/personal_data": "raw", "compliance/layer": "raw"},
)
def raw_data(context: dg.AssetExecutionContext, project: ProjectResource) -> dg.MaterializeResult:
    """The raw dataset, ingested byte for byte from the source named in the policy.

    It is stored as ``data/raw/source.<ext>`` and tracked by DVC; the file's MD5 (the hash DVC records)
    is this asset's data version, so every downstream materialization records which raw data it
    came from. Nothing here judges the data: the data-contract checks on this asset do that.
    """
    from mlcomops_assets.lib.sources import SourceError, ingest_source, read_raw

    policy = project.policy()
    paths = project.paths
    target = paths.raw_file(policy.data.source.suffix)
    try:
        ingest_source(policy.data, paths.home, target)
    except SourceError as exc:
        raise dg.Failure(description=str(exc)) from None
    for stale in paths.raw_dir.glob("source.*"):
        if stale != target:
            stale.unlink()  # one source file at a time, so DVC's data/raw holds exactly one version
    md5 = file_md5(target)
    metadata: dict[str, Any] = {
        "dvc_md5": md5,
        "path": dg.MetadataValue.path(str(target)),
        "size_bytes": target.stat().st_size,
        "source": policy.data.source.kind if policy.data.source.kind != "file" else str(policy.data.source.path),
        "dataset": policy.data.name,
        "purpose": policy.data.purpose,
        "legal_basis": policy.data.legal_basis,
    }
    try:
        frame = read_raw(target, policy.data)
        metadata["dagster/row_count"] = len(frame)
        metadata["columns"] = ", ".join(map(str, frame.columns))
    except SourceError as exc:
        # Unreadable files are still ingested and versioned; the contract checks report them.
        context.log.warning(f"raw file ingested but not readable: {exc}")
        metadata["readable"] = False
    context.log.info(f"ingested {policy.data.name} -> {target.name} (md5 {md5})")
    return dg.MaterializeResult(data_version=dg.DataVersion(md5), metadata=metadata)
