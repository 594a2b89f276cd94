"""Splitting the validated data by time: train/holdout up to the cutoff, production batches after it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlcomops_assets.policy import Policy

BATCH_COLUMN = "batch"


@dataclass(frozen=True)
class Splits:
    training: pd.DataFrame
    holdout: pd.DataFrame
    production: pd.DataFrame


def batch_labels(times: pd.Series) -> pd.Series:
    """A production batch per time value: the year (or number) itself, or the month for dates."""
    if pd.api.types.is_numeric_dtype(times):
        return times.map(lambda v: str(int(v)) if float(v).is_integer() else str(v))
    return pd.to_datetime(times).dt.to_period("M").astype(str)


def split_by_time(frame: pd.DataFrame, policy: Policy) -> Splits:
    """Rows up to the training cutoff are split into training and holdout; later rows are production."""
    from sklearn.model_selection import train_test_split

    spec = policy.data
    times = frame[spec.time_column]
    cutoff = spec.training_cutoff
    if not pd.api.types.is_numeric_dtype(times):
        times, cutoff = pd.to_datetime(times), pd.Timestamp(cutoff)
    past = frame.loc[times <= cutoff]
    production = frame.loc[times > cutoff].copy()
    production[BATCH_COLUMN] = batch_labels(production[spec.time_column])
    if len(past) < 2:
        raise ValueError(
            f"only {len(past)} row(s) at or before data.training_cutoff={spec.training_cutoff}: nothing to train on"
        )
    stratify = past[spec.target] if policy.split.stratify and past[spec.target].nunique() > 1 else None
    training, holdout = train_test_split(
        past, test_size=policy.split.holdout_fraction, random_state=policy.seed, stratify=stratify
    )
    return Splits(
        training=training.sort_index().reset_index(drop=True),
        holdout=holdout.sort_index().reset_index(drop=True),
        production=production.reset_index(drop=True),
    )
