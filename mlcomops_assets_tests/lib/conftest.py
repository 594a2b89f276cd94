import pandas as pd
import pytest

from mlcomops_assets.policy import Policy, parse_policy
from mlcomops_assets_tests.conftest import default_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    return parse_policy(default_policy())


@pytest.fixture(scope="session")
def arrests() -> pd.DataFrame:
    from sklego.datasets import load_arrests

    return load_arrests(as_frame=True)
