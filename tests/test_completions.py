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


def test_completion_command_prints_the_same_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    """`decart completion bash|zsh|fish` prints exactly the script in completions/ (for pipx installs)."""
    from cli import run_cli

    for shell, name in (("bash", "decart.bash"), ("zsh", "decart.zsh"), ("fish", "decart.fish")):
        r = run_cli(["completion", shell], monkeypatch)
        assert r.code == 0 and r.stderr == ""
        assert r.stdout == (ROOT / "completions" / name).read_text(encoding="utf-8")


def test_completion_for_an_unknown_shell_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown shell exits 2 naming it and the shells there are."""
    from cli import run_cli

    r = run_cli(["completion", "tcsh"], monkeypatch)
    assert r.code == 2 and r.stdout == ""
    assert r.stderr.splitlines() == ["error: no completion for shell 'tcsh'", "hint: use one of: bash, zsh, fish"]


def test_bash_completes_option_values_not_file_names(tmp_path: Path) -> None:
    """--mirror and --codec complete to their values (was: file names); --prompt completes nothing; file
    options still complete files (run in a directory holding a file, so a fallback would show)."""
    (tmp_path / "clip.mp4").write_text("")
    script = ROOT / "completions" / "decart.bash"

    def complete(words: list[str]) -> list[str]:
        cmd = (
            f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
            '_decart; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
        return [line for line in out.splitlines() if line]

    assert complete(["decart", "stream", "--mirror", ""]) == ["auto", "on", "off"]
    assert complete(["decart", "stream", "--codec", ""]) == ["h264", "vp8", "vp9"]
    assert complete(["decart", "stream", "--prompt", ""]) == []
    assert complete(["decart", "stream", "--input", "cl"]) == ["clip.mp4"]
    assert complete(["decart", "completion", ""]) == ["--help", "-h", "bash", "zsh", "fish"]


def test_model_completion_offers_current_names_only() -> None:
    """--model and `models show` offer canonical names and aliases, not deprecated names or retired models
    (which are still accepted)."""
    from decart_cli.core import catalog

    offered = _bash_complete(["decart", "stream", "--model", ""])
    assert offered == catalog.offered_names() and "lucy-2.1" in offered and "lucy-latest" in offered
    for old in ("mirage_v2", "lucy-2.1-vton-2", "lucy-vton-2", "lucy-vton-3"):
        assert old not in offered and old not in _bash_complete(["decart", "models", "show", ""])
        assert catalog.resolve(old).model is not None  # still accepted
