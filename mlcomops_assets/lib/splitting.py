"""Splitting the validated data into training, holdout and production rows.

With a time column (``data.time_column``): rows up to ``data.training_cutoff`` are split into training
and holdout, later rows are production batches, one per period. Without one, training and holdout are a
stratified, seeded split of all rows and there is no production period: batches come from the inbox only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
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
    # Positions of the training and holdout rows in the split frame: what the split audit checks
    # (rows may legitimately repeat in the data, so their values cannot tell two rows apart).
    training_positions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    holdout_positions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))


def batch_labels(times: pd.Series) -> pd.Series:
    """A production batch per time value: the year (or number) itself, or the month for dates."""
    if pd.api.types.is_numeric_dtype(times):
        return times.map(lambda v: str(int(v)) if float(v).is_integer() else str(v))
    return pd.to_datetime(times).dt.to_period("M").astype(str)


def no_production(frame: pd.DataFrame) -> pd.DataFrame:
    """No production rows, with the columns production rows would have (the data's and the batch)."""
    empty = frame.iloc[0:0].copy()
    empty[BATCH_COLUMN] = pd.Series(dtype=object)
    return empty


def split_data(frame: pd.DataFrame, policy: Policy) -> Splits:
    """Training, holdout and production rows: by time when the policy names a time column, else a
    stratified, seeded split of all rows with no production rows.

    Positions are split, not the frame: each set is copied out of the frame once (at 10M rows a split
    of the frame itself, then its sorting and re-indexing, held three copies of every row at once)."""
    if not frame.index.equals(pd.RangeIndex(len(frame))):
        frame = frame.reset_index(drop=True)  # the index is the row's position, which the audit relies on
    if not policy.data.has_time:
        return _train_holdout(frame, np.arange(len(frame)), no_production(frame), policy, "in the validated data")
    spec = policy.data
    times = frame[spec.time_column]
    cutoff = spec.training_cutoff
    if not pd.api.types.is_numeric_dtype(times):
        times, cutoff = pd.to_datetime(times), pd.Timestamp(cutoff)
    production = frame.loc[times > cutoff].copy()
    production[BATCH_COLUMN] = batch_labels(production[spec.time_column])
    where = f"at or before data.training_cutoff={spec.training_cutoff}"
    # Rows whose time is missing are in neither set (they compare false both ways), as before.
    return _train_holdout(frame, np.flatnonzero((times <= cutoff).to_numpy()), production, policy, where)


def _rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """The rows at ``positions`` (sorted), as a new frame indexed 0..n-1."""
    out = frame.take(positions)
    out.index = pd.RangeIndex(len(out))
    return out


def _train_holdout(
    frame: pd.DataFrame, positions: np.ndarray, production: pd.DataFrame, policy: Policy, where: str
) -> Splits:
    """Split the rows of ``frame`` at ``positions`` into training and holdout (stratified by label when
    the policy says so, seeded)."""
    from sklearn.model_selection import train_test_split

    target = policy.data.target
    if len(positions) < LABELS_NEEDED:
        raise SplitError(f"only {len(positions)} row(s) {where}: nothing to train on")
    labels = frame[target].take(positions)
    smallest = int(labels.value_counts().min())
    stratify = labels if policy.split.stratify and labels.nunique() > 1 else None
    if stratify is not None and smallest < LABELS_NEEDED:
        # scikit-learn would raise with its own wording; say it with counts and the policy's names.
        raise SplitError(
            f"the rarest label class has {smallest} row(s) {where}: a stratified holdout needs at least {LABELS_NEEDED}"
        )
    # The same split as of the rows themselves: scikit-learn draws it from the row count and the labels.
    training, holdout = train_test_split(
        positions, test_size=policy.split.holdout_fraction, random_state=policy.seed, stratify=stratify
    )
    training.sort()
    holdout.sort()
    return Splits(
        training=_rows(frame, training),
        holdout=_rows(frame, holdout),
        production=production.reset_index(drop=True),
        training_positions=training,
        holdout_positions=holdout,
    )


def stratification_gaps(splits: Splits, target: str) -> dict[str, float]:
    """Per label class: how many rows the holdout is off the count its share of all split rows implies.
    A stratified split keeps each within one row (rounding); counts only, no values of other columns."""
    both = pd.concat([splits.training[target], splits.holdout[target]])
    expected = both.value_counts() * len(splits.holdout) / max(len(both), 1)
    actual = splits.holdout[target].value_counts().reindex(expected.index, fill_value=0)
    return {str(k): round(float(abs(actual[k] - expected[k])), 3) for k in expected.index}


def split_problems(splits: Splits, target: str) -> list[str]:
    """Why the training or holdout set is unusable (empty, or fewer than both label classes); counts only."""
    problems = []
    for name, frame in (("training", splits.training), ("holdout", splits.holdout)):
        classes = frame[target].nunique()
        if len(frame) == 0 or classes < LABELS_NEEDED:
            problems.append(f"{name}: {len(frame)} rows, {classes} class(es)")
    return problems
