"""What the benchmark scripts and tests/sdk/harness.py share: a child ``decart serve``, /proc readers, the namespace.

* :func:`start_serve` starts ``python -m decart_cli serve --port 0 ARGS`` from the repository root
  and returns it with the ``http://HOST:PORT`` of its listening line (``SystemExit`` naming what it
  printed instead, and its stderr when that is a file); the child dies with this process (Linux);
  :func:`stop_serve` ends it.
* :func:`cpu_seconds` (user + system CPU of a process, from /proc), :func:`rss_mb` (its resident set)
  and :func:`last_json` (the last JSON document a client printed).
* :func:`rerun_in_namespace`: a script that needs the private network namespace (scripts/netns-run;
  libwebrtc needs its veth) re-runs itself there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
NETNS_RUN = ROOT / "scripts" / "netns-run"
NETNS_FLAG = "DECART_BENCH_NETNS"  # set to "1" in the environment of a script re-run in the namespace

sys.path.insert(0, str(ROOT))
from decart_cli.commands._local import die_with_parent  # noqa: E402 - the repository root, put on the path above
from decart_cli.emulator.options import listening_url  # noqa: E402

__all__ = ["ROOT", "cpu_seconds", "last_json", "rerun_in_namespace", "rss_mb", "start_serve", "stop_serve"]


def start_serve(*args: str, stderr: int | IO[Any] = subprocess.DEVNULL) -> tuple[subprocess.Popen[str], str]:
    """Start ``decart serve --port 0 ARGS``; the process and its ``http://HOST:PORT`` once it listens.

    Args:
        *args: further ``serve`` arguments (``--loopback-only``, faults, …).
        stderr: where its stderr goes (a file is quoted when it fails to start).

    Raises:
        SystemExit: it exited or printed something other than its listening line first.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "decart_cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=die_with_parent(),  # a killed script leaves no emulator behind
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = listening_url(line)
    if url is None:
        proc.kill()
        proc.wait()
        said = ""
        if not isinstance(stderr, int) and stderr.seekable():
            stderr.seek(0)
            said = "\n" + str(stderr.read())[-3000:]
        raise SystemExit(f"decart serve did not start: {line!r}{said}")
    return proc, url


def stop_serve(proc: subprocess.Popen[str], timeout: float = 10.0) -> int:
    """SIGTERM ``proc``, wait ``timeout`` s (then SIGKILL); its exit status."""
    proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def rss_mb(pid: int) -> float | None:
    """The resident set size of process ``pid`` in MB (Linux /proc), or ``None`` once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def last_json(text: str) -> Any:
    """The last JSON document or line in ``text`` (a pretty-printed one included), or ``None``."""
    text = text.strip()
    start = text.rfind("\n{")
    for candidate in (text, text[start + 1 :] if start >= 0 else ""):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def rerun_in_namespace() -> int | None:
    """``None`` when this script runs in the namespace already; else re-run it there and return its status."""
    if os.environ.get(NETNS_FLAG) == "1":
        return None
    env = {**os.environ, NETNS_FLAG: "1"}
    return subprocess.run([str(NETNS_RUN), sys.executable, *sys.argv], env=env, cwd=ROOT).returncode
