"""Asset-check results an auditor can read and plot: each measured figure next to its limit.

The checks of evaluation, fairness, explainability and batch monitoring write their metadata with these
helpers, under keys that stay the same from run to run and from batch to batch, so the Dagster UI plots
each figure as a series:

- ``<figure>``: the measured value (float, four significant digits: ``metadata.figure``), next to
  ``<figure>.limit``: the policy's limit for it, a maximum, or a minimum where larger is better (ROC AUC,
  accuracy, balanced accuracy, the selection-rate ratio). Per analysed protected attribute or
  intersection the figure is ``<metric>.<analysis>``, e.g. ``demographic_parity_difference.sex`` and
  ``demographic_parity_difference.sex.limit``; an intersection is named ``colour_x_sex``.
- ``status``: passed, waived, failed or not evaluated; ``verdict``: the check's text, each figure with
  its limit; ``reason`` when not evaluated. Per analysis, ``<analysis>.status`` and, when it could not be
  measured, ``<analysis>.reason``. What was not measured gets no number (only its limit).
- ``batch``: the production batch (partition key) a batch check judged. Dagster 1.13 records a check's
  partition only for a check spec with its own ``partitions_def``, a preview feature; the batch checks
  are unpartitioned checks of the partitioned asset, so their evaluation points at the batch's
  materialization and names the batch here.
- reports as links to the publication server (``ProjectResource.report_link``), never as file paths.
"""

from __future__ import annotations

import math
from typing import Any

import dagster as dg

from mlcomops_assets.constants import STORAGE_FOLDER
from mlcomops_assets.lib.gates import FAIRNESS_METRICS, NOT_EVALUATED, GateOutcome, Status
from mlcomops_assets.metadata import figure
from mlcomops_assets.policy import Policy
from mlcomops_assets.resources import ProjectResource

LIMIT = "limit"
# The headline figures of a fairness check: the worst analysis of each metric, with the metric's limit.
_HEADLINES = {
    "largest_demographic_parity_difference": (max, "demographic_parity_difference"),
    "largest_equalized_odds_difference": (max, "equalized_odds_difference"),
    "smallest_demographic_parity_ratio": (min, "demographic_parity_ratio"),
}


def analysis_key(name: str) -> str:
    """A fairness analysis as a metadata key part: ``colour x sex`` -> ``colour_x_sex``."""
    return name.replace(" x ", "_x_").replace(" ", "_")


def with_limit(
    name: str, value: float | None, limit: float, reason: str = "no finite value could be measured"
) -> dict[str, Any]:
    """``name`` (the measured value) and ``name.limit``; a value that could not be measured is no number:
    ``name.status`` is "not evaluated" and ``name.reason`` says why."""
    if value is not None and math.isfinite(float(value)):
        entries: dict[str, Any] = {name: figure(value)}
    else:
        entries = {f"{name}.status": Status.NOT_EVALUATED.value, f"{name}.reason": reason}
    entries[f"{name}.{LIMIT}"] = figure(limit)
    return entries


def outcome(status: Status, verdict: str, batch: str | None = None) -> dict[str, Any]:
    """The status and the verdict text (the reason, when not evaluated), after the batch if there is one."""
    entries: dict[str, Any] = {"batch": dg.MetadataValue.text(batch)} if batch is not None else {}
    entries["status"] = Status(status).value
    entries["verdict"] = verdict
    if status == Status.NOT_EVALUATED:
        entries["reason"] = verdict
    return entries


def fairness_limits(policy: Policy) -> dict[str, float]:
    """The policy's limit of each fairness figure (a maximum for the gaps, a minimum for the ratio)."""
    gate = policy.gates.fairness
    return {
        "demographic_parity_difference": gate.max_demographic_parity_difference,
        "equalized_odds_difference": gate.max_equalized_odds_difference,
        "demographic_parity_ratio": gate.min_demographic_parity_ratio,
    }


def _analysis_status(gate_outcome: GateOutcome, analysis: str) -> Status:
    blocking = [v for v in gate_outcome.blocking if v.attribute == analysis]
    if any(v.metric != NOT_EVALUATED for v in blocking):
        return Status.FAILED
    if blocking:
        return Status.NOT_EVALUATED
    if any(v.attribute == analysis for v, _ in gate_outcome.waived):
        return Status.WAIVED
    return Status.PASSED


def fairness_figures(attributes: dict[str, dict], gate_outcome: GateOutcome, policy: Policy) -> dict[str, Any]:
    """Every fairness figure of a report's ``attributes`` next to its limit: the headline figures (the
    worst analysis per metric), then per analysis its status and each metric; an analysis that could not
    be evaluated gets its status, its reason and the limits, no figure."""
    limits = fairness_limits(policy)
    measured = [r for r in attributes.values() if r.get("evaluable")]
    entries: dict[str, Any] = {}
    for name, (pick, metric) in _HEADLINES.items():
        values = [float(r[metric]) for r in measured if math.isfinite(float(r[metric]))]
        entries.update(
            with_limit(name, pick(values) if values else None, limits[metric], "no analysis could be evaluated")
        )
    for analysis, result in attributes.items():
        key = analysis_key(analysis)
        entries[f"{key}.status"] = _analysis_status(gate_outcome, analysis).value
        if not result.get("evaluable"):
            entries[f"{key}.reason"] = result.get("reason", "not evaluated")
            entries.update({f"{metric}.{key}.{LIMIT}": figure(limits[metric]) for metric in FAIRNESS_METRICS})
            continue
        for metric in FAIRNESS_METRICS:
            entries.update(with_limit(f"{metric}.{key}", float(result[metric]), limits[metric]))
    return entries


def published_record(project: ProjectResource, asset_key: dg.AssetKey) -> dg.UrlMetadataValue:
    """The link to an asset's published JSON record (where the IO manager writes it) on the report server."""
    name = asset_key.path[-1]
    return dg.MetadataValue.url(project.report_link(project.paths.data_dir / STORAGE_FOLDER[name] / f"{name}.json"))
