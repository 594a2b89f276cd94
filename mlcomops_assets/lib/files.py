"""Crash-safe file writes and content hashes.

Every file the pipeline produces is written to a temporary file in the same directory and renamed into
place, so a run killed mid-write leaves the previous version complete and the next run needs no cleanup.
"""

from __future__ import annotations

import hashlib
import json
import os
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
    if os.environ.get(FAULT_PAUSE_ENV) != target.name:
        return
    import time

    Path(os.environ[FAULT_MARKER_ENV]).write_text(str(os.getpid()))
    time.sleep(120)


def _remove_leftovers(target: Path) -> None:
    """Temporary files of a writer that was killed; runs are serialized, so none is in use."""
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
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


def file_md5(path: Path) -> str:
    """MD5 of the file's bytes: the same value DVC 3 records for a file output."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
