"""Keyed pseudonyms for direct identifiers (HMAC-SHA-256).

The key comes from an environment variable or a secret file named by one, never from the repository,
and is never logged. The same value maps to the same pseudonym under the same key, so records stay
linkable (for example for an erasure request) without the identifier in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from mlcomops_assets.policy import Policy, PseudonymizationSpec

MIN_KEY_BYTES = 16


class PseudonymKeyError(RuntimeError):
    """The pseudonymization key is missing or too weak; the message says how to provide it."""


def load_key(spec: PseudonymizationSpec, environ: Mapping[str, str] | None = None) -> bytes:
    env = os.environ if environ is None else environ
    if env.get(spec.key_env):
        key = env[spec.key_env].encode()
    elif env.get(spec.key_file_env):
        path = Path(env[spec.key_file_env])
        if not path.is_file():
            raise PseudonymKeyError(f"{spec.key_file_env} points to {path}, which is not a file")
        key = path.read_bytes().strip()
    else:
        raise PseudonymKeyError(
            f"the policy pseudonymizes identifiers but no key is set: export {spec.key_env} (at least "
            f"{MIN_KEY_BYTES} bytes) or point {spec.key_file_env} at a secret file kept outside the repository"
        )
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"the pseudonymization key is too short: at least {MIN_KEY_BYTES} bytes are needed")
    return key


def key_id(key: bytes) -> str:
    """A short, non-reversible identifier of the key, so audits can tell which key was used."""
    return hmac.new(key, b"mlcomops key id", hashlib.sha256).hexdigest()[:12]


def pseudonymize(values: pd.Series, key: bytes) -> pd.Series:
    """Replace each value by HMAC-SHA-256(key, value) in hex; missing values stay missing."""

    def one(value: object) -> object:
        if pd.isna(value):
            return None
        return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()

    return values.map(one).astype("object")


def protect_identifiers(frame: pd.DataFrame, policy: Policy) -> tuple[pd.DataFrame, str | None]:
    """Replace every identifier column the policy pseudonymizes (those present in ``frame``) by its keyed
    pseudonym; returns the frame and the key id (None when nothing is pseudonymized). Raises
    ``PseudonymKeyError`` when a key is needed and missing."""
    columns = [c for c in policy.data.pseudonymized_columns if c in frame.columns]
    if not columns:
        return frame, None
    key = load_key(policy.pseudonymization)
    out = frame.copy()
    for name in columns:
        out[name] = pseudonymize(out[name], key)
    return out, key_id(key)
