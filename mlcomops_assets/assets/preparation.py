"""Preparation: training and holdout sets, and the production periods of the data (if it has a time column).

With ``data.time_column``, rows up to the training cutoff are split into training and holdout and later rows
are production batches. Without one, training and holdout are a stratified, seeded split of all rows, and
production_data is empty: production batches then come from the inbox only.
"""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg

from mlcomops_assets.constants import (
    DATA,
    HOLDOUT_DATA,
    NO_TIME_LEAKAGE,
    PRODUCTION_BATCHES,
    PRODUCTION_DATA,
    RAW_MD5_ATTR,
    SPLITS_ARE_USABLE,
    TRAINING_DATA,
    VALIDATED_DATA,
)
from mlcomops_assets.publish_gate import blocking_failed, publish_on_pass
from mlcomops_assets.resources import ProjectResource

if TYPE_CHECKING:
    import pandas as pd

_TAGS = {"compliance/personal_data": "pseudonymous", "compliance/layer": "prepared"}


def _class_counts(frame: "pd.DataFrame", target: str) -> str:
    return ", ".join(f"{k}: {v}" for k, v in frame[target].value_counts().sort_index().items())


def _out(key: dg.AssetKey, description: str) -> dg.AssetOut:
    return dg.AssetOut(
        key=key,
        group_name=DATA,
        kinds={"pandas", "parquet"},
        code_version="2",
        description=description,
        tags=_TAGS,
    )


@dg.multi_asset(
    outs={
        key.path[-1]: _out(key, description)
        for key, description in (
            (
                TRAINING_DATA,
                "Rows used to fit the model (stratified by label): those up to the training cutoff, or all "
                "rows when the data has no time column.",
            ),
            (
                HOLDOUT_DATA,
                "Rows held out for evaluation and fairness testing, from the same rows as the training data.",
            ),
            (
                PRODUCTION_DATA,
                "Rows after the training cutoff, labelled by production batch, for monitoring; empty when the "
                "data has no time column (production batches then come from the inbox only).",
            ),
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
            description="With a time column: no training or holdout row is later than the cutoff and no "
            "production row is earlier. Without one (no time-based check is possible): training and holdout "
            "are disjoint, cover every validated row and are stratified by label, and there is no production row.",
        ),
    ],
    can_subset=False,
)
def data_splits(
    context: dg.AssetExecutionContext, validated, project: ProjectResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Split the validated data: by time when the policy names a time column (training/holdout up to the
    cutoff, production after, each production period registered as a partition of the monitoring
    assets), else a stratified, seeded training/holdout split of all rows and no production rows.

    Write-audit-publish: the splits are computed in memory and both checks evaluated first; the files
    under data/prepared/ are replaced only when both pass, so a failed split leaves the last good sets."""
    from mlcomops_assets.lib.splitting import BATCH_COLUMN, SplitError, split_data

    policy = project.policy()
    spec = policy.data
    try:
        splits = split_data(validated, policy)
    except SplitError as exc:
        failed = dg.AssetCheckResult(
            check_name=SPLITS_ARE_USABLE, asset_key=TRAINING_DATA, passed=False, description=str(exc)
        )
        yield from publish_on_pass("the prepared data", [], [failed])
        return
    raw_md5 = validated.attrs.get(RAW_MD5_ATTR, "unknown")
    for frame in (splits.training, splits.holdout, splits.production):
        frame.attrs[RAW_MD5_ATTR] = raw_md5
    leakage = _leakage_check(splits, policy) if spec.has_time else _no_time_check(splits, policy, len(validated))
    checks = [_usable_check(splits, spec.target), leakage]
    if blocking_failed(checks):
        yield from publish_on_pass("the prepared data", [], checks)
        return

    batches = splits.production[BATCH_COLUMN].value_counts().sort_index()
    # Each production period becomes a partition of the monitoring assets (inbox files add their own);
    # without a time column there is none.
    new_keys = [
        str(b) for b in batches.index if not context.instance.has_dynamic_partition(PRODUCTION_BATCHES.name, str(b))
    ]
    if new_keys:
        context.instance.add_dynamic_partitions(PRODUCTION_BATCHES.name, new_keys)
    yield from publish_on_pass("the prepared data", _outputs(splits, batches, policy, raw_md5), checks)


def _outputs(splits, batches: "pd.Series", policy, raw_md5: str) -> list[dg.Output]:
    spec = policy.data
    common = {
        "raw_data_md5": raw_md5,
        "training_cutoff": str(spec.training_cutoff) if spec.has_time else "none (no time column)",
        "split": (
            f"by time: rows with {spec.time_column} <= {spec.training_cutoff} train and hold out, later rows "
            "are production batches"
            if spec.has_time
            else "stratified, seeded split of all rows (no time column); production batches come from the inbox only"
        ),
        "seed": policy.seed,
    }
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
    from mlcomops_assets.lib.splitting import split_problems

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
    import pandas as pd

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


def _no_time_check(splits, policy, validated_rows: int) -> dg.AssetCheckResult:
    """Without a time column nothing can be checked against a cutoff; what is checked instead is that the
    split is what the policy says: disjoint training and holdout rows covering every validated row, each
    label class's holdout count within one row of its share (when split.stratify), and no production row."""
    from mlcomops_assets.lib.splitting import stratification_gaps

    target = policy.data.target
    training, holdout = set(splits.training_positions.tolist()), set(splits.holdout_positions.tolist())
    shared = len(training & holdout)
    missing = validated_rows - len(training | holdout)
    gaps = stratification_gaps(splits, target)
    worst = max(gaps.values(), default=0.0)
    # One row of rounding per class is what a stratified split of whole rows can do.
    unstratified = policy.split.stratify and worst > 1
    production = len(splits.production)
    problems = [
        f"{shared} row(s) in both training and holdout" if shared else "",
        f"{missing} validated row(s) in neither training nor holdout" if missing else "",
        f"holdout label counts off their stratified share by up to {worst:g} rows" if unstratified else "",
        f"{production} production row(s) without a time column" if production else "",
    ]
    problems = [p for p in problems if p]
    stratified = (
        f"stratified by {target} (each class within {worst:g} row(s) of its share)"
        if policy.split.stratify
        else "not stratified (split.stratify is false)"
    )
    return dg.AssetCheckResult(
        check_name=NO_TIME_LEAKAGE,
        asset_key=PRODUCTION_DATA,
        passed=not problems,
        description="no time column, so no time-based check was possible; "
        + (
            "; ".join(problems)
            if problems
            else f"verified instead: training ({len(training)} rows) and holdout ({len(holdout)} rows) are "
            f"disjoint and cover all {validated_rows} validated rows, {stratified}, and there are no "
            "production rows (production batches come from the inbox only)"
        ),
        metadata={
            "time_column": "none",
            "rows_in_training_and_holdout": shared,
            "validated_rows_not_split": missing,
            "largest_stratification_gap_rows": worst,
            "production_rows": production,
        },
    )
