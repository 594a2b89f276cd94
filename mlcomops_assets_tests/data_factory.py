"""Deterministic datasets for tests: a credit-application CSV with its own columns and policy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlcomops_assets_tests.conftest import default_policy


def credit_applications(rows: int = 2400, seed: int = 7) -> pd.DataFrame:
    """Synthetic loan applications over 2023: approval depends on income, debt and tenure."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(mean=10.6, sigma=0.45, size=rows).round(2)
    debt_ratio = rng.beta(2, 5, size=rows).round(4)
    tenure = rng.integers(0, 30, size=rows)
    region = rng.choice(["north", "south", "east", "west"], size=rows, p=[0.3, 0.3, 0.2, 0.2])
    gender = rng.choice(["female", "male"], size=rows)
    logit = 0.9 * (np.log(income) - 10.6) / 0.45 - 4.0 * (debt_ratio - 0.28) + 0.04 * tenure + rng.normal(0, 1, rows)
    approved = np.where(logit > -0.3, "approved", "rejected")
    days = rng.integers(0, 365, size=rows)
    dates = (pd.Timestamp("2023-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")
    return pd.DataFrame(
        {
            "application_id": [f"APP-{i:06d}" for i in range(rows)],
            "application_date": dates,
            "income": income,
            "debt_ratio": debt_ratio,
            "employment_years": tenure,
            "region": region,
            "gender": gender,
            "decision": approved,
        }
    )


def credit_policy(path: str) -> dict[str, Any]:
    """The governance policy describing ``credit_applications`` stored at ``path`` (relative to home)."""
    policy = default_policy()
    policy["data"] = {
        "name": "credit_applications",
        "purpose": "Credit approval model for consumer loans (test fixture).",
        "legal_basis": "GDPR Art. 6(1)(b) - steps prior to entering into a contract",
        "source": {"kind": "file", "path": path},
        "target": "decision",
        "positive_label": "approved",
        "time_column": "application_date",
        "training_cutoff": "2023-09-30",
        "row_count": {"min": 100, "max": 1_000_000},
        "columns": {
            "application_id": {"role": "identifier", "dtype": "string"},
            "application_date": {"role": "time", "dtype": "string"},
            "income": {"role": "feature", "dtype": "float", "min": 0, "max": 10_000_000},
            "debt_ratio": {"role": "feature", "dtype": "float", "min": 0, "max": 1},
            "employment_years": {"role": "feature", "dtype": "integer", "min": 0, "max": 60},
            "region": {"role": "feature", "dtype": "category", "allowed_values": ["north", "south", "east", "west"]},
            "gender": {"role": "protected", "dtype": "category", "allowed_values": ["female", "male"]},
            "decision": {"role": "target", "dtype": "category", "allowed_values": ["approved", "rejected"]},
        },
    }
    policy["model"]["registered_name"] = "credit_model"
    policy["model"]["experiment_name"] = "credit"
    policy["gates"]["fairness"]["intersections"] = []
    return policy
