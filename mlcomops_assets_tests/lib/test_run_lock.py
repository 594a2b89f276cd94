"""The project lock: one holder at a time (threads and processes), a bounded wait, a refusal that names
the holder, and release when the holder is killed; process identities that prove a process dead."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from mlcomops_assets.lib.processes import ProcessId
from mlcomops_assets.lib.run_lock import ProjectLocked, project_lock, read_holder, run_lease

HOLDER = {"run_id": "run-a", "job": "end_to_end", "started": "2026-11-28T07:00:00+00:00", "pid": 1, "host": "h"}


def test_second_holder_is_refused_with_the_first_ones_name(tmp_path):
    lock = tmp_path / ".mlcomops" / "run.lock"
    with project_lock(lock, HOLDER, wait_seconds=0):
        start = time.monotonic()
        with pytest.raises(ProjectLocked) as refused, project_lock(lock, {"run_id": "run-b"}, wait_seconds=0.5):
            pytest.fail("two holders at once")
        assert 0.5 <= time.monotonic() - start < 3  # waited, but only as long as allowed
    assert refused.value.holder == HOLDER
    text = str(refused.value)
    assert "run-a" in text and "end_to_end" in text and "2026-11-28T07:00:00" in text and "pid 1" in text


def test_threads_take_turns(tmp_path):
    """Two threads of one process contend like two processes (flock is per open file)."""
    lock, inside, overlaps = tmp_path / "run.lock", [], []

    def worker(name: str) -> None:
        with project_lock(lock, {"run_id": name}, wait_seconds=10):
            inside.append(name)
            if len(inside) > 1:
                overlaps.append(tuple(inside))
            assert read_holder(lock)["run_id"] == name  # the file names the current holder
            time.sleep(0.3)
            inside.remove(name)

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not overlaps and not inside


def test_waiting_holder_gets_the_lock_when_released(tmp_path):
    lock = tmp_path / "run.lock"
    with project_lock(lock, HOLDER, wait_seconds=0):
        got = []
        t = threading.Thread(target=lambda: got.append(_acquire(lock, 10)))
        t.start()
        time.sleep(0.5)
        assert not got  # still waiting while held
    t.join(timeout=10)
    assert got == [True]


def _acquire(lock, wait):
    with project_lock(lock, {"run_id": "waiter"}, wait_seconds=wait):
        return True


def test_lock_of_a_killed_holder_is_free(tmp_path):
    """SIGKILL skips every cleanup; the kernel still releases the lock with the process."""
    lock, ready = tmp_path / "run.lock", tmp_path / "ready"
    code = textwrap.dedent(
        f"""
        import pathlib, time
        from mlcomops_assets.lib.run_lock import project_lock
        with project_lock(pathlib.Path({str(lock)!r}), {{"run_id": "doomed"}}, 0):
            pathlib.Path({str(ready)!r}).touch()
            time.sleep(60)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(ProjectLocked) as refused:
            _acquire(lock, 0)
        assert refused.value.holder["run_id"] == "doomed"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        assert _acquire(lock, 5)
        assert read_holder(lock)["run_id"] == "waiter"
    finally:
        if holder.poll() is None:
            holder.kill()


def test_process_identity_proves_death_only_when_it_can():
    me = ProcessId.current()
    assert not me.is_dead()
    assert ProcessId.from_tags(me.as_tags("x/"), "x/") == me
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    assert ProcessId(me.host, child.pid).is_dead()  # exited and reaped
    assert ProcessId(me.host, me.pid, started="1").is_dead()  # the pid now belongs to another process
    assert not ProcessId("another-host", child.pid).is_dead()  # cannot be checked from here
    assert ProcessId.from_tags({"x/host": "h", "x/pid": "abc"}, "x/") is None


def test_unreaped_killed_child_counts_as_dead():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(child.pid, signal.SIGKILL)
        time.sleep(0.3)  # a zombie until waited for
        assert ProcessId(ProcessId.current().host, child.pid).is_dead()
    finally:
        child.wait(timeout=10)


def test_run_lease_is_reentrant_for_its_run_and_exclusive_between_runs(tmp_path):
    """Per-step processes (Dask): the run holding the lease re-enters it from any step; another run
    waits and is refused naming the holder; once the holder has ended, the next run takes it."""
    lock_file = tmp_path / "run.lock"
    ended: set[str] = set()
    over = ended.__contains__
    with run_lease(lock_file, {"run_id": "r1", "job": "end_to_end"}, 1.0, over) as taken:
        assert taken is True
    assert read_holder(lock_file)["run_id"] == "r1"  # kept after the step: it belongs to the run
    with run_lease(lock_file, {"run_id": "r1"}, 1.0, over) as taken:
        assert taken is False  # another step of the same run
    started = time.monotonic()
    with pytest.raises(ProjectLocked) as refused, run_lease(lock_file, {"run_id": "r2"}, 0.5, over, 0.1):
        pass
    assert refused.value.holder["run_id"] == "r1" and time.monotonic() - started >= 0.5
    ended.add("r1")
    with run_lease(lock_file, {"run_id": "r2"}, 1.0, over) as taken:
        assert taken is True
    assert read_holder(lock_file)["run_id"] == "r2"


def test_run_lease_waits_for_a_kernel_lock_holder(tmp_path):
    """A writer holding the kernel lock for its whole run (in-process executor) also keeps a lease out."""
    lock_file = tmp_path / "run.lock"
    with project_lock(lock_file, {"run_id": "local"}, 1.0):
        with pytest.raises(ProjectLocked) as refused, run_lease(lock_file, {"run_id": "r2"}, 0.3, lambda _: True, 0.1):
            pass
        assert refused.value.holder["run_id"] == "local"
