import pytest

from mlcomops_assets_tests.data_factory import PSEUDONYM_KEY


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch):
    """The test datasets pseudonymize their application ids; real keys come from a secret store."""
    monkeypatch.setenv("MLCOMOPS_PSEUDONYM_KEY", PSEUDONYM_KEY)
