"""Deterministic synthetic workloads of any size, made from the real arrests rows.

Rows are resampled with replacement within each year (so the time structure, and with it the
training/production split and the production batches, scale alike), categories are kept as they are
(so the group mix is the real one), and the numbers get small noise: age +-2 years, checks +-1, each
clipped to the contract's range. The same size and seed always give the same file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def synthesize(rows: int, seed: int = 20240601) -> pd.DataFrame:
    from sklego.datasets import load_arrests

    real = load_arrests(as_frame=True)
    if rows == len(real):
        return real
    rng = np.random.default_rng(seed)
    shares = real["year"].value_counts(normalize=True).sort_index()
    counts = np.floor(shares.to_numpy() * rows).astype(int)
    counts[-1] += rows - counts.sum()  # exact total
    parts = []
    for year, n in zip(shares.index, counts, strict=True):
        pool = real[real["year"] == year]
        parts.append(pool.iloc[rng.integers(0, len(pool), n)])
    out = pd.concat(parts, ignore_index=True)
    out["age"] = np.clip(out["age"].to_numpy() + rng.integers(-2, 3, len(out)), 12, 90)
    out["checks"] = np.clip(out["checks"].to_numpy() + rng.integers(-1, 2, len(out)), 0, 10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", type=int)
    parser.add_argument("target", type=Path)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    synthesize(args.rows, args.seed).to_csv(args.target, index=False)


if __name__ == "__main__":
    main()
