"""Preparation: training and holdout sets up to the training cutoff, production batches after it."""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from mlcomops_assets.assets.ingestion import RAW_MD5_ATTR
from mlcomops_assets.assets.publish_gate import blocking_failed, publish_on_pass
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
from mlcomops_assets.lib.splitting import BATCH_COLUMN, SplitError, split_by_time, split_problems
from mlcomops_assets.resources import ProjectResource

_TAGS = {"compliance/personal_data": "pseudonymous", "compliance/layer": "prepared"}


def _class_counts(frame: pd.DataFrame, target: str) -> str:
    return ", ".join(f"{k}: {v}" for k, v in frame[target].value_counts().sort_index().items())


def _out(key: dg.AssetKey, description: str) -> dg.AssetOut:
    return dg.AssetOut(
        key=key,
        group_name=PREPARATION,
        kinds={"pandas", "parquet"},
        code_version="2",
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
    Each production period is registered as a partition of the monitoring assets.

    Write-audit-publish: the splits are computed in memory and both checks evaluated first; the files
    under data/prepared/ are replaced only when both pass, so a failed split leaves the last good sets."""
    policy = project.policy()
    spec = policy.data
    try:
        splits = split_by_time(validated, policy)
    except SplitError as exc:
        failed = dg.AssetCheckResult(
            check_name=SPLITS_ARE_USABLE, asset_key=TRAINING_DATA, passed=False, description=str(exc)
        )
        yield from publish_on_pass("the prepared data", [], [failed])
        return
    raw_md5 = validated.attrs.get(RAW_MD5_ATTR, "unknown")
    for frame in (splits.training, splits.holdout, splits.production):
        frame.attrs[RAW_MD5_ATTR] = raw_md5
    checks = [_usable_check(splits, spec.target), _leakage_check(splits, policy)]
    if blocking_failed(checks):
        yield from publish_on_pass("the prepared data", [], checks)
        return

    batches = splits.production[BATCH_COLUMN].value_counts().sort_index()
    # Each production period becomes a partition of the monitoring assets (inbox files add their own).
    new_keys = [
        str(b) for b in batches.index if not context.instance.has_dynamic_partition(PRODUCTION_BATCHES.name, str(b))
    ]
    if new_keys:
        context.instance.add_dynamic_partitions(PRODUCTION_BATCHES.name, new_keys)
    yield from publish_on_pass("the prepared data", _outputs(splits, batches, policy, raw_md5), checks)


def _outputs(splits, batches: pd.Series, policy, raw_md5: str) -> list[dg.Output]:
    spec = policy.data
    common = {"raw_data_md5": raw_md5, "training_cutoff": str(spec.training_cutoff), "seed": policy.seed}
    return [
        dg.Output(
            splits.training,
            output_name=TRAINING_DATA.path[-1],
            metadata={
                **common,
                "dagster/row_count": len(splits.training),
                "class_counts": _class_counts(splits.training, spec.target),
            },
        ),
        dg.Output(
            splits.holdout,
            output_name=HOLDOUT_DATA.path[-1],
            metadata={
                **common,
                "dagster/row_count": len(splits.holdout),
                "class_counts": _class_counts(splits.holdout, spec.target),
            },
        ),
        dg.Output(
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
        ),
    ]


def _usable_check(splits, target: str) -> dg.AssetCheckResult:
    problems = split_problems(splits, target)
    return dg.AssetCheckResult(
        check_name=SPLITS_ARE_USABLE,
        asset_key=TRAINING_DATA,
        passed=not problems,
        description="; ".join(problems) or "training and holdout both hold both classes",
        metadata={"training_rows": len(splits.training), "holdout_rows": len(splits.holdout)},
    )


def _leakage_check(splits, policy) -> dg.AssetCheckResult:
    """Counts against the policy's cutoff, not the latest or earliest time itself (a cell value)."""
    spec = policy.data
    column, cutoff = spec.time_column, spec.training_cutoff

    def as_times(values: pd.Series):
        if pd.api.types.is_numeric_dtype(values):
            return values, cutoff
        return pd.to_datetime(values), pd.Timestamp(cutoff)

    past = pd.concat([splits.training[column], splits.holdout[column]])
    past_times, limit = as_times(past)
    production_times, _ = as_times(splits.production[column])
    late, early = int((past_times > limit).sum()), int((production_times <= limit).sum())
    return dg.AssetCheckResult(
        check_name=NO_TIME_LEAKAGE,
        asset_key=PRODUCTION_DATA,
        passed=not (late or early),
        description=f"{late} training/holdout row(s) after data.training_cutoff={cutoff}, {early} production "
        "row(s) at or before it",
        metadata={"past_rows_after_cutoff": late, "production_rows_before_cutoff": early},
    )
