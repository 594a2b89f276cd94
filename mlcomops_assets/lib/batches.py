"""Production batches: files dropped into the inbox, validated with the data contract, or quarantined.

A batch is a partition of the monitoring assets. Its key is the file name without extension (letters,
digits, ``-``, ``_`` and ``.``), or a production period of the data (e.g. ``2001``) when the policy names a
time column; without one, every batch comes from the inbox. A batch must satisfy the same per-row and
per-column rules as the training data; the rules about the whole training set (row-count bounds, both
classes present, class shares, group sizes) do not apply to a batch, and the label may be missing
(unlabeled batches are scored and monitored, not evaluated). Each batch records the data source it
belongs to (``source_identity``), so batches of a dataset the policy no longer names can be told apart.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlcomops_assets.lib.files import file_md5, write_json
from mlcomops_assets.lib.rules import Kind, Rule, rules_from_policy
from mlcomops_assets.policy import DataSpec, Policy

if TYPE_CHECKING:  # imported where used, so loading the code location does not import pandas
    import pandas as pd

BATCH_SUFFIXES = (".csv", ".parquet")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
# Rules about the training set as a whole, not about each batch.
_DATASET_RULES = ("row_count_within_bounds",)
# Materialization metadata of production_batch naming the data source the batch belongs to (read back by
# batch_sources.recorded_source).
DATA_SOURCE_KEY = "data_source"


def source_identity(spec: DataSpec) -> str:
    """Which data source a batch belongs to: the dataset's name, where it is read from, and a hash of its
    declared columns (names, roles, types), the target and the favourable label. No data values: it tells
    batches of the current source from those monitored before the policy switched to another dataset.
    Thresholds and the data's bytes are left out, so updating a file or tightening a rule keeps the source."""
    contract = sorted(
        (name, col.role.value, col.dtype.value if col.dtype else "-") for name, col in spec.columns.items()
    )
    digest = hashlib.sha256(repr((contract, spec.target, spec.positive_label)).encode()).hexdigest()[:12]
    return f"{spec.name}|{spec.source.kind}:{spec.source.path or '-'}|columns {digest}"


def batch_key(path: Path) -> str | None:
    """The partition key of an inbox file, or None when its name cannot be one (it is then ignored)."""
    if path.suffix.lower() not in BATCH_SUFFIXES or not _KEY.match(path.stem):
        return None
    return path.stem


def inbox_files(inbox: Path) -> dict[str, Path]:
    """Batch files in the inbox by key (hidden, partial and unsupported files are skipped)."""
    if not inbox.is_dir():
        return {}
    found: dict[str, Path] = {}
    for path in sorted(inbox.iterdir()):
        key = batch_key(path) if path.is_file() and not path.name.startswith(".") else None
        if key is not None:
            found.setdefault(key, path)
    return found


def batch_rules(policy: Policy, home: Path, labeled: bool) -> list[Rule]:
    """The data contract for one batch: the training contract without its dataset-level rules, and
    without the label's rules when the batch carries no label."""
    target = policy.data.target
    rules = []
    for rule in rules_from_policy(policy.data, home):
        if rule.name in _DATASET_RULES or rule.kind in (Kind.SHARE, Kind.GROUP):
            continue
        if rule.column == target and rule.kind == Kind.TABLE:  # both classes present: a dataset property
            continue
        if not labeled and rule.column == target:
            continue
        if rule.name == "columns_match_policy" and not labeled:
            columns = [c for c in rule.kwargs["column_set"] if c != target]
            rule = Rule(
                name=rule.name,
                expectation=rule.expectation,
                kwargs={**rule.kwargs, "column_set": columns},
                description=f"The batch has the {len(columns)} declared columns (the label '{target}' may be absent).",
                kind=rule.kind,
            )
        rules.append(rule)
    rules.append(
        Rule(
            name="batch_is_large_enough",
            expectation="ExpectTableRowCountToBeBetween",
            kwargs={"min_value": policy.monitoring.min_batch_rows, "max_value": policy.data.row_count.max},
            description=f"At least {policy.monitoring.min_batch_rows} rows, enough to monitor.",
            kind=Kind.TABLE,
        )
    )
    return rules


def quarantine(path: Path, quarantine_dir: Path, reasons: list[str]) -> Path:
    """Move a refused file out of the inbox, with a JSON note of the failed rules (names and counts only,
    never the offending values), so the sensor does not pick it up again and nothing is half-ingested."""
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = quarantine_dir / f"{stamp}-{path.name}"
    md5 = file_md5(path)
    shutil.move(str(path), target)
    write_json(
        target.with_name(target.name + ".reason.json"),
        {"file": path.name, "md5": md5, "quarantined_at": stamp, "failed_rules": reasons},
    )
    return target


def labeled_rows(frame: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Rows of a batch whose label is known."""
    target = policy.data.target
    if target not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame[target].notna()]


def with_labeled_batches(
    training: pd.DataFrame, batches: dict[str, pd.DataFrame], policy: Policy
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The training rows plus the labeled rows of the latest ``retrain_window_batches`` batches (in the
    order the batches were registered), and how many rows each added batch gave."""
    import pandas as pd

    window = policy.monitoring.retrain_window_batches
    if not window or not batches:
        return training, {}
    target = policy.data.target
    labeled = {k: f[f[target].notna()] for k, f in batches.items() if target in f.columns}
    chosen = [k for k in labeled if len(labeled[k])][-window:]
    if not chosen:
        return training, {}
    columns = list(training.columns)
    frames = [training] + [labeled[k].reindex(columns=columns) for k in chosen]
    combined = pd.concat(frames, ignore_index=True)
    combined.attrs = dict(training.attrs)
    return combined, {k: len(labeled[k]) for k in chosen}
