"""The documented choice of procedure: which candidate decides, by which rule of the policy, and why."""

from __future__ import annotations

from dataclasses import dataclass

from mlcomops_assets.policy import Policy


@dataclass(frozen=True)
class Choice:
    chosen: str | None
    rule: str
    justification: str


def rule_text(policy: Policy) -> str:
    s = policy.model.selection
    return (
        f"among deployable candidates that pass every gate, the best interpretable one by holdout {s.metric} "
        f"decides unless a less explainable one beats it by at least {s.min_gain_for_complexity:g} "
        "(model.selection.min_gain_for_complexity)"
    )


def _best(results: list[dict], metric: str) -> dict | None:
    # Ties go to the smaller model, then to the name, so the choice is deterministic.
    ordered = sorted(results, key=lambda r: (-r["holdout"][metric], r["size"]["parameters"], r["name"]))
    return ordered[0] if ordered else None


def preferred(results: list[dict], policy: Policy, gated: bool = True) -> Choice:
    """Apply the policy's rule to evaluated candidates.

    Each result has ``name``, ``interpretable``, ``deployable``, ``size``, ``holdout`` (metric values),
    ``gates`` (``passed`` and ``blocking``) and optionally ``difference_to_interpretable`` (a paired
    interval of the metric difference). With ``gated=False`` the gates are ignored: that tells which
    candidate the rule would prefer on performance and explainability alone.
    """
    metric = policy.model.selection.metric
    min_gain = policy.model.selection.min_gain_for_complexity
    pool = [r for r in results if r["deployable"] and (r["gates"]["passed"] or not gated)]
    rule = rule_text(policy)
    if not pool:
        failed = "; ".join(
            f"{r['name']}: " + (", ".join(r["gates"]["blocking"]) if r["deployable"] else r["not_deployable_because"])
            for r in results
        )
        return Choice(None, rule, f"no deployable candidate passes every gate ({failed})")
    simple = _best([r for r in pool if r["interpretable"]], metric)
    complex_ = _best([r for r in pool if not r["interpretable"]], metric)

    def figure(r: dict) -> str:
        ci = r.get("intervals", {}).get(metric)
        return f"{r['holdout'][metric]:.3f}" + (f" [{ci['low']:.3f}, {ci['high']:.3f}]" if ci else "")

    if simple and complex_:
        gain = complex_["holdout"][metric] - simple["holdout"][metric]
        diff = complex_.get("difference_to_interpretable")
        paired = (
            f"; paired {policy.model.selection.confidence_level:.0%} CI of the gain "
            f"[{diff['low']:.3f}, {diff['high']:.3f}]"
            if diff
            else ""
        )
        if gain >= min_gain:
            return Choice(
                complex_["name"],
                rule,
                f"{complex_['name']} (less explainable, {complex_['size']['parameters']} parameters) is chosen over "
                f"{simple['name']} ({simple['size']['parameters']} parameters): holdout {metric} {figure(complex_)} vs "
                f"{figure(simple)}, a gain of {gain:.3f} >= {min_gain:g}{paired}",
            )
        return Choice(
            simple["name"],
            rule,
            f"{simple['name']} (interpretable, {simple['size']['parameters']} parameters) is chosen: holdout {metric} "
            f"{figure(simple)}; {complex_['name']} reaches {figure(complex_)}, a gain of {gain:.3f} < {min_gain:g}"
            f"{paired}, which does not justify a less explainable model",
        )
    if simple:
        others = [r for r in results if not r["interpretable"] and r is not simple]
        why = "; ".join(
            f"{r['name']} fails: {', '.join(r['gates']['blocking']) or r.get('not_deployable_because', '')}"
            for r in others
        )
        return Choice(
            simple["name"],
            rule,
            f"{simple['name']} (interpretable) is chosen with holdout {metric} {figure(simple)}"
            + (f"; {why}" if why else ""),
        )
    failed_simple = [r for r in results if r["interpretable"]]
    why = "; ".join(f"{r['name']} fails: {', '.join(r['gates']['blocking'])}" for r in failed_simple)
    return Choice(
        complex_["name"],
        rule,
        f"{complex_['name']} (less explainable) is chosen because no interpretable candidate passes every gate "
        f"({why}); holdout {metric} {figure(complex_)}",
    )
