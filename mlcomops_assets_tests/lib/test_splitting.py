"""Splits: by time (training/holdout up to the cutoff, production batches after), or without a time
column (a stratified, seeded split of all rows and no production rows); always seeded."""

import pandas as pd
import pytest

from mlcomops_assets.lib.splitting import BATCH_COLUMN, split_data, stratification_gaps
from mlcomops_assets.policy import parse_policy


def test_splits_respect_the_cutoff(arrests, policy):
    splits = split_data(arrests, policy)
    assert splits.training["year"].max() <= 2000 and splits.holdout["year"].max() <= 2000
    assert splits.production["year"].min() == 2001
    assert len(splits.training) + len(splits.holdout) + len(splits.production) == len(arrests)
    assert sorted(splits.production[BATCH_COLUMN].unique()) == ["2001", "2002"]
    share = len(splits.holdout) / (len(splits.training) + len(splits.holdout))
    assert abs(share - policy.split.holdout_fraction) < 0.01


def test_splits_are_reproducible(arrests, policy):
    first, second = split_data(arrests, policy), split_data(arrests, policy)
    pd.testing.assert_frame_equal(first.holdout, second.holdout)


def test_date_time_column_batches_by_month(policy):
    raw = policy.model_dump()
    raw["data"]["columns"]["year"] = {"role": "time", "dtype": "string"}
    raw["data"]["training_cutoff"] = "2024-02-29"

    dated = parse_policy(raw)
    frame = pd.DataFrame(
        {
            "year": ["2024-01-05", "2024-02-10", "2024-03-01", "2024-04-20"] * 5,
            "released": ["Yes", "No"] * 10,
        }
    )
    splits = split_data(frame, dated)
    assert sorted(splits.production[BATCH_COLUMN].unique()) == ["2024-03", "2024-04"]
    assert len(splits.training) + len(splits.holdout) == 10


def _without_time(policy, **changes):
    raw = policy.model_dump()
    del raw["data"]["columns"]["year"]
    raw["data"]["time_column"] = None
    raw["data"]["training_cutoff"] = None
    for key, value in changes.items():
        section, name = key.split("__")
        if section == "top":
            raw[name] = value
        else:
            raw[section][name] = value
    return parse_policy(raw)


@pytest.fixture(scope="module")
def untimed(arrests):
    return arrests.drop(columns="year")


def test_without_time_column_every_row_is_split_and_production_is_empty(untimed, policy):
    no_time = _without_time(policy)
    splits = split_data(untimed, no_time)
    assert len(splits.training) + len(splits.holdout) == len(untimed)
    assert len(splits.production) == 0
    assert list(splits.production.columns) == list(untimed.columns) + [BATCH_COLUMN]
    # Disjoint positions that cover every row: no row is both trained on and held out.
    assert set(splits.training_positions).isdisjoint(splits.holdout_positions)
    assert sorted([*splits.training_positions, *splits.holdout_positions]) == list(range(len(untimed)))
    expected = len(untimed) * no_time.split.holdout_fraction
    assert abs(len(splits.holdout) - expected) <= 1


def test_without_time_column_the_split_is_stratified_within_one_row(untimed, policy):
    shares = untimed["released"].value_counts(normalize=True)
    # Several seeds: one seed's unstratified split can land within a row by chance (the policy's does).
    for seed in (policy.seed, 0, 2, 3):
        splits = split_data(untimed, _without_time(policy, top__seed=seed))
        holdout = splits.holdout["released"].value_counts()
        for label, share in shares.items():
            assert abs(holdout[label] - share * len(splits.holdout)) <= 1, (seed, label)
        assert max(stratification_gaps(splits, "released").values()) <= 1
    # Unstratified splits of the same rows stray further (seed 2: 23 rows): the check tells them apart.
    loose = split_data(untimed, _without_time(policy, split__stratify=False, top__seed=2))
    assert max(stratification_gaps(loose, "released").values()) > 1


def test_without_time_column_the_split_is_seeded(untimed, policy):
    no_time = _without_time(policy)
    first, second = split_data(untimed, no_time), split_data(untimed, no_time)
    pd.testing.assert_frame_equal(first.holdout, second.holdout)
    assert (first.holdout_positions == second.holdout_positions).all()
    other = split_data(untimed, _without_time(policy, top__seed=policy.seed + 1))
    assert set(other.holdout_positions) != set(first.holdout_positions)


def test_without_time_column_the_holdout_fraction_is_respected(untimed, policy):
    splits = split_data(untimed, _without_time(policy, split__holdout_fraction=0.4))
    assert abs(len(splits.holdout) - 0.4 * len(untimed)) <= 1


def _split_the_frame(frame: pd.DataFrame, policy) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The split as it was computed before positions were split instead of rows (the reference)."""
    from sklearn.model_selection import train_test_split

    frame = frame.reset_index(drop=True)
    spec = policy.data
    if spec.has_time:
        times = frame[spec.time_column]
        rows, production = frame.loc[times <= spec.training_cutoff], frame.loc[times > spec.training_cutoff].copy()
    else:
        rows, production = frame, frame.iloc[0:0]
    target = rows[spec.target]
    stratify = target if policy.split.stratify and target.nunique() > 1 else None
    training, holdout = train_test_split(
        rows, test_size=policy.split.holdout_fraction, random_state=policy.seed, stratify=stratify
    )
    return training.sort_index(), holdout.sort_index(), production


@pytest.mark.parametrize("variant", ["time", "no time", "no time, not stratified", "shuffled index, missing time"])
def test_splitting_positions_gives_the_rows_splitting_the_frame_gives(arrests, policy, variant):
    """Splitting positions (one copy of each set, for memory at 10M rows) selects exactly the rows, in the
    same order, that splitting the frame did; the recorded positions are those rows' places in the data."""
    chosen, frame = policy, arrests
    if variant.startswith("no time"):
        chosen, frame = _without_time(policy, split__stratify=variant == "no time"), arrests.drop(columns="year")
    if variant.startswith("shuffled"):
        frame = arrests.sample(frac=1.0, random_state=3).astype({"year": "float64"})
        frame.iloc[[5, 50, 500], frame.columns.get_loc("year")] = float("nan")
    splits = split_data(frame, chosen)
    training, holdout, production = _split_the_frame(frame, chosen)
    for found, expected in ((splits.training, training), (splits.holdout, holdout)):
        pd.testing.assert_frame_equal(found, expected.reset_index(drop=True))
    assert splits.training_positions.tolist() == training.index.tolist()
    assert splits.holdout_positions.tolist() == holdout.index.tolist()
    assert len(splits.production) == len(production)
    if variant.startswith("shuffled"):
        assert len(splits.training) + len(splits.holdout) + len(splits.production) == len(frame) - 3
