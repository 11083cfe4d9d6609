"""Settings, timeouts, secrets.

Precedence for every setting, highest first:

1. command-line flag (``--api-key-file``, ``--base-url``, ``--realtime-url``, ``--local``, ``--token``)
2. environment (``DECART_API_KEY``, ``DECART_TOKEN``, ``DECART_BASE_URL``, ``DECART_REALTIME_URL``)
3. config file ``$DECART_CONFIG_DIR/config.toml`` (default ``$XDG_CONFIG_HOME/decart`` or
   ``~/.config/decart``); keys ``api_key``, ``base_url``, ``realtime_url``
4. defaults (``https://api.decart.ai``, ``wss://api.decart.ai``: the newest SDK's realtime base;
   ``wss://api3.decart.ai`` still works as an override)

``--local`` points both URLs at a ``decart serve`` on ``DECART_LOCAL_ADDRESS`` (default
``127.0.0.1:8787``) and supplies a placeholder key when none is configured.

Secrets: every key or token that enters the program is registered with :func:`register_secret`;
:func:`redact` removes all of them from any text (log lines, error messages, tracebacks, URLs).
A config file holding a key is written with mode 0600 and refused when group/world readable.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from decart_cli.errors import ConfigError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LOCAL_ADDRESS",
    "DEFAULT_REALTIME_URL",
    "LOCAL_PLACEHOLDER_KEY",
    "Secret",
    "Settings",
    "Timeouts",
    "check_credential",
    "config_dir",
    "history_path",
    "is_client_token",
    "load_settings",
    "read_history",
    "read_key_source",
    "redact",
    "register_secret",
    "timeout_factor",
    "write_config",
    "write_history",
]

DEFAULT_BASE_URL: Final = "https://api.decart.ai"
DEFAULT_REALTIME_URL: Final = "wss://api.decart.ai"  # Python SDK 0.2.4+ (decart-protocol-2026-11.md §2.1)
DEFAULT_LOCAL_ADDRESS: Final = "127.0.0.1:8787"
LOCAL_PLACEHOLDER_KEY: Final = "decart-local-key"
REDACTED: Final = "***"

_SECRETS: set[str] = set()
# Query parameters that carry credentials, redacted even when the value was never registered.
# Also their URL-encoded form (``api_key%3D…``, a URL quoted inside another URL), up to ``%26``.
_KEY_PARAM = re.compile(r"((?:api_key|token|apiKey)(?:=|%3[Dd]))(?:(?!%26)[^&\s'\"])+")
# The same names as JSON (or Python repr) fields: ``"token": "…"`` — livekit_room_info's LiveKit
# access token, the token endpoint's reply. The value may be cut short (websockets elides long frames
# in its debug log): everything up to the closing quote or the end goes.
_KEY_FIELD = re.compile(r"""((["'])(?:token|apiKey|api_key|access_token)\2\s*:\s*(["']))(?:\\.|(?!\3).)*""")
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# A JWT anywhere in a text: three base64url parts, the first one a JSON object once decoded (checked
# in _jwt_or_text, so host names and version strings with two dots stay as they are).
_JWT_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_.-])[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*(?![A-Za-z0-9_-])")


def register_secret(value: str) -> None:
    """Remember ``value`` so :func:`redact` removes it everywhere. Short values are ignored."""
    if len(value) >= 4:
        _SECRETS.add(value)
        # URL-encoded forms appear in WebSocket URLs quoted inside library exceptions.
        from urllib.parse import quote, quote_plus

        _SECRETS.add(quote(value, safe=""))
        _SECRETS.add(quote(value))  # urllib's default keeps "/" (the Python SDK's URL building)
        _SECRETS.add(quote_plus(value))


def redact(text: str) -> str:
    """Return ``text`` without secrets: every registered one, every ``api_key=``/``token=``/``apiKey=``
    query value, every JSON ``"token": "…"`` (``apiKey``, ``api_key``, ``access_token``) value and
    every JWT-shaped string (a LiveKit access token, a client token), registered or not."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _KEY_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
    text = _KEY_FIELD.sub(lambda m: m.group(1) + REDACTED, text)
    return _JWT_IN_TEXT.sub(_jwt_or_text, text) if "." in text else text


def _jwt_or_text(match: re.Match[str]) -> str:
    """``***`` for a JWT (its first part decodes to a JSON object), the text unchanged otherwise."""
    import base64
    import json

    candidate = match.group(0)
    header = candidate.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, UnicodeDecodeError):
        return candidate
    return REDACTED if isinstance(decoded, dict) else candidate


class Secret:
    """A credential whose ``repr``/``str`` never shows the value. Call :meth:`reveal` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        """The raw value: only for the one place the protocol needs it (URL / header)."""
        return self._value

    @property
    def kind(self) -> str:
        """``"client token"`` for an ``ek_…`` key or a signed JWT, ``"api key"`` otherwise."""
        return "client token" if is_client_token(self._value) else "api key"

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def is_client_token(value: str) -> bool:
    """Either form of a client token: an ``ek_…`` key, or a signed JWT (three dot-separated base64url
    parts, what ``POST /v1/client/tokens`` returns as ``token`` since 2026)."""
    return value.startswith("ek_") or _JWT.fullmatch(value) is not None


def check_credential(value: str, source: str) -> str:
    """Refuse a key or token that cannot be right before it reaches a header or a URL.

    Args:
        value: the key or token (never shown in the error).
        source: where it came from, for the message (``"DECART_API_KEY"``, ``"--api-key-file key.txt"``).

    Raises:
        ConfigError: empty, or holding non-ASCII, whitespace or control characters (a paste gone
            wrong: HTTP headers cannot carry them).
    """
    if not value:
        raise ConfigError(f"the key from {source} is empty")
    for position, char in enumerate(value, 1):
        if not char.isascii() or not char.isprintable() or char.isspace():
            what = "a non-ASCII character" if not char.isascii() else "a space or control character"
            raise ConfigError(
                f"the key from {source} contains {what} (position {position} of {len(value)})",
                hint="keys and tokens are plain ASCII: check for a typo, a pasted quote or a line break",
            )
    return value


def timeout_factor() -> float:
    """``DECART_TIMEOUT_FACTOR`` (the test suite's knob that scales every deadline), 1 when unset or bad."""
    try:
        return max(0.01, float(os.environ.get("DECART_TIMEOUT_FACTOR", "1")))
    except ValueError:
        return 1.0


@dataclass(frozen=True)
class Timeouts:
    """Every deadline in one place (seconds). ``DECART_TIMEOUT_FACTOR`` scales them all (tests)."""

    ws_open: float = 15.0
    initial_prompt_ack: float = 15.0  # Py-direct value (decart-protocol.md §2.5)
    initial_image_ack: float = 30.0
    prompt_ack: float = 15.0
    set_ack: float = 30.0
    connect: float = 60.0  # whole attempt until the media is connected (paused while queued for capacity)
    room_info: float = 15.0  # livekit_join → livekit_room_info, until the first queue_position/status
    queue_wait: float = 600.0  # total time waiting for capacity (queue_position) before giving up
    disconnect: float = 2.0  # SIGINT/SIGTERM must finish within 2 s
    rest: float = 10.0
    media_stall: float = 5.0  # no remote frame for this long while connected ⇒ reconnect
    camera_stall: float = 3.0  # no camera frame for this long ⇒ retry, then fail
    first_frame: float = 30.0  # decart bench: a session's first remote frame, from the start

    def scaled(self, factor: float | None = None) -> Timeouts:
        """A copy with every value multiplied by ``factor`` (default: ``DECART_TIMEOUT_FACTOR``)."""
        f = timeout_factor() if factor is None else factor
        return Timeouts(**{k: v * f for k, v in vars(self).items()})


@dataclass(frozen=True)
class Settings:
    """Where to connect and with which credential. Build with :func:`load_settings`."""

    base_url: str = DEFAULT_BASE_URL
    realtime_url: str = DEFAULT_REALTIME_URL
    api_key: Secret | None = None
    token: Secret | None = None  # a client token (ek_…) used instead of the API key
    local: bool = False
    timeouts: Timeouts = field(default_factory=Timeouts)

    @property
    def credential(self) -> Secret | None:
        """What goes into ``api_key=`` on the realtime URL: the client token if any, else the key."""
        return self.token or self.api_key

    def with_(self, **changes: Any) -> Settings:
        """A modified copy."""
        return replace(self, **changes)


def config_dir() -> Path:
    """``$DECART_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/decart``, else ``~/.config/decart``."""
    if env := os.environ.get("DECART_CONFIG_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "decart"


def _read_config_file() -> dict[str, Any]:
    path = config_dir() / "config.toml"
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if "api_key" in data and os.name == "posix":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"config file {path} holds an API key but is readable by others (mode {mode:04o})",
                hint=f"run: chmod 600 {path}",
            )
    return data


def write_config(values: dict[str, str]) -> Path:
    """Merge ``values`` into the config file, created with mode 0600 (it may hold a key)."""
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "config.toml"
    data = _read_config_file() if path.exists() else {}
    data.update(values)
    body = "".join(f'{k} = "{v}"\n' for k, v in sorted(data.items()))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    os.chmod(path, 0o600)
    return path


HISTORY_FILE: Final = "history"
HISTORY_LIMIT: Final = 500


def history_path() -> Path:
    """The panel's input history: ``$DECART_CONFIG_DIR/history``, one line per entry, mode 0600."""
    return config_dir() / HISTORY_FILE


def read_history() -> list[str]:
    """The saved input history, oldest first (at most :data:`HISTORY_LIMIT`); ``[]`` when unreadable."""
    try:
        text = history_path().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [line for line in text.splitlines() if line.strip()][-HISTORY_LIMIT:]


def write_history(lines: list[str]) -> None:
    """Save the input history (the newest :data:`HISTORY_LIMIT` lines), mode 0600 in a 0700 directory.

    Never holds a secret: a line containing a registered key or token, or an ``api_key=``/``token=``
    value, is left out. Failing to write is not an error (the history is a convenience).
    """
    kept = [line for line in lines if line.strip() and "\n" not in line and redact(line) == line][-HISTORY_LIMIT:]
    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in kept))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError:
        pass


