"""The official SDKs' virtualenvs (``make sdk-venvs``) and running their drivers in tests/sdk/.

Both SDKs are the PyPI package ``decart`` (0.0.40: direct era; 0.2.4: LiveKit era), so each lives in
its own virtualenv under ``.venv-sdk/`` and every test drives it as a subprocess. A missing
virtualenv fails the test with one line naming the fix; it is never skipped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from netns import json_lines

ROOT = Path(__file__).resolve().parent.parent
SDK_DIR = ROOT / ".venv-sdk"
SDK_SCRIPTS = ROOT / "tests" / "sdk"
HARNESS = SDK_SCRIPTS / "harness.py"
STAMP = ".installed-stamp"
TIMEOUT_FACTOR = float(os.environ.get("DECART_TIMEOUT_FACTOR", "1"))

__all__ = ["HARNESS", "SDK_SCRIPTS", "run_sdk", "sdk_python"]


def sdk_python(version: str) -> Path:
    """The interpreter of the ``decart==version`` virtualenv; fails the test when it is missing."""
    python = SDK_DIR / version / "bin" / "python"
    if not (SDK_DIR / version / STAMP).exists() or not python.exists():
        pytest.fail(
            f"the decart=={version} SDK virtualenv is missing (.venv-sdk/{version}): run make sdk-venvs",
            pytrace=False,
        )
    return python


def run_sdk(version: str, script: str, *args: str, timeout: float) -> dict[str, Any]:
    """Run ``tests/sdk/SCRIPT ARGS`` with the SDK's interpreter (no namespace); its last JSON line.

    Raises:
        AssertionError: the driver failed or printed no JSON (with its stderr tail).
    """
    python = sdk_python(version)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
    }
    proc = subprocess.run(
        [str(python), str(SDK_SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout * TIMEOUT_FACTOR,
        cwd=ROOT,
        env=env,
    )
    result = (json_lines(proc.stdout) or [None])[-1]
    if proc.returncode != 0 or result is None:
        tail = "\n".join(proc.stderr.splitlines()[-40:])
        raise AssertionError(f"decart=={version} driver {script} {' '.join(args)} exited {proc.returncode}\n{tail}")
    assert isinstance(result, dict)
    return result
