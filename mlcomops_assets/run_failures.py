"""Why a run failed, in words a user can act on: each failed step's reason and each failed blocking
check's description (with its numbers), and where the full details are.

The console of a blocked run otherwise shows only the check's name, e.g.
``model_selection_report: a_candidate_passes_every_gate``.
"""

from __future__ import annotations

import dagster as dg

from mlcomops_assets.constants import A_CANDIDATE_PASSES_EVERY_GATE, RAW_DATA
from mlcomops_assets.settings import ProjectPaths

_MAX_LINES = 20  # a contract failure can fail dozens of rules; the rest are in the UI and Data Docs


def _where(check: dg.AssetCheckEvaluation, paths: ProjectPaths) -> str:
    if check.check_name == A_CANDIDATE_PASSES_EVERY_GATE:
        return f"details: {paths.selection_dir / 'model_selection.html'}"
    docs = check.metadata.get("data_docs_path")
    if check.asset_key == RAW_DATA and docs is not None:
        return f"details: {docs.value}"
    return "details: the Dagster UI, asset checks of this run"


def failure_report(result: dg.ExecuteInProcessResult, paths: ProjectPaths) -> str:
    """The reasons of a failed run: failed blocking checks first, then the failure of each step."""
    lines = ["The run failed:"]
    blocking = [
        e for e in result.get_asset_check_evaluations() if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    for check in blocking[:_MAX_LINES]:
        lines.append(f"  - check {check.asset_key.to_user_string()}:{check.check_name}: {check.description}")
        lines.append(f"      {_where(check, paths)}")
    if len(blocking) > _MAX_LINES:
        lines.append(f"  ... and {len(blocking) - _MAX_LINES} more failed checks (see the Dagster UI)")
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error if event.event_specific_data else None
        # The first line of a Failure is its description; a traceback is in the compute logs.
        message = (error.message if error else "failed").strip().removeprefix("dagster._core.definitions.events.")
        lines.append(f"  - step {event.step_key}: {message}")
    return "\n".join(lines)
