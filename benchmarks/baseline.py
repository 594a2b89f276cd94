"""The same computations as the asset graph in one plain script: no Dagster, no MLflow, no DVC.

Same libraries, same settings (the policy at HOME), same functions of ``mlcomops_assets.lib``: read,
validate, split, tune every candidate, evaluate each (performance with intervals, fairness, permutation
importance), SHAP for the chosen one, the outlier detector. Drift is not part of the graph (it is
measured per production batch by monitor_batch), so it is not here either. What the graph does on top
(a second validation on the exact bytes, Data Docs, proxy check, MLflow logging and registry, reload
checks, metadata, persisted files, the run's events) is what the ratio measures.
Usage: python benchmarks/baseline.py HOME; prints timings as JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

start = time.perf_counter()

from mlcomops_assets.lib import candidates, explain, modeling  # noqa: E402
from mlcomops_assets.lib.evaluation import performance  # noqa: E402
from mlcomops_assets.lib.fairness import fairness_report  # noqa: E402
from mlcomops_assets.lib.gx_validation import blocking_failures, validate  # noqa: E402
from mlcomops_assets.lib.outliers import fit_detector  # noqa: E402
from mlcomops_assets.lib.rules import rules_from_policy  # noqa: E402
from mlcomops_assets.lib.sources import ingest_source, read_raw, typed  # noqa: E402
from mlcomops_assets.lib.splitting import split_data  # noqa: E402
from mlcomops_assets.lib.uncertainty import accuracy_intervals, auc_interval  # noqa: E402
from mlcomops_assets.policy import load_policy  # noqa: E402


def main() -> None:
    home = Path(sys.argv[1])
    times: dict[str, float] = {"import": time.perf_counter() - start}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        times[name] = round(now - mark, 2)
        mark = now

    policy = load_policy(home / "governance.yaml")
    scratch = Path(tempfile.mkdtemp())
    raw = scratch / f"source{policy.data.source.suffix}"
    ingest_source(policy.data, home, raw)
    frame = read_raw(raw, policy.data)
    lap("read")
    validation = validate(frame, rules_from_policy(policy.data, home), "baseline")
    assert not blocking_failures(validation.results)
    lap("validate")
    splits = split_data(typed(frame, policy.data), policy)
    lap("split")
    tuned = {name: candidates.tune(name, splits.training, policy) for name in policy.model.candidates}
    lap("train")
    y = modeling.labels(splits.holdout, policy)
    settings = policy.model.selection
    for t in tuned.values():
        scores = modeling.positive_scores(t.model, splits.holdout, policy)
        decisions = modeling.decisions(scores, policy)
        performance(y, scores, decisions)
        auc_interval(y, scores, settings.confidence_level)
        accuracy_intervals(y, decisions, settings.confidence_level, settings.bootstrap_samples, policy.seed)
    lap("evaluate")
    for t in tuned.values():
        decisions = modeling.decisions(modeling.positive_scores(t.model, splits.holdout, policy), policy)
        fairness_report(splits.holdout, y, decisions, policy)
    lap("fairness")
    from sklearn.inspection import permutation_importance

    sample = splits.holdout
    if len(sample) > policy.explainability.sample_size:
        sample = sample.sample(policy.explainability.sample_size, random_state=policy.seed)
    for t in tuned.values():
        permutation_importance(
            t.model,
            modeling.features(sample, policy),
            modeling.labels(sample, policy),
            scoring=settings.metric,
            n_repeats=5,
            random_state=policy.seed,
            n_jobs=1,
        )
    chosen = tuned[policy.model.interpretable_candidates[0]].model
    explainer = explain.build_explainer(chosen, sample, policy)
    values = explain.shap_values(explainer, chosen, sample, policy)
    explain.global_importance(values, policy)
    lap("explain")
    fit_detector(splits.training, policy)
    lap("outliers")
    times["total"] = round(sum(v for k, v in times.items() if k != "import"), 2)
    times["import"] = round(times["import"], 2)
    print(json.dumps({"steps_s": times, "rows": len(frame)}))


if __name__ == "__main__":
    main()
