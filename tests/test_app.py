"""The root command: version, help, exit codes, the error boundary, `decart models`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli import run_cli

from decart_cli import __version__
from decart_cli.errors import ExitStatus


def test_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """--version prints the version on stdout and exits 0."""
    r = run_cli(["--version"], monkeypatch)
    assert (r.code, r.stdout) == (0, f"decart {__version__}\n")


def test_models_json_is_pure_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """`decart models --json` prints one JSON array on stdout and nothing on stderr."""
    r = run_cli(["models", "--json"], monkeypatch)
    assert r.code == 0 and r.stderr == ""
    models = json.loads(r.stdout)
    lucy = next(m for m in models if m["name"] == "lucy-2.1")
    assert (lucy["width"], lucy["height"], lucy["fps"], lucy["reference_image"]) == (1088, 624, 30, True)
    assert "lucy-latest" in lucy["aliases"]


def test_models_list_alias_gives_the_same_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """`decart models list --json` equals `decart models --json`."""
    a = run_cli(["models", "--json"], monkeypatch).stdout
    b = run_cli(["models", "list", "--json"], monkeypatch).stdout
    assert a == b


def test_models_table_without_tty_is_tab_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Piped output is a header plus one tab-separated row per model (no box drawing, no colour)."""
    r = run_cli(["models"], monkeypatch)
    lines = r.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["model", "size", "fps"]
    assert "lucy-2.1\t1088×624\t30" in r.stdout
    assert "\x1b[" not in r.stdout


def test_models_show_deprecated_name_notice_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deprecated name resolves, with a one-line notice on stderr and clean JSON on stdout."""
    r = run_cli(["models", "show", "mirage_v2", "--json"], monkeypatch)
    assert r.code == 0
    assert json.loads(r.stdout)["name"] == "lucy-restyle-2"
    assert r.stderr.count("\n") == 1 and "deprecated" in r.stderr


def test_unknown_model_exits_2_with_suggestion(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown name exits 2 with 'did you mean' and no traceback."""
    r = run_cli(["models", "show", "lucy-2.7"], monkeypatch)
    assert r.code == ExitStatus.USAGE
    assert "unknown model 'lucy-2.7'" in r.stderr and "did you mean" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_bad_option_is_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown option exits 2."""
    assert run_cli(["models", "--frobnicate"], monkeypatch).code == ExitStatus.USAGE


def test_debug_shows_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --debug the error boundary prints the traceback before the one-line error."""
    r = run_cli(["--debug", "models", "show", "nope-model"], monkeypatch)
    assert r.code == ExitStatus.USAGE
    assert "Traceback" in r.stderr and "UnknownModelError" in r.stderr


def test_python_m_and_help_work_without_a_tty() -> None:
    """`python -m decart_cli --help` lists every command and exits 0."""
    proc = subprocess.run([sys.executable, "-m", "decart_cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for command in ("stream", "token", "netcheck", "models", "serve"):
        assert command in proc.stdout


def test_no_color_and_pipes_give_plain_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR (and a non-TTY stderr) produce errors without ANSI escapes."""
    monkeypatch.setenv("NO_COLOR", "1")
    r = run_cli(["models", "show", "x-y-z"], monkeypatch)
    assert "\x1b[" not in r.stderr and r.stderr.startswith("error: ")


def test_typer_exit_code_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that raises typer.Exit(n) makes the process exit with n (not 0)."""
    import typer

    from decart_cli import app as app_module

    probe = typer.Typer()

    @probe.command()
    def fail() -> None:
        raise typer.Exit(3)

    monkeypatch.setattr(app_module, "app", probe)
    assert run_cli([], monkeypatch).code == 3


def test_the_command_table_holds_each_commands_own_help() -> None:
    """The root lists commands from app.COMMANDS without importing them: each entry's text is the first
    paragraph of that command's own help, so `decart --help` reads as eager registration made it."""
    from decart_cli.app import COMMANDS, load_command

    for name, (_module, help_text) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert command.help.split("\n\n")[0].split() == help_text.split(), name


def test_help_lists_every_command_without_importing_them() -> None:
    """`decart --help` names every command with its short help and imports none of the command modules
    (each pulls asyncio, httpx, aiohttp…); running one imports only that one."""
    code = (
        "import sys, io, contextlib\n"
        "from decart_cli.app import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(out.getvalue())\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith('decart_cli.commands.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    help_text, loaded = out.rsplit("LOADED", 1)
    assert loaded.strip() == "[]", loaded
    for name in ("stream", "bench", "netcheck", "serve", "completion", "models", "token"):
        assert f"\n  {name} " in help_text, name
    assert "Measure stream sessions: fps, glass-to-glass latency,..." in help_text
