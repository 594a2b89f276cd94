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
from collections.abc import Iterator
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
