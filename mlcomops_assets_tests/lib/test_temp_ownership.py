"""Temporary files name their writer; a writer removes another's leftover only when that one is dead."""

import subprocess
import sys
import threading

from mlcomops_assets.lib.files import atomic_path, temp_owner, write_json


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_temp_name_encodes_the_writer(tmp_path):
    import os

    target = tmp_path / "report.json"
    with atomic_path(target) as tmp:
        host, pid = temp_owner(tmp, target)
        assert pid == os.getpid() and len(host) == 8
        tmp.write_text("{}")
    assert temp_owner(tmp_path / ".report.json.abc.tmp", target) is None  # legacy name: no writer


def test_leftover_of_a_dead_writer_is_removed_a_live_ones_is_kept(tmp_path):
    target = tmp_path / "report.json"
    with atomic_path(target) as mine:
        host = temp_owner(mine, target)[0]
        mine.write_text("{}")
    dead = tmp_path / f".report.json.{host}-{_dead_pid()}.x1y2z3.tmp"
    live_writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = tmp_path / f".report.json.{host}-{live_writer.pid}.a1b2c3.tmp"
        foreign = tmp_path / f".report.json.00000000-{_dead_pid()}.q1w2e3.tmp"  # another host's writer
        legacy = tmp_path / ".report.json.k9k9k9.tmp"
        for path in (dead, live, foreign, legacy):
            path.write_text("partial")
        write_json(target, {"version": 2})
        assert not dead.exists()
        assert live.exists() and foreign.exists() and legacy.exists()
    finally:
        live_writer.kill()
        live_writer.wait(timeout=10)


def test_concurrent_writers_of_one_file_never_delete_each_others_temp_files(tmp_path):
    """The failure seen in production: two runs writing batch-2002.html, each removing the other's
    temporary file (FileNotFoundError at the rename). Here 8 threads write the same target 20 times."""
    target = tmp_path / "batch-2002.html"
    errors = []

    def writer(n: int) -> None:
        for i in range(20):
            try:
                with atomic_path(target) as tmp:
                    tmp.write_text(f"writer {n} round {i}\n" * 200)
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert target.read_text().startswith("writer ")
    assert list(tmp_path.glob(".batch-2002.html.*.tmp")) == []
