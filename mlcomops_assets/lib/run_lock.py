"""One writer at a time: an OS file lock on ``<home>/.mlcomops/run.lock`` held for a whole run.

``fcntl.flock`` is used rather than a lock file that merely exists, because the kernel releases it
when the holding process dies, SIGKILL included: a killed run never leaves the project locked. Two
``open()`` calls get separate locks even in one process, so two threads contend like two processes.
The holder writes who it is into the file (run id, job, start time, pid, host), so a refused run can
name it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_POLL_SECONDS = 0.2


class ProjectLocked(RuntimeError):
    """Another run held the project lock for longer than this one was willing to wait."""

    def __init__(self, lock_file: Path, holder: dict[str, Any], waited: float) -> None:
        self.lock_file, self.holder, self.waited = lock_file, holder, waited
        super().__init__(f"{describe_holder(holder)} holds {lock_file} (waited {waited:.0f} s)")


def describe_holder(holder: dict[str, Any]) -> str:
    """The holder as a person reads it; empty when the holder had not written its name yet."""
    if not holder:
        return "another process (not yet identified)"
    return (
        f"Dagster run {holder.get('run_id', '?')} (job {holder.get('job', '?')}, started "
        f"{holder.get('started', '?')}, pid {holder.get('pid', '?')} on {holder.get('host', '?')})"
    )


def read_holder(lock_file: Path) -> dict[str, Any]:
    """Who holds (or last held) the lock, from the file's content; {} if unreadable."""
    try:
        return json.loads(lock_file.read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextmanager
def project_lock(lock_file: Path, holder: dict[str, Any], wait_seconds: float) -> Iterator[None]:
    """Hold the exclusive lock for the body; wait at most ``wait_seconds``, else ``ProjectLocked``."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= wait_seconds:
                    raise ProjectLocked(lock_file, _holder_of(lock_file), waited) from None
                time.sleep(min(_POLL_SECONDS, max(wait_seconds - waited, 0.01)))
        # Written in place (not renamed): the lock belongs to this inode, so it must stay the same file.
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder, sort_keys=True).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _holder_of(lock_file: Path) -> dict[str, Any]:
    """The holder's name; it writes it right after locking, so a just-started holder gets a moment."""
    for _ in range(10):
        holder = read_holder(lock_file)
        if holder:
            return holder
        time.sleep(0.05)
    return {}


@contextmanager
def run_lease(
    lock_file: Path,
    holder: dict[str, Any],
    wait_seconds: float,
    holder_ended: Callable[[str], bool],
    poll_seconds: float = 1.0,
) -> Iterator[bool]:
    """Hold the project for the run ``holder["run_id"]`` until that run ends; re-entrant for the run.

    For executors that run each step in its own (worker) process, where no process lives as long as
    the run and a kernel lock would be released between two steps of one run, letting another run
    write in between. The lock file's content is the lease: it names the run that holds the project.
    The flock is only a mutex around reading and replacing that content (microseconds). A step may
    proceed when the file names no run, its own run (another step of the same run: re-entry), or a
    run that ``holder_ended`` says has ended (SUCCESS, FAILURE, CANCELED, or unknown); otherwise it
    waits at most ``wait_seconds`` and raises ``ProjectLocked`` naming the holder.

    The lease is never released by a step: it ends with its run, so a run whose process died holds
    the project until the run is marked failed (``run_guard``'s sweep of dead runs, run monitoring).
    Yields True when this call took the lease for its run, False when the run already held it.
    """
    run_id = str(holder["run_id"])
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    while True:
        taken = _try_lease(lock_file, holder, run_id, holder_ended)
        if isinstance(taken, bool):
            break
        waited = time.monotonic() - start
        if waited >= wait_seconds:
            raise ProjectLocked(lock_file, taken, waited)
        time.sleep(min(poll_seconds, max(wait_seconds - waited, 0.01)))
    yield taken


def _try_lease(
    lock_file: Path, holder: dict[str, Any], run_id: str, holder_ended: Callable[[str], bool]
) -> bool | dict[str, Any]:
    """One attempt: True (taken), False (already this run's), else the current holder to wait for."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder_of(lock_file)  # a kernel-lock writer (in-process executor) holds it for its run
        current = read_holder(lock_file)
        other = str(current.get("run_id", ""))
        if other == run_id:
            return False
        if other and not holder_ended(other):
            return current
        # Written in place under the flock (the flock belongs to this inode, so no rename).
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder, sort_keys=True).encode(), 0)
        os.fsync(fd)
        return True
    finally:
        os.close(fd)  # closing releases the flock
