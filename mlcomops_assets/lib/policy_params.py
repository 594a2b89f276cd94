"""The policy as DVC params: every value the pipeline decides with, in a form DVC can always store.

DVC reads params straight from YAML and stores them in ``dvc.lock``. From ``governance.yaml`` itself that
fails in two ways a user cannot see coming: a waiver date written unquoted (``approved_on: 2026-11-01``,
as YAML allows) is a date object DVC refuses to serialize, and a key the user left to its default
(``split``, ``data.time_column`` without a time column) is "missing" and DVC refuses to commit. So
``make run`` writes ``params.yaml`` from the *validated* policy: defaults filled in, dates as ISO text,
enums as their values. ``dvc params diff`` then also shows a change of a default, which editing the
policy file alone would not reveal.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mlcomops_assets.lib.files import write_atomic
from mlcomops_assets.policy import Policy

HEADER = (
    "# Generated from governance.yaml by `make run` (mlcomops_assets/lib/policy_params.py): the validated\n"
    "# policy with every default filled in, as DVC params. Edit governance.yaml, never this file.\n"
)


def policy_params(policy: Policy) -> dict:
    """The validated policy as plain JSON-compatible data, in the schema's order."""
    return policy.model_dump(mode="json")


def write_policy_params(policy: Policy, target: Path) -> bool:
    """Write ``target`` (atomically) unless it already holds exactly these params; True when written."""
    text = HEADER + yaml.safe_dump(policy_params(policy), sort_keys=False, allow_unicode=True, width=100)
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return False  # unchanged: keep the file's timestamp, so DVC and make see nothing new
    write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return True
