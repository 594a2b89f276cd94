"""Deterministic datasets for tests: credit applications with direct identifiers, and their policy.

The default data has no identifiers, so this one carries names, e-mail addresses, phone numbers,
national insurance numbers and application ids (made with Faker, offline and seeded).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlcomops_assets_tests.conftest import default_policy

IDENTIFIER_COLUMNS = ["application_id", "full_name", "email", "phone", "national_id"]
OCCUPATIONS = ["nurse", "teacher", "engineer", "driver", "cook", "clerk", "farmer", "artist", "lawyer", "builder"]
PSEUDONYM_KEY = "test-only-key-0123456789abcdef"  # tests only; real keys come from a secret store


def credit_applications(rows: int = 2400, seed: int = 7) -> pd.DataFrame:
    """Synthetic loan applications over 2023: approval depends on income, debt and tenure."""
    from faker import Faker

    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    income = rng.lognormal(mean=10.6, sigma=0.45, size=rows).round(2)
    debt_ratio = rng.beta(2, 5, size=rows).round(4)
    tenure = rng.integers(0, 30, size=rows)
    age = rng.integers(18, 80, size=rows)
    logit = 0.9 * (np.log(income) - 10.6) / 0.45 - 4.0 * (debt_ratio - 0.28) + 0.04 * tenure + rng.normal(0, 1, rows)
    days = rng.integers(0, 365, size=rows)
    return pd.DataFrame(
        {
            "application_id": [f"APP-{i:06d}" for i in range(rows)],
            "full_name": [fake.name() for _ in range(rows)],
            "email": [fake.unique.email() for _ in range(rows)],
            "phone": [fake.phone_number() for _ in range(rows)],
            "national_id": [fake.unique.ssn() for _ in range(rows)],
            "application_date": (pd.Timestamp("2023-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d"),
            "income": income,
            "debt_ratio": debt_ratio,
            "employment_years": tenure,
            "occupation": rng.choice(OCCUPATIONS, size=rows),
            "region": rng.choice(["north", "south", "east", "west"], size=rows, p=[0.3, 0.3, 0.2, 0.2]),
            "gender": rng.choice(["female", "male"], size=rows),
            "age": age,
            "decision": np.where(logit > -0.3, "approved", "rejected"),
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
        "row_count": {"min": 100, "max": 50_000},
        "record_key": "application_id",
        "min_class_share": 0.05,
        "min_group_size": 30,
        "columns": {
            "application_id": {"role": "identifier", "dtype": "string", "treatment": "pseudonymize"},
            "full_name": {"role": "identifier", "dtype": "string"},
            "email": {"role": "identifier", "dtype": "string"},
            "phone": {"role": "identifier", "dtype": "string"},
            "national_id": {"role": "identifier", "dtype": "string"},
            "application_date": {
                "role": "time",
                "dtype": "string",
                "date_format": "%Y-%m-%d",
                "min_date": "2023-01-01",
                "max_date": "2023-12-31",
            },
            "income": {"role": "feature", "dtype": "float", "min": 0, "max": 10_000_000},
            "debt_ratio": {"role": "feature", "dtype": "float", "min": 0, "max": 1},
            "employment_years": {"role": "feature", "dtype": "integer", "min": 0, "max": 60},
            "occupation": {"role": "feature", "dtype": "string"},
            "region": {"role": "feature", "dtype": "category", "allowed_values": ["north", "south", "east", "west"]},
            "gender": {"role": "protected", "dtype": "category", "allowed_values": ["female", "male"]},
            "age": {"role": "protected", "dtype": "integer", "min": 18, "max": 100, "fairness_bins": [18, 40, 65, 101]},
            "decision": {"role": "target", "dtype": "category", "allowed_values": ["approved", "rejected"]},
        },
    }
    policy["model"]["registered_name"] = "credit_model"
    policy["model"]["experiment_name"] = "credit"
    policy["gates"]["fairness"]["intersections"] = [["gender", "age"]]
    # The decision ignores gender and age by construction, but holdout groups of 40-100 rows show
    # random gaps up to ~0.2 (DPD) and ~0.36 (EOD); limits sit above that noise.
    policy["gates"]["fairness"]["max_demographic_parity_difference"] = 0.25
    policy["gates"]["fairness"]["max_equalized_odds_difference"] = 0.45
    policy["gates"]["fairness"]["min_demographic_parity_ratio"] = 0.6
    # The default policy's serving section names its own protected columns (colour, sex); these data
    # protect gender and age, and the service may keep both for fairness monitoring.
    policy["serving"] = {**policy.get("serving", {}), "protected_for_monitoring": ["gender", "age"]}
    return policy


def raw_identifier_values(frame: pd.DataFrame) -> set[str]:
    """Every raw identifier value in ``frame``: what must never appear outside the raw layer."""
    return {str(v) for column in IDENTIFIER_COLUMNS for v in frame[column].dropna()}
