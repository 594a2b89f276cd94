"""Splitting the validated data by time: train/holdout up to the cutoff, production batches after it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlcomops_assets.policy import Policy

BATCH_COLUMN = "batch"
LABELS_NEEDED = 2


class SplitError(ValueError):
    """The data passed the contract but cannot be split into usable sets; the message holds counts only."""


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
    if len(past) < LABELS_NEEDED:
        raise SplitError(
            f"only {len(past)} row(s) at or before data.training_cutoff={spec.training_cutoff}: nothing to train on"
        )
    smallest = int(past[spec.target].value_counts().min())
    stratify = past[spec.target] if policy.split.stratify and past[spec.target].nunique() > 1 else None
    if stratify is not None and smallest < LABELS_NEEDED:
        # scikit-learn would raise with its own wording; say it with counts and the policy's names.
        raise SplitError(
            f"the rarest label class has {smallest} row(s) at or before data.training_cutoff="
            f"{spec.training_cutoff}: a stratified holdout needs at least {LABELS_NEEDED}"
        )
    training, holdout = train_test_split(
        past, test_size=policy.split.holdout_fraction, random_state=policy.seed, stratify=stratify
    )
    return Splits(
        training=training.sort_index().reset_index(drop=True),
        holdout=holdout.sort_index().reset_index(drop=True),
        production=production.reset_index(drop=True),
    )


def split_problems(splits: Splits, target: str) -> list[str]:
    """Why the training or holdout set is unusable (empty, or fewer than both label classes); counts only."""
    problems = []
    for name, frame in (("training", splits.training), ("holdout", splits.holdout)):
        classes = frame[target].nunique()
        if len(frame) == 0 or classes < LABELS_NEEDED:
            problems.append(f"{name}: {len(frame)} rows, {classes} class(es)")
    return problems
