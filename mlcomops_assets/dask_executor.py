"""The team profile's executor: each step a task on an existing Dask scheduler (dagster-dask's design).

Each step runs dagster-dask's ``query_on_dask_worker`` (``execute_plan`` for one step key) inside a
long-lived worker process, so a step pays for the heavy imports once per worker, not once per step.
Two differences from ``dagster_dask.dask_executor``, both needed here:

* Dagster's run and plan objects reach the workers wrapped (``Opaque``). Dask 2026 walks every tuple
  among a task's arguments looking for tasks, and Dagster's ``@record`` types refuse iteration: a
  partitioned run (``monitor_batch``) failed in ``client.submit`` with "Iteration is not allowed on
  `@record` KeyRangesPartitionsSubset" (dagster-dask 0.29.27, dask 2026.8.0).
* The orchestrating process records itself as the run's process (``run_guard.record_run_process``):
  it is the process whose death leaves the run STARTED, while the workers outlive every run.

Nothing here imports Dask or dagster-dask at load: importing ``dagster_dask`` imports Dask's DataFrame,
pandas and pyarrow (7.5 s cold), and loading the code location must stay cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg


class Opaque:
    """A value Dask passes to the task as it is (pickled), without looking inside."""

    def __init__(self, value: Any) -> None:
        self.value = value


def run_step(dependencies: list[Any], payload: Opaque) -> Any:
    """On a worker: execute one step with dagster-dask's own function. ``dependencies`` are the
    upstream steps' results, which Dask resolves first, so a step starts after its inputs exist."""
    from dagster_dask.executor import query_on_dask_worker

    return query_on_dask_worker(dependencies, *payload.value)


class TeamDaskExecutor(dg.Executor):
    """Steps as tasks on the scheduler at ``address``, submitted level by level with their dependencies."""

    def __init__(self, address: str) -> None:
        self.address = address

    @property
    def retries(self):
        from dagster._core.execution.retries import RetryMode

        return RetryMode.DISABLED

    def execute(self, plan_context, execution_plan) -> Iterator[dg.DagsterEvent]:
        import dask.distributed
        from dagster._core.errors import raise_execution_interrupts
        from dagster._utils import iterate_with_context
        from dagster_dask.executor import get_dask_resource_requirements

        from mlcomops_assets.run_guard import record_run_process

        instance = plan_context.instance
        if not instance.is_persistent:
            raise dg.DagsterInvariantViolationError("Dask execution requires a persistent DagsterInstance")
        run = plan_context.dagster_run
        record_run_process(instance, run)
        with dask.distributed.Client(self.address) as client:
            futures: dict[str, Any] = {}
            for level in execution_plan.get_steps_to_execute_by_level():
                for step in level:
                    dependencies = [
                        futures[key] for step_input in step.step_inputs for key in step_input.dependency_keys
                    ]
                    payload = Opaque(
                        (
                            plan_context.reconstructable_job,
                            run,
                            plan_context.run_config,
                            [step.key],
                            instance.get_ref(),
                            execution_plan.known_state,
                        )
                    )
                    futures[step.key] = client.submit(
                        run_step,
                        dependencies,
                        payload,
                        # The run id keeps two runs' tasks apart on a shared scheduler.
                        key=f"{plan_context.job_name}.{run.run_id}.{step.key}",
                        resources=get_dask_resource_requirements(step.tags),
                        pure=False,
                    )
            completed = dask.distributed.as_completed(list(futures.values()), with_results=True)
            for _, events in iterate_with_context(raise_execution_interrupts, completed):
                yield from events


@dg.executor(
    name="dask",
    requirements=dg.multiple_process_executor_requirements(),
    config_schema={"cluster": {"existing": {"address": dg.StringSource}}},
)
def dask_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Steps as Dask tasks on an existing scheduler; config shaped like ``dagster_dask.dask_executor``'s
    ``cluster: {existing: {address}}`` (the only cluster type the team profile uses)."""
    return TeamDaskExecutor(init_context.executor_config["cluster"]["existing"]["address"])
