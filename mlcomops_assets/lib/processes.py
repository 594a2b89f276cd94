"""Which process is this, and is a recorded process still alive (Dagster- and MLflow-free).

A run records its process as host, pid and the pid's start time. The start time is what makes
"dead" provable: after a SIGKILL the pid may be reused by an unrelated process, which then has a
different start time. Only a process on this host can be checked; elsewhere the answer is unknown.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its closing one.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]  # field 22 of the full line


def _is_zombie(pid: int) -> bool:
    """A killed child nobody has reaped yet still answers signals, but it runs nothing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] == "Z"


@dataclass(frozen=True)
class ProcessId:
    """A process as recorded by a run: where, which pid, since when."""

    host: str
    pid: int
    started: str | None = None

    @classmethod
    def current(cls) -> ProcessId:
        return cls(socket.gethostname(), os.getpid(), _start_ticks(os.getpid()))

    def as_tags(self, prefix: str) -> dict[str, str]:
        return {f"{prefix}host": self.host, f"{prefix}pid": str(self.pid), f"{prefix}pid_started": self.started or ""}

    @classmethod
    def from_tags(cls, tags: dict[str, str], prefix: str) -> ProcessId | None:
        """The process named by tags written with ``as_tags``; None if the tags are missing or garbled."""
        host, pid = tags.get(f"{prefix}host"), tags.get(f"{prefix}pid", "")
        if not host or not pid.isdigit():
            return None
        return cls(host, int(pid), tags.get(f"{prefix}pid_started") or None)

    def is_dead(self) -> bool:
        """True only when provably dead: on this host, and no such pid, a zombie, or the pid reused."""
        if self.host != socket.gethostname():
            return False  # another machine's process cannot be checked from here
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # exists, owned by someone else
        if _is_zombie(self.pid):
            return True
        now = _start_ticks(self.pid)
        return bool(self.started and now and now != self.started)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"
