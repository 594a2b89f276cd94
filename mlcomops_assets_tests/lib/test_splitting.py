"""Time-based splits: training/holdout up to the cutoff, production batches after, seeded."""

import pandas as pd

from mlcomops_assets.lib.splitting import BATCH_COLUMN, split_by_time


def test_splits_respect_the_cutoff(arrests, policy):
    splits = split_by_time(arrests, policy)
    assert splits.training["year"].max() <= 2000 and splits.holdout["year"].max() <= 2000
    assert splits.production["year"].min() == 2001
    assert len(splits.training) + len(splits.holdout) + len(splits.production) == len(arrests)
    assert sorted(splits.production[BATCH_COLUMN].unique()) == ["2001", "2002"]
    share = len(splits.holdout) / (len(splits.training) + len(splits.holdout))
    assert abs(share - policy.split.holdout_fraction) < 0.01


def test_splits_are_reproducible(arrests, policy):
    first, second = split_by_time(arrests, policy), split_by_time(arrests, policy)
    pd.testing.assert_frame_equal(first.holdout, second.holdout)


def test_date_time_column_batches_by_month(policy):
    raw = policy.model_dump()
    raw["data"]["columns"]["year"] = {"role": "time", "dtype": "string"}
    raw["data"]["training_cutoff"] = "2024-02-29"
    from mlcomops_assets.policy import parse_policy

    dated = parse_policy(raw)
    frame = pd.DataFrame(
        {
            "year": ["2024-01-05", "2024-02-10", "2024-03-01", "2024-04-20"] * 5,
            "released": ["Yes", "No"] * 10,
        }
    )
    splits = split_by_time(frame, dated)
    assert sorted(splits.production[BATCH_COLUMN].unique()) == ["2024-03", "2024-04"]
    assert len(splits.training) + len(splits.holdout) == 10
