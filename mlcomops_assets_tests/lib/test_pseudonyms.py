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
