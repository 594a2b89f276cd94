"""Preparation: training and holdout sets up to the training cutoff, production batches after it."""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from mlcomops_assets.assets.ingestion import RAW_MD5_ATTR
from mlcomops_assets.constants import (
    HOLDOUT_DATA,
    NO_TIME_LEAKAGE,
    PREPARATION,
    PRODUCTION_BATCHES,
    PRODUCTION_DATA,
    SPLITS_ARE_USABLE,
    TRAINING_DATA,
    VALIDATED_DATA,
)
from mlcomops_assets.lib.splitting import BATCH_COLUMN, split_by_time
from mlcomops_assets.resources import ProjectResource

_TAGS = {"compliance/personal_data": "pseudonymous", "compliance/layer": "prepared"}


def _class_counts(frame: pd.DataFrame, target: str) -> str:
    return ", ".join(f"{k}: {v}" for k, v in frame[target].value_counts().sort_index().items())


def _out(key: dg.AssetKey, description: str) -> dg.AssetOut:
    return dg.AssetOut(
        key=key,
        group_name=PREPARATION,
        kinds={"pandas", "parquet"},
        code_version="1",
        description=description,
        tags=_TAGS,
    )


@dg.multi_asset(
    outs={
        key.path[-1]: _out(key, description)
        for key, description in (
            (TRAINING_DATA, "Rows up to the training cutoff used to fit the model (stratified by label)."),
            (HOLDOUT_DATA, "Rows up to the training cutoff held out for evaluation and fairness testing."),
            (PRODUCTION_DATA, "Rows after the training cutoff, labelled by production batch, for monitoring."),
        )
    },
    ins={"validated": dg.AssetIn(key=VALIDATED_DATA)},
    check_specs=[
        dg.AssetCheckSpec(
            SPLITS_ARE_USABLE,
            asset=TRAINING_DATA,
            blocking=True,
            description="Training and holdout sets are non-empty and both contain both label classes.",
        ),
        dg.AssetCheckSpec(
            NO_TIME_LEAKAGE,
            asset=PRODUCTION_DATA,
            blocking=True,
            description="No training or holdout row is later than the cutoff; no production row is earlier.",
        ),
    ],
    can_subset=False,
)
def data_splits(
    context: dg.AssetExecutionContext, validated: pd.DataFrame, project: ProjectResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Split the validated data by time: training/holdout up to the policy's cutoff, production after.
    Each production period is registered as a partition of the monitoring assets."""
    policy = project.policy()
    spec = policy.data
    splits = split_by_time(validated, policy)
    raw_md5 = validated.attrs.get(RAW_MD5_ATTR, "unknown")
    for frame in (splits.training, splits.holdout, splits.production):
        frame.attrs[RAW_MD5_ATTR] = raw_md5

    common = {"raw_data_md5": raw_md5, "training_cutoff": str(spec.training_cutoff), "seed": policy.seed}
    yield dg.Output(
        splits.training,
        output_name=TRAINING_DATA.path[-1],
        metadata={
            **common,
            "dagster/row_count": len(splits.training),
            "class_counts": _class_counts(splits.training, spec.target),
        },
    )
    yield dg.Output(
        splits.holdout,
        output_name=HOLDOUT_DATA.path[-1],
        metadata={
            **common,
            "dagster/row_count": len(splits.holdout),
            "class_counts": _class_counts(splits.holdout, spec.target),
        },
    )
    batches = splits.production[BATCH_COLUMN].value_counts().sort_index()
    # Each production period becomes a partition of the monitoring assets (inbox files add their own).
    new_keys = [
        str(b) for b in batches.index if not context.instance.has_dynamic_partition(PRODUCTION_BATCHES.name, str(b))
    ]
    if new_keys:
        context.instance.add_dynamic_partitions(PRODUCTION_BATCHES.name, new_keys)
    yield dg.Output(
        splits.production,
        output_name=PRODUCTION_DATA.path[-1],
        metadata={
            **common,
            "dagster/row_count": len(splits.production),
            "batches": dg.MetadataValue.table(
                records=[dg.TableRecord({"batch": str(b), "rows": int(n)}) for b, n in batches.items()],
                schema=dg.TableSchema(columns=[dg.TableColumn("batch", "string"), dg.TableColumn("rows", "int")]),
            ),
        },
    )

    labels_needed = 2
    usable = {
        name: (len(frame), frame[spec.target].nunique())
        for name, frame in (("training", splits.training), ("holdout", splits.holdout))
    }
    problems = [f"{n}: {rows} rows, {k} class(es)" for n, (rows, k) in usable.items() if rows == 0 or k < labels_needed]
    yield dg.AssetCheckResult(
        check_name=SPLITS_ARE_USABLE,
        asset_key=TRAINING_DATA,
        passed=not problems,
        description="; ".join(problems) or "training and holdout both hold both classes",
        metadata={f"{n}_rows": rows for n, (rows, _) in usable.items()},
    )
    times = splits.production[spec.time_column]
    past_times = pd.concat([splits.training[spec.time_column], splits.holdout[spec.time_column]])
    latest_past, earliest_production = past_times.max(), (times.min() if len(times) else None)
    leak = earliest_production is not None and not earliest_production > latest_past
    yield dg.AssetCheckResult(
        check_name=NO_TIME_LEAKAGE,
        asset_key=PRODUCTION_DATA,
        passed=not leak,
        description=(f"latest training/holdout time {latest_past}, earliest production time {earliest_production}"),
        metadata={"latest_training_time": str(latest_past), "earliest_production_time": str(earliest_production)},
    )
