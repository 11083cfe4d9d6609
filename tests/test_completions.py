"""completions/ is generated from the app and must be current; the bash script really completes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_completions_are_current() -> None:
    """Regenerating the scripts from the app changes nothing (run `make completions` otherwise)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_completions.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def _bash_complete(words: list[str]) -> list[str]:
    script = (
        f"source {ROOT / 'completions' / 'decart.bash'}; "
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; _decart; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


def test_bash_completes_commands_and_model_names() -> None:
    """`decart mo<TAB>` gives models; `decart models show lucy-2<TAB>` gives catalogue names."""
    assert _bash_complete(["decart", "mo"]) == ["models"]
    assert "lucy-2.1" in _bash_complete(["decart", "models", "show", "lucy-2"])
    assert "--json" in _bash_complete(["decart", "models", "--"])


@pytest.mark.parametrize(("shell", "name", "flag"), [("zsh", "decart.zsh", "-n"), ("fish", "decart.fish", "-n")])
def test_other_shells_parse(shell: str, name: str, flag: str) -> None:
    """The zsh and fish scripts are syntactically valid for their shells (where installed)."""
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed on this machine; syntax not checked")
    proc = subprocess.run([shell, flag, str(ROOT / "completions" / name)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
