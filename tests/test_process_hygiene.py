"""The suite's own hygiene: conftest.py's check that no test leaves a process behind can see one."""

from __future__ import annotations

import os
import subprocess
import sys

import conftest


def test_the_leak_check_finds_a_process_this_test_started() -> None:
    """A process carrying this test's mark is found among new pids (so the check can fail); another mark is not."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        mark = os.environ[conftest.LEAK_MARK]
        found = conftest._marked_processes(mark, {proc.pid, os.getpid()})
        assert list(found) == [proc.pid] and "time.sleep(30)" in found[proc.pid]
        assert conftest._marked_processes(mark + "-other", {proc.pid}) == {}
    finally:
        proc.kill()
        proc.wait()
    assert conftest._marked_processes(mark, {proc.pid}) == {}  # reaped: gone
