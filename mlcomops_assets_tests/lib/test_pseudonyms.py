"""Keyed pseudonyms: stable under one key, different under another, and no silent default key."""

import pandas as pd
import pytest

from mlcomops_assets.lib.pseudonyms import PseudonymKeyError, key_id, load_key, pseudonymize
from mlcomops_assets.policy import PseudonymizationSpec

SPEC = PseudonymizationSpec()


def test_same_key_same_pseudonym_other_key_other_pseudonym():
    ids = pd.Series(["APP-1", "APP-2", "APP-1", None])
    first = pseudonymize(ids, b"k" * 32)
    again = pseudonymize(ids, b"k" * 32)
    other = pseudonymize(ids, b"x" * 32)
    assert first.tolist() == again.tolist()
    assert first[0] == first[2] and first[0] != first[1] and first[3] is None
    assert set(first.dropna()).isdisjoint(other.dropna())
    assert "APP-1" not in "".join(first.dropna())


def test_missing_or_short_key_is_a_clear_error(tmp_path):
    with pytest.raises(PseudonymKeyError, match="export MLCOMOPS_PSEUDONYM_KEY"):
        load_key(SPEC, environ={})
    with pytest.raises(PseudonymKeyError, match="too short"):
        load_key(SPEC, environ={"MLCOMOPS_PSEUDONYM_KEY": "short"})
    secret = tmp_path / "key"
    secret.write_text("0123456789abcdef0123\n")
    key = load_key(SPEC, environ={"MLCOMOPS_PSEUDONYM_KEY_FILE": str(secret)})
    assert key == b"0123456789abcdef0123"
    assert len(key_id(key)) == 12 and key_id(key) not in key.decode()
    with pytest.raises(PseudonymKeyError, match="not a file"):
        load_key(SPEC, environ={"MLCOMOPS_PSEUDONYM_KEY_FILE": str(tmp_path / "nope")})


def test_protect_identifiers_replaces_declared_identifiers_only(monkeypatch):
    from mlcomops_assets.lib.pseudonyms import protect_identifiers
    from mlcomops_assets.policy import parse_policy
    from mlcomops_assets_tests.data_factory import credit_policy

    policy = parse_policy(credit_policy("inbox/applications.csv"))
    (column,) = policy.data.pseudonymized_columns
    frame = pd.DataFrame({column: ["APP-1", "APP-2"], "income": [1.0, 2.0]})
    monkeypatch.delenv(SPEC.key_env, raising=False)
    monkeypatch.delenv(SPEC.key_file_env, raising=False)
    with pytest.raises(PseudonymKeyError):
        protect_identifiers(frame, policy)
    monkeypatch.setenv(SPEC.key_env, "k" * 32)
    out, used = protect_identifiers(frame, policy)
    assert used == key_id(b"k" * 32)
    assert not set(out[column]) & {"APP-1", "APP-2"} and list(out["income"]) == [1.0, 2.0]
    assert list(frame[column]) == ["APP-1", "APP-2"]  # the input is not modified
    unrelated, none = protect_identifiers(frame.drop(columns=column), policy)
    assert none is None and list(unrelated.columns) == ["income"]
