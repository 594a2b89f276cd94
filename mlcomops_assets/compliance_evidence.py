"""The evidence of the compliance matrix, read from the Dagster instance: one observation per evidence id.

``lib/compliance.py`` decides what a requirement's evidence means; this module only reads it:

- ``asset:<key>``: the asset's latest materialization, of any partition (the partition is named):
  ``passed``, or ``waived`` when its metadata lists waivers it relies on (``waivers``/``waived``, as
  ``champion_model`` records them); ``missing`` when it was never materialized. Nothing else of an
  asset's metadata is interpreted (a verdict text, a status): an asset is written only after its blocking
  checks passed, and what a check decided is read from the check. A later attempt that failed leaves
  the latest materialization in place (Dagster 1.13's SQLite storage records no failed materializations):
  its timestamp and run show how old it is.
- ``check:<asset key>:<check name>``: the check's latest *completed* evaluation (passed or failed), read
  by ``compliance.check_observation`` (its ``status``, ``verdict``, ``waived`` and ``batch`` metadata).
  When the latest execution was only planned (its run is still going, or it was skipped because a
  blocking check upstream failed, or its run failed first), the evaluation before it still counts,
  with a note naming that run; a check never evaluated is ``missing``.
- ``check:<asset key>:<pattern>`` (``*`` in the name) stands for every check of the code location it
  matches, each observed as above.

Evidence ids that name nothing in the code location are observed as ``missing`` ("not defined").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import dagster as dg
from dagster_shared.check import CheckError

from mlcomops_assets.lib.compliance import (
    ASSET_PREFIX,
    CHECK_PREFIX,
    EvidenceStatus,
    Observation,
    asset_observation,
    check_observation,
    expand,
    is_pattern,
)

# How many executions of one check are read back to find its latest completed evaluation.
_HISTORY = 50


def asset_evidence_id(key: dg.AssetKey) -> str:
    return ASSET_PREFIX + key.to_user_string()


def check_evidence_id(key: dg.AssetCheckKey) -> str:
    return f"{CHECK_PREFIX}{key.asset_key.to_user_string()}:{key.name}"


def _asset_graph(source: Any):
    """The asset graph of ``Definitions``, a ``RepositoryDefinition`` (``context.repository_def``) or a graph."""
    if hasattr(source, "resolve_asset_graph"):
        return source.resolve_asset_graph()
    if hasattr(source, "asset_graph"):
        return source.asset_graph
    return source


def code_location(context: dg.AssetExecutionContext, fallback: Callable[[], Any]) -> Any:
    """The definitions to pass to :func:`observe` from inside an asset: the run's repository when Dagster
    set one (runs launched by the webserver, the daemon or the CLI), else ``fallback()``. In-process
    execution (``execute_in_process``, ``materialize``) sets no repository in Dagster 1.13, and the job's own
    asset graph holds only the selected assets and their upstream, not every check of the code location."""
    try:
        return context.repository_def
    except CheckError:  # "No repository definition was set on the step context"
        return fallback()


def known_evidence_ids(definitions: Any) -> list[str]:
    if isinstance(definitions, (list, set, frozenset)):  # already the ids (EvidenceCatalog.ids)
        return sorted(definitions)
    """Every evidence id the code location defines: each asset and each asset check, sorted."""
    graph = _asset_graph(definitions)
    ids = [asset_evidence_id(k) for k in graph.get_all_asset_keys()]
    ids += [check_evidence_id(k) for k in graph.asset_check_keys]
    return sorted(ids)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def _plain(metadata: Any) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in (metadata or {}).items()}


def parse_evidence_id(evidence_id: str) -> dg.AssetKey | dg.AssetCheckKey:
    """The asset key or asset check key an evidence id names (no pattern)."""
    if evidence_id.startswith(ASSET_PREFIX):
        return dg.AssetKey.from_user_string(evidence_id.removeprefix(ASSET_PREFIX))
    if evidence_id.startswith(CHECK_PREFIX):
        asset, _, name = evidence_id.removeprefix(CHECK_PREFIX).rpartition(":")
        if asset and name:
            return dg.AssetCheckKey(dg.AssetKey.from_user_string(asset), name)
    raise ValueError(f"not an evidence id: {evidence_id!r} (asset:<key> or check:<asset key>:<check name>)")


def observe_asset(instance: dg.DagsterInstance, key: dg.AssetKey) -> Observation:
    """The latest materialization of ``key`` (any partition), or ``missing``."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return Observation(EvidenceStatus.MISSING, "never materialized")
    materialization = event.asset_materialization
    return asset_observation(
        _plain(materialization.metadata),
        when=_iso(event.timestamp),
        run_id=event.run_id,
        partition=materialization.partition,
    )


def _completed(record) -> bool:
    # AssetCheckExecutionRecordStatus (not exported by dagster): PLANNED, SUCCEEDED or FAILED.
    return record.status.value in ("SUCCEEDED", "FAILED") and record.evaluation is not None


def _planned_note(instance: dg.DagsterInstance, record) -> str:
    run = instance.get_run_by_id(record.run_id)
    state = (
        "is still in progress"
        if run is not None and not run.is_finished
        else "did not execute it (skipped after a blocking check upstream failed, or the run failed first)"
    )
    return f"run {record.run_id[:8]}, planned at {_iso(record.create_timestamp)}, {state}"


def observe_check(instance: dg.DagsterInstance, key: dg.AssetCheckKey) -> Observation:
    """The latest completed evaluation of check ``key``, read by ``compliance.check_observation``."""
    storage = instance.event_log_storage
    history = storage.get_asset_check_execution_history(key, limit=_HISTORY)
    if not history:
        return Observation(EvidenceStatus.MISSING, "never evaluated")
    done = next((r for r in history if _completed(r)), None)
    note = None if _completed(history[0]) else _planned_note(instance, history[0])
    if done is None:
        return Observation(
            EvidenceStatus.MISSING,
            f"never evaluated in the last {len(history)} planned executions ({note})",
            run_id=history[0].run_id,
        )
    evaluation = done.evaluation
    return check_observation(
        evaluation.passed,
        _plain(evaluation.metadata),
        evaluation.description,
        severity=evaluation.severity.value if evaluation.severity is not None else None,
        when=_iso(done.event.timestamp if done.event is not None else done.create_timestamp),
        run_id=done.run_id,
        partition=done.partition or evaluation.partition,
        note=f"not evaluated since: {note}" if note else None,
    )


def observe(instance: dg.DagsterInstance, definitions: Any, evidence_ids: Iterable[str]) -> dict[str, Observation]:
    """One observation per concrete evidence id: the ids given, with each pattern replaced by the checks
    of ``definitions`` (``Definitions``, ``context.repository_def``, an asset graph, or the list of known
    ids as ``EvidenceCatalog.ids`` holds it) it matches. Pass
    ``definitions=None`` to observe concrete ids without checking that the code location defines them
    (a pattern then matches nothing)."""
    ids = list(dict.fromkeys(evidence_ids))
    known = set(known_evidence_ids(definitions)) if definitions is not None else None
    concrete = expand(ids, known or ()) if known is not None else [i for i in ids if not is_pattern(i)]
    observations: dict[str, Observation] = {}
    for evidence_id in concrete:
        if known is not None and evidence_id not in known:
            observations[evidence_id] = Observation(EvidenceStatus.MISSING, "not defined in this code location")
            continue
        key = parse_evidence_id(evidence_id)
        if isinstance(key, dg.AssetCheckKey):
            observations[evidence_id] = observe_check(instance, key)
        else:
            observations[evidence_id] = observe_asset(instance, key)
    return observations
