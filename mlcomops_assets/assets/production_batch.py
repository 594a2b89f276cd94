"""Production batches: each batch validated with the data contract (or quarantined) before anything uses it.

This is data, not production: model_candidates reads the validated batches' labels for retraining, so
the batches belong to the data group that the model is built from.
"""

from typing import TYPE_CHECKING

import dagster as dg

from mlcomops_assets.constants import DATA, PRODUCTION_BATCH, PRODUCTION_BATCHES, PRODUCTION_DATA
from mlcomops_assets.lib.batches import (
    DATA_SOURCE_KEY,
    batch_rules,
    inbox_files,
    labeled_rows,
    quarantine,
    source_identity,
)
from mlcomops_assets.lib.files import file_md5
from mlcomops_assets.resources import ProjectResource

if TYPE_CHECKING:
    import pandas as pd

_SUITE = "production_batch_contract"


def _from_inbox(context: dg.AssetExecutionContext, path, project: ProjectResource) -> "tuple[pd.DataFrame, dict]":
    """Read and validate an inbox file; a refused file is quarantined and the step fails."""
    from mlcomops_assets.lib.gx_validation import blocking_failures, unreadable, validate
    from mlcomops_assets.lib.pseudonyms import PseudonymKeyError, protect_identifiers
    from mlcomops_assets.lib.sources import SourceError, read_raw, typed

    policy = project.policy()
    md5 = file_md5(path)
    try:
        frame = read_raw(path, policy.data)
        rules = batch_rules(policy, project.paths.home, labeled=policy.data.target in frame.columns)
        results = validate(frame, rules, _SUITE).results
    except SourceError as exc:
        frame, results = None, unreadable(batch_rules(policy, project.paths.home, labeled=True), str(exc))
    failures = blocking_failures(results)
    if frame is None or failures:
        moved = quarantine(path, project.paths.quarantine_dir, [f.message for f in failures])
        raise dg.Failure(
            description=f"batch {context.partition_key} ({path.name}) breaks {len(failures)} rule(s) of the data "
            f"contract and was moved to {moved.relative_to(project.paths.home)}; nothing was scored:\n"
            + "\n".join(f"  - {f.message}" for f in failures[:20]),
            metadata={"failed_rules": ", ".join(f.rule for f in failures), "file_md5": md5},
        )
    try:
        out, _ = protect_identifiers(typed(frame, policy.data), policy)
    except PseudonymKeyError as exc:
        raise dg.Failure(description=str(exc)) from None
    return out, {"source": f"inbox/{path.name}", "file_md5": md5, "rules_passed": len(results)}


@dg.asset(
    key=PRODUCTION_BATCH,
    ins={"production": dg.AssetIn(key=PRODUCTION_DATA)},
    partitions_def=PRODUCTION_BATCHES,
    group_name=DATA,
    kinds={"pandas", "parquet", "greatexpectations"},
    code_version="1",
    tags={"compliance/personal_data": "pseudonymous", "compliance/layer": "validated"},
)
def production_batch(context: dg.AssetExecutionContext, production, project: ProjectResource):
    """One production batch, validated and typed like the training data: a file from the inbox
    (``monitoring.inbox``, CSV or Parquet, named after the batch), or a period of the data after the
    training cutoff (only when the policy names a time column; without one, every batch is an inbox file).
    The batch records which data source it belongs to (dataset name, location, hash of the declared
    columns), so a summary after a switch of dataset lists only the current source's batches.
    The batch is written only after it passed the data contract (write-audit-publish):
    a file that breaks it fails this step with each failed rule, column and row count, is moved to
    ``data/quarantine/`` with a note of the failed rules (names and counts, never values), and nothing
    downstream runs for it."""
    from mlcomops_assets.lib.splitting import BATCH_COLUMN

    key = context.partition_key
    policy = project.policy()
    files = inbox_files(project.paths.home / policy.monitoring.inbox)
    if key in files:
        frame, provenance = _from_inbox(context, files[key], project)
    else:
        frame = production[production[BATCH_COLUMN].astype(str) == key].drop(columns=[BATCH_COLUMN])
        if frame.empty:
            where = (
                "no production period of that name"
                if policy.data.has_time
                else "the data has no time column, so batches come from the inbox only"
            )
            raise dg.Failure(description=f"batch {key}: no file of that name in {policy.monitoring.inbox}, and {where}")
        provenance = {"source": "production_data", "file_md5": "", "rules_passed": 0}
        frame = frame.reset_index(drop=True)
    return dg.Output(
        frame,
        metadata={
            "dagster/row_count": len(frame),
            "labeled_rows": len(labeled_rows(frame, policy)),
            "source": provenance["source"],
            "file_md5": provenance["file_md5"],
            "contract_rules_passed": provenance["rules_passed"],
            DATA_SOURCE_KEY: source_identity(policy.data),
        },
    )
