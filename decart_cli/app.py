"""The ``decart`` root command: global options, command registration, the one error boundary.

Exit codes are :class:`decart_cli.errors.ExitStatus`. Every :class:`~decart_cli.errors.DecartError`
becomes one line on stderr (plus a hint line); any other exception becomes one line that says
to re-run with ``--debug``, which shows the (redacted) traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from decart_cli import __version__
from decart_cli.errors import DecartError, ExitStatus, UsageError

try:  # typer >= 0.2x vendors click as typer._click; older releases depend on click itself
    from typer._click import exceptions as click_exc
    from typer._click.utils import make_default_short_help
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exc  # type: ignore[no-redef,import-not-found,unused-ignore]
    from click.utils import make_default_short_help  # type: ignore[no-redef,import-not-found,unused-ignore]

__all__ = ["COMMANDS", "LazyGroup", "app", "main"]

# Every command: its module (which has ``register(root)``) and the first paragraph of its help. The
# root group lists commands from this table, so ``decart --help`` imports no command module (each one
# pulls asyncio, httpx, aiohttp… and ``--help`` took ~0.23 s); a command is imported when it runs or
# when its own help is asked for. tests/test_app.py checks each help here against the command's own.
COMMANDS: dict[str, tuple[str, str]] = {
    "stream": (
        "decart_cli.commands.stream",
        "Stream a camera into a realtime model: live panel on a terminal, JSON events with --json.",
    ),
    "bench": (
        "decart_cli.commands.bench",
        "Measure stream sessions: fps, glass-to-glass latency, connect time, prompt acks, CPU, memory.",
    ),
    "netcheck": (
        "decart_cli.commands.netcheck",
        "Check that this network can reach Decart; name the firewall rule to request when it cannot.",
    ),
    "serve": (
        "decart_cli.commands.serve",
        "Run a local emulator of the realtime API (/v1/stream, POST /v1/client/tokens, a LiveKit stand-in).",
    ),
    "completion": (
        "decart_cli.commands.completion",
        "Print a completion script for bash, zsh or fish (redirect it where your shell loads completions).",
    ),
    "models": (
        "decart_cli.commands.models",
        "List the realtime models: frame size, fps, reference-image support, aliases.",
    ),
    "token": (
        "decart_cli.commands.token",
        "Create a short-lived client token for browsers, apps or 'decart stream --token'.",
    ),
}


def load_command(name: str) -> Any:
    """Import the module of command ``name`` and build its Click command as eager registration would."""
    module = importlib.import_module(COMMANDS[name][0])
    holder = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False)
    module.register(holder)
    return typer.main.get_group(holder).commands[name]


class _LazyCommands(MutableMapping[str, Any]):
    """The root group's commands: names known up front, each command built on first access."""

    def __init__(self, loaded: MutableMapping[str, Any]) -> None:
        self._loaded = dict(loaded)

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = load_command(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter([*COMMANDS, *(n for n in self._loaded if n not in COMMANDS)])

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._loaded))


class LazyGroup(TyperGroup):
    """The root group: lists :data:`COMMANDS` without importing them; imports one when it is used.

    Walking ``group.commands`` (the completion generator does) still builds every command, so the
    completion scripts and each command's help are what eager registration gave.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(self.commands)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Click's "Commands" section, from :data:`COMMANDS` (no import), in the same layout."""
        names = list(self.commands)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(n, make_default_short_help(COMMANDS[n][1], limit) if n in COMMANDS else "") for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="decart",
    cls=LazyGroup,
    help="Stream a camera into Decart's realtime video models and watch the result live.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # never print locals (API keys) in tracebacks
    rich_markup_mode=None,  # plain Click help: no Rich import, --help in ~0.1 s
    add_completion=False,  # static scripts (`decart completion SHELL`) complete without starting Python
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from decart_cli.ui.console import streams

        streams.line(f"decart {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", envvar="DECART_DEBUG", help="Debug logs and full tracebacks on errors.")
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (-v info, -vv debug).")
    ] = 0,
    log_file: Annotated[
        str | None,
        typer.Option("--log-file", metavar="FILE", help="Also write debug logs to this file (secrets redacted)."),
    ] = None,
) -> None:
    """Decart realtime video from the terminal. Start with 'decart models' or 'make demo'."""
    import logging

    from decart_cli.logs import setup_logging

    level = logging.DEBUG if debug or verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    try:
        setup_logging(level, log_file)
    except OSError as exc:
        raise _log_file_error(log_file or "", exc) from exc


def _log_file_error(path: str, exc: OSError) -> UsageError:
    """``--log-file`` that cannot be opened: one line naming the file and why, before any work."""
    from pathlib import Path

    parent = Path(path).expanduser().parent
    if not parent.is_dir():
        return UsageError(
            f"--log-file {path!r}: directory {str(parent)!r} does not exist",
            hint="create it first, or choose another file",
        )
    if Path(path).is_dir():
        return UsageError(f"--log-file {path!r} is a directory", hint="give a file name inside it")
    return UsageError(f"--log-file {path!r} cannot be opened: {exc.strerror or exc}", hint="choose a writable file")


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("DECART_DEBUG", "").lower() in {"1", "true", "yes"}


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI and exit with an :class:`ExitStatus` (the single error boundary)."""
    args = sys.argv[1:] if argv is None else argv
    debug = _debug_requested(args)
    command = typer.main.get_command(app)
    try:
        # With standalone_mode=False Click *returns* the code of a `typer.Exit(n)` instead of raising.
        result = command.main(args=args, prog_name="decart", standalone_mode=False)
        code: int = result if isinstance(result, int) else ExitStatus.OK
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        code = ExitStatus.INTERRUPTED
    except click_exc.ClickException as exc:  # usage errors: bad option, missing argument
        # One line and a hint, like every other error (Click's own form is four lines).
        _streams().error(_click_message(exc), _click_hint(exc, command, args))
        code = ExitStatus.USAGE
    except DecartError as exc:
        if debug:
            _print_traceback()
        _streams().error(exc.message, exc.hint)
        code = exc.exit_status
    except KeyboardInterrupt:
        _streams().error("interrupted")
        code = ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. `decart models | head -1`): not an error for the user.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = ExitStatus.OK
    except Exception as exc:  # noqa: BLE001 - the boundary: anything unexpected is one line
        if debug:
            _print_traceback()
        _streams().error(f"internal error: {type(exc).__name__}: {exc}", "re-run with --debug for the traceback")
        code = ExitStatus.ERROR
    sys.exit(int(code))


def _streams() -> Any:
    """stdout/stderr helpers, imported only when something is said (``--help`` needs none)."""
    from decart_cli.ui.console import streams

    return streams


def _click_message(exc: click_exc.ClickException) -> str:
    """Click's message on one line, starting lower-case like ours (``No such option: --x`` → ``no such option: --x``)."""
    text = " ".join(exc.format_message().split())
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _click_hint(exc: click_exc.ClickException, command: Any, args: list[str]) -> str:
    """Where to look next: the help of the command the bad word was given to."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None and ctx.parent is not None else _command_path(command, args)
    return f"see '{path} --help'"


def _command_path(command: Any, args: list[str]) -> str:
    """``decart token`` for ``["--debug", "token", "--ttl"]``: the commands named in ``args``."""
    words = ["decart"]
    for word in args:
        sub = getattr(command, "commands", {}).get(word)
        if sub is not None:
            words.append(word)
            command = sub
    return " ".join(words)


def _print_traceback() -> None:
    import traceback

    from decart_cli.config import redact

    sys.stderr.write(redact(traceback.format_exc()))
    sys.stderr.flush()
