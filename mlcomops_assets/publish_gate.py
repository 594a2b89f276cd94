"""Write-audit-publish inside one step: outputs reach the IO manager only after their blocking checks pass.

A blocking check stops the steps after it, but the asset it checks is stored as soon as its output is
yielded (Dagster 1.13, verified). So an asset computes its value in memory, evaluates its checks, and
yields the outputs only when every blocking check passed; otherwise it records the failed checks and
fails the step, and the last published file stays as it was.
"""

from collections.abc import Iterable, Iterator

import dagster as dg


def blocking_failed(checks: Iterable[dg.AssetCheckResult]) -> list[dg.AssetCheckResult]:
    """The failed checks of ERROR severity: the ones a blocking spec turns into a stop."""
    return [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]


def publish_on_pass(
    what: str, outputs: Iterable[dg.Output], checks: list[dg.AssetCheckResult]
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Yield ``outputs`` then ``checks`` (so each check targets the new materialization) when no blocking
    check failed; otherwise yield the checks and raise a Failure naming each one with its reason."""
    failed = blocking_failed(checks)
    if failed:
        yield from checks
        reasons = "\n".join(f"  - check '{c.check_name}': {c.description}" for c in failed)
        raise dg.Failure(
            description=f"{what} was not published (the last published version is unchanged):\n{reasons}",
            metadata={"failed_checks": ", ".join(str(c.check_name) for c in failed)},
        )
    yield from outputs
    yield from checks