def read_key_source(source: str) -> str:
    """Read a key from a file path, or from stdin when ``source`` is ``-``; strips whitespace.

    Raises:
        ConfigError: unreadable or empty, or a file readable by group or others (mode must be 0600).
    """
    if source != "-" and os.name == "posix":
        try:
            mode = stat.S_IMODE(Path(source).stat().st_mode)
        except OSError as exc:
            raise ConfigError(f"cannot read API key file {source!r}: {exc.strerror}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO) and Path(source).is_file():
            raise ConfigError(
                f"API key file {source!r} is readable by others (mode {mode:04o})",
                hint=f"run: chmod 600 {source}",
            )
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read API key file {source!r}: {exc.strerror}") from exc
    key = raw.strip()
    if not key:
        raise ConfigError(f"API key source {source!r} is empty")
    return key


def _local_urls() -> tuple[str, str]:
    address = os.environ.get("DECART_LOCAL_ADDRESS", DEFAULT_LOCAL_ADDRESS)
    return f"http://{address}", f"ws://{address}"


def _token(flag: str | None, env: os._Environ[str] | dict[str, str]) -> str | None:
    """The client token from ``--token`` or ``DECART_TOKEN``, checked (either form, see :func:`is_client_token`).

    An empty one is refused rather than ignored: it is what ``--token "$(decart token)"`` gives when
    minting failed, and streaming on without it would silently use the API key or fail later.
    """
    if flag is not None:
        value, source = flag.strip(), "--token"
    elif "DECART_TOKEN" in env:
        value, source = env["DECART_TOKEN"].strip(), "DECART_TOKEN"
    else:
        return None
    if not value:
        raise ConfigError(
            f"{source} is empty",
            hint="give a client token from 'decart token' (did the command that printed it fail?)"
            + (", or unset DECART_TOKEN" if source == "DECART_TOKEN" else ""),
        )
    check_credential(value, source)
    if not is_client_token(value):
        raise ConfigError(
            f"{source} is not a client token: expected an ek_… key or a signed JWT (header.payload.signature)",
            hint="mint one with 'decart token'; a permanent API key goes in DECART_API_KEY or --api-key-file",
        )
    return value


def load_settings(
    *,
    api_key: str | None = None,
    api_key_file: str | None = None,
    token: str | None = None,
    base_url: str | None = None,
    realtime_url: str | None = None,
    local: bool = False,
) -> Settings:
    """Resolve settings from flags, environment, config file and defaults (module docstring).

    Args:
        api_key: the key itself, or ``"-"`` to read it from stdin.
        api_key_file: path of a file holding the key (``-`` for stdin).
    """
    file_cfg = _read_config_file()
    env = os.environ

    key_value: str | None = None
    key_source = ""
    if api_key == "-" or api_key_file:
        key_value = read_key_source(api_key_file or "-")
        key_source = "stdin" if (api_key_file or "-") == "-" else f"--api-key-file {api_key_file}"
    elif api_key:
        key_value, key_source = api_key, "--api-key"
    elif env.get("DECART_API_KEY"):
        key_value, key_source = env["DECART_API_KEY"], "DECART_API_KEY"
    elif file_cfg.get("api_key"):
        key_value, key_source = str(file_cfg["api_key"]), f"the config file {config_dir() / 'config.toml'}"
    if key_value:
        check_credential(key_value, key_source)

    token_value = _token(token, env)

    if local:
        local_base, local_rt = _local_urls()
        base = base_url or local_base
        realtime = realtime_url or local_rt
        if not key_value and not token_value:
            key_value = LOCAL_PLACEHOLDER_KEY
    else:
        base = base_url or env.get("DECART_BASE_URL") or file_cfg.get("base_url") or DEFAULT_BASE_URL
        realtime = (
            realtime_url or env.get("DECART_REALTIME_URL") or file_cfg.get("realtime_url") or DEFAULT_REALTIME_URL
        )

    for name, url in (("base URL", base), ("realtime URL", realtime)):
        if not re.match(r"^(https?|wss?)://[^\s/]+", url):
            raise ConfigError(f"invalid {name} {url!r}", hint="use a URL such as https://api.decart.ai")

    return Settings(
        base_url=base.rstrip("/"),
        realtime_url=realtime.rstrip("/"),
        api_key=Secret(key_value) if key_value else None,
        token=Secret(token_value) if token_value else None,
        local=local,
        timeouts=Timeouts().scaled(),
    )
