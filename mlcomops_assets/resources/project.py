"""The project resource: where everything lives and which policy governs it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from mlcomops_assets.policy import Policy, PolicyError, load_policy
from mlcomops_assets.settings import ProjectPaths


class ProjectResource(dg.ConfigurableResource):
    """The project home (one setting) and the validated governance policy found there."""

    home: str
    reports_url: str = "http://127.0.0.1:3001"
    # How long a run waits for another writer to finish before it is refused (None: the
    # environment's MLCOMOPS_RUN_LOCK_WAIT_SECONDS, else run_guard's default).
    lock_wait_seconds: float | None = None
    # "process": the lock is held by the one process that runs every step (in-process executor);
    # "run": a lease by run id, for executors that initialize resources in every step's own process
    # (the team profile's Dask workers): re-entrant for the run's steps, exclusive between runs.
    lock_scope: str = "process"
    # Where the IO manager keeps asset values when not under the home's data/ folder (team profile:
    # ``<object store>/data`` on the S3-compatible server at ``s3_endpoint_url``).
    values_url: str | None = None
    s3_endpoint_url: str | None = None

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[ProjectResource]:
        """Within a run, hold the project lock from before the first step until after the last one.

        Every asset and check requires this resource, and the in-process executor initializes it once
        per run, so this covers every writer however it was launched. Sensors and schedules also build
        it, but outside any run: they read and never take the lock. Under the Dask executor every step
        initializes it in its worker process: there ``lock_scope="run"`` keeps the project the run's
        from its first step until the run has ended (``run_guard``). For the run, a SQLite event log is
        kept open (``event_log``: no checkpoint per stored event).
        """
        from mlcomops_assets.event_log import event_log_kept_open
        from mlcomops_assets.run_guard import exclusive_run, lock_wait_seconds

        if context.run is None or context.instance is None:
            yield self
            return
        wait = lock_wait_seconds(self.lock_wait_seconds)
        with (
            exclusive_run(self.paths, context.instance, context.run, wait, context.log, scope=self.lock_scope),
            event_log_kept_open(context.instance, context.run.run_id),
        ):
            yield self

    @property
    def paths(self) -> ProjectPaths:
        return ProjectPaths(Path(self.home))

    def stored_value(self, name: str, suffix: str = ".json"):
        """Where the IO manager stores asset ``name``'s value: a ``Path`` under the home's data/ folder,
        or a ``UPath`` in the object store (team profile). Same layout in both (``io_manager``)."""
        from mlcomops_assets.io_manager import ObjectStoreIOManager, value_folder

        if self.values_url is None:
            root = self.paths.data_dir
        else:  # the resource's own setting, which the workers received with the run
            root = ObjectStoreIOManager(url=self.values_url, endpoint_url=self.s3_endpoint_url).root()
        base = value_folder(root, name)
        return base.with_name(base.name + suffix)

    def policy(self) -> Policy:
        # Read on every call, not cached: a materialization uses the policy as it is at run time,
        # and the policy fingerprint recorded with the model says which one that was.
        try:
            return load_policy(self.paths.policy_file)
        except PolicyError as exc:
            # As a Failure the message itself is the step's error; a plain exception would show only
            # as the cause of "Error occurred while executing op".
            raise dg.Failure(description=str(exc)) from None

    def report_link(self, path: Path) -> str:
        """The URL under which the report server shows a published file.

        Only files in the publication folder have a link: asking for one elsewhere is a programming
        error (the server would not serve it), so it raises instead of producing a dead or leaky link.
        """
        relative = path.resolve().relative_to(self.paths.published_dir.resolve())
        return f"{self.reports_url.rstrip('/')}/{relative.as_posix()}"
