"""Crash-safe file writes and content hashes.

Every file the pipeline produces is written to a temporary file in the same directory and renamed into
place, so a run killed mid-write leaves the previous version complete and the next run needs no cleanup.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Fault injection for the kill tests: pause after the temporary file is complete, before the rename,
# so a test can SIGKILL a real materialization exactly mid-write. Unset in normal operation.
FAULT_PAUSE_ENV = "MLCOMOPS_FAULT_PAUSE_BEFORE_RENAME"
FAULT_MARKER_ENV = "MLCOMOPS_FAULT_MARKER"


def _pause_for_fault_injection(target: Path) -> None:
    fault_point(target.name)


def fault_point(name: str) -> None:
    """Pause here (2 min) when ``$MLCOMOPS_FAULT_PAUSE_BEFORE_RENAME`` names this point, after touching
    ``$MLCOMOPS_FAULT_MARKER``; a no-op otherwise. File writes use the target's name; training uses
    ``mlflow_run:<candidate>`` (inside its open MLflow run)."""
    if os.environ.get(FAULT_PAUSE_ENV) != name:
        return
    import time

    Path(os.environ[FAULT_MARKER_ENV]).write_text(str(os.getpid()))
    time.sleep(120)


def _writer_token() -> str:
    """``<host hash>-<pid>``: names the writing process in its temporary file's name."""
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    return f"{host}-{os.getpid()}"


def temp_owner(leftover: Path, target: Path) -> tuple[str, int] | None:
    """The (host hash, pid) encoded in a temporary file of ``target``, or None if it has none."""
    match = re.fullmatch(rf"\.{re.escape(target.name)}\.([0-9a-f]{{8}})-(\d+)\.[^.]+\.tmp", leftover.name)
    return (match.group(1), int(match.group(2))) if match else None


def _remove_leftovers(target: Path) -> None:
    """Temporary files of ``target`` whose writer is provably dead (a killed run).

    Each temporary file names its writer (host hash and pid). Another writer's file is removed only
    when that writer ran on this host and its pid is gone: two runs writing at once (whatever the
    lock says) never delete each other's files. Files of other hosts or without a writer are kept.
    """
    from mlcomops_assets.lib.processes import ProcessId

    host = _writer_token().split("-")[0]
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        owner = temp_owner(leftover, target)
        if owner is None or owner[0] != host or owner[1] == os.getpid():
            continue
        if ProcessId(socket.gethostname(), owner[1]).is_dead():
            leftover.unlink(missing_ok=True)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{_writer_token()}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _pause_for_fault_injection(target)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(target: Path, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``target`` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return target


def write_json(target: Path, payload: Any) -> Path:
    text = json.dumps(payload, indent=2, sort_keys=True, default=str)
    return write_atomic(target, lambda p: p.write_text(text + "\n", encoding="utf-8"))


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of the file's bytes with ``algorithm`` (a hashlib name), read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    """MD5 of the file's bytes: the same value DVC 3 records for a file output."""
    return file_digest(path, "md5")


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes: what signed records and evidence manifests use."""
    return file_digest(path, "sha256")
