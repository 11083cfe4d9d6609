"""Run a command or a Python scenario inside a fresh network namespace (``scripts/netns-run``).

Anything that runs the ``livekit`` SDK's media needs this: libwebrtc never gathers ICE candidates on
a loopback interface, so the namespace adds a veth carrying 127.0.0.2/32 (livekit-local.md §4.1).
Each call makes its own namespace, which dies with the command; everything the command starts (a
``decart serve`` child of ``decart stream --local``, a subprocess SDK driver) shares it. The command
runs in a subprocess, so a Rust panic in the SDK (SIGABRT) fails the test instead of killing pytest.

Usage from a test::

    from netns import python_argv, run_in_netns, run_scenario

    result = run_in_netns([*python_argv(), "-m", "decart_cli", "stream", "--local", "--camera", "test",
                           "--duration", "3", "--json"], timeout=60,
                          env={"DECART_SERVE_LOOPBACK_ONLY": "1"})   # the serve child offers 127.0.0.1 only
    result.check()                       # AssertionError with the exit status and stderr tail otherwise
    events = result.json_lines()         # every JSON object line of stdout, in order

    summary = run_scenario(Path(__file__).parent / "sdk" / "my_scenario.py", "--seconds", "3",
                           timeout=60).check().json()   # the LAST JSON object line of stdout

When the namespace cannot be made (not root and no unprivileged user namespaces), the helpers fail
the test with the wrapper's one-line reason; they never skip.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NETNS_RUN = ROOT / "scripts" / "netns-run"
TIMEOUT_FACTOR = float(os.environ.get("DECART_TIMEOUT_FACTOR", "1"))

__all__ = [
    "NETNS_RUN",
    "NetnsResult",
    "json_lines",
    "netns_problem",
    "python_argv",
    "require_netns",
    "run_in_netns",
    "run_scenario",
]


def json_lines(text: str) -> list[Any]:
    """Every line of ``text`` that parses as a JSON object, in order (other lines are skipped)."""
    out: list[Any] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


@functools.cache
def netns_problem() -> str | None:
    """Why no namespace can be made here (the wrapper's stderr line), or ``None`` when it works."""
    try:
        proc = subprocess.run([str(NETNS_RUN), "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scripts/netns-run failed to run: {exc}"
    if proc.returncode != 0:
        return proc.stderr.strip() or f"scripts/netns-run exited {proc.returncode}"
    return None


def require_netns() -> None:
    """Fail the calling test (never skip) when namespaces are unavailable, naming the reason."""
    problem = netns_problem()
    if problem is not None:
        pytest.fail(f"this test needs a network namespace: {problem}", pytrace=False)


def python_argv() -> list[str]:
    """The interpreter running the tests, as an argv prefix (``[sys.executable]``)."""
    return [sys.executable]


@dataclass
class NetnsResult:
    """What a command run in a namespace left behind."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> NetnsResult:
        """Raise ``AssertionError`` (exit status, command, stderr tail) unless the command exited 0."""
        if self.returncode != 0:
            tail = "\n".join(self.stderr.splitlines()[-40:])
            raise AssertionError(f"exit {self.returncode} from {' '.join(self.argv)}\n--- stderr (tail) ---\n{tail}")
        return self

    def json_lines(self) -> list[Any]:
        """Every stdout line that parses as a JSON object, in order (other lines are skipped)."""
        return json_lines(self.stdout)

    def json(self) -> Any:
        """The last JSON object line of stdout (a scenario's summary)."""
        lines = self.json_lines()
        if not lines:
            tail = "\n".join(self.stderr.splitlines()[-20:])
            raise AssertionError(f"no JSON line on stdout of {' '.join(self.argv)}\n--- stderr (tail) ---\n{tail}")
        return lines[-1]


def run_in_netns(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    stdin: str | None = None,
) -> NetnsResult:
    """Run ``argv`` to completion inside a fresh namespace; capture stdout and stderr.

    Args:
        argv: the command (``[sys.executable, "-m", "decart_cli", ...]``, a venv's python, a script).
        timeout: seconds (multiplied by ``DECART_TIMEOUT_FACTOR``); on expiry the whole namespace's
            process group is killed and the test fails with what was captured so far.
        env: extra environment variables on top of the current environment.
        cwd: working directory (default: the repository root).
        stdin: text for the command's standard input (default: none, stdin is /dev/null).

    Returns:
        The result; call :meth:`NetnsResult.check` to require exit 0.
    """
    require_netns()
    full = [str(NETNS_RUN), *map(str, argv)]
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        full,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env,
        cwd=str(cwd or ROOT),
        start_new_session=True,  # one process group: a timeout kills the command and all it started
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout * TIMEOUT_FACTOR)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
        tail = "\n".join((err or "").splitlines()[-40:])
        raise AssertionError(
            f"timed out after {timeout * TIMEOUT_FACTOR:.0f} s: {' '.join(full)}\n--- stderr (tail) ---\n{tail}"
        ) from None
    return NetnsResult(full, proc.returncode, out, err)


def run_scenario(
    script: Path | str,
    *args: str,
    timeout: float,
    python: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> NetnsResult:
    """Run a Python scenario script in a fresh namespace: ``python SCRIPT ARGS...``.

    Args:
        script: path of the script; it should print its findings as one JSON object on its last
            stdout line (read it with :meth:`NetnsResult.json`).
        *args: the script's arguments.
        timeout: seconds, as for :func:`run_in_netns`.
        python: the interpreter (default: the one running the tests; an SDK venv's python otherwise).
        env: extra environment variables. ``PYTHONPATH`` gets the repository root and ``tests/``.
    """
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return run_in_netns(
        [str(python or sys.executable), str(script), *args],
        timeout=timeout,
        env={"PYTHONPATH": path, **(env or {})},
    )
