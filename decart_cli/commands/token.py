"""``decart token`` / ``decart token create``: mint a short-lived client token.

A client token goes where the API key would (``decart stream --token``, ``DECART_TOKEN``, or a
browser app) so the permanent key never leaves the machine that holds it
(decart-protocol.md §1.4, §6.1; decart-protocol-2026-11.md §8). The response is
``{apiKey, token, expiresAt, …}``: ``token`` is the signed JWT the service now hands to frontends
for realtime, and is what gets printed (``apiKey``, the ``ek_…`` key, when a server sends no JWT).
Output is made for scripts::

    export DECART_TOKEN=$(decart token --ttl 300 --model lucy-2.1)

stdout carries only the token; the expiry goes to stderr in words. ``--json`` prints the whole
response instead. Every option is validated before any request (exit 2 on a bad value).
``--local`` uses the emulator on ``DECART_LOCAL_ADDRESS``, starting one there that keeps running
when none answers (see ``commands/_local.py``: the token is only valid on the emulator that minted it).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import urlsplit

import typer

from decart_cli.commands._options import ApiKeyFileOpt, ApiKeyOpt, BaseUrlOpt, JsonOpt, LocalOpt
from decart_cli.config import Settings, load_settings
from decart_cli.core import catalog
from decart_cli.errors import UsageError
from decart_cli.ui.console import streams

if TYPE_CHECKING:  # httpx loads only when a token is requested, so `decart --help` stays fast
    from decart_cli.transport.rest import RestClient

__all__ = ["build_request", "describe_expiry", "register"]

TTL_MIN: Final = 1
TTL_MAX: Final = 3600
TTL_DEFAULT: Final = 60
MAX_LIST: Final = 20  # allowedModels / allowedOrigins limit (decart-protocol.md §6.1)
_METADATA_KEY = re.compile(r"^[^=\s]+$")


def _rest_client(settings: Settings) -> RestClient:
    from decart_cli.transport.rest import RestClient

    return RestClient(settings.base_url, settings.api_key, timeouts=settings.timeouts)


#: Builds the REST client from settings; tests swap it to inject an ``httpx.MockTransport``.
client_factory: Callable[[Settings], RestClient] = _rest_client

app = typer.Typer(
    help="Create a short-lived client token for browsers, apps or 'decart stream --token'.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _origin(value: str) -> str:
    """A web origin exactly as browsers send it in ``Origin:`` (scheme://host[:port])."""
    parts = urlsplit(value.strip())
    bad = f"invalid origin {value!r}"
    hint = "give a full origin with scheme and no path, e.g. https://example.com or http://localhost:3000"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(bad, hint=hint)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(bad, hint=hint)
    try:
        port = parts.port
    except ValueError as exc:
        raise UsageError(bad, hint=hint) from exc
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _metadata(pairs: Sequence[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not _METADATA_KEY.match(key):
            raise UsageError(f"invalid metadata {pair!r}", hint="use KEY=VALUE, e.g. --metadata user=alice")
        result[key] = value
    return result


def _check_count(name: str, items: Sequence[str]) -> None:
    if len(items) > MAX_LIST:
        raise UsageError(f"too many {name}: {len(items)} given, at most {MAX_LIST} allowed")


def build_request(
    *,
    ttl: int = TTL_DEFAULT,
    models: Sequence[str] = (),
    origins: Sequence[str] = (),
    max_session_duration: int | None = None,
    metadata: Sequence[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    """Validate the options and build the request body of ``POST /v1/client/tokens``.

    Returns:
        ``(body, notices)``: the JSON body, and deprecation notices for stderr.

    Raises:
        UsageError: a value out of range, an unknown model (with a suggestion), a bad origin or
            metadata pair, more than 20 models or origins.
    """
    if not TTL_MIN <= ttl <= TTL_MAX:
        raise UsageError(f"--ttl {ttl} is out of range", hint=f"use {TTL_MIN}–{TTL_MAX} seconds")
    body: dict[str, Any] = {"expiresIn": ttl}
    notices: list[str] = []
    if models:
        wire: list[str] = []
        for name in models:
            resolved = catalog.resolve(name)  # UnknownModelError suggests close names
            if resolved.notice:
                notices.append(resolved.notice)
            if resolved.wire_name not in wire:
                wire.append(resolved.wire_name)
        _check_count("models", wire)
        body["allowedModels"] = wire
    if origins:
        normalised = list(dict.fromkeys(_origin(o) for o in origins))
        _check_count("origins", normalised)
        body["allowedOrigins"] = normalised
    if max_session_duration is not None:
        if max_session_duration < 1:
            raise UsageError(
                f"--max-session-duration {max_session_duration} is out of range",
                hint="use a positive number of seconds",
            )
        body["constraints"] = {"realtime": {"maxSessionDuration": max_session_duration}}
    if metadata:
        body["metadata"] = _metadata(metadata)
    return body, notices


def _words(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = round(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def describe_expiry(expires_at: str, now: datetime | None = None) -> str:
    """``"token expires in 5 minutes (at 2026-01-01 12:05:00 UTC)"``; tolerant of odd formats."""
    try:
        when = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError:
        return f"token expires at {expires_at}"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    left = (when - (now or datetime.now(UTC))).total_seconds()
    stamp = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    if left <= 0:
        return f"token already expired (at {stamp}); check this machine's clock"
    return f"token expires in {_words(left)} (at {stamp})"


def _printed_token(data: dict[str, Any]) -> str:
    """What ``decart token`` prints: the signed JWT ``token`` (what the service hands to frontends for
    realtime since 2026), or the ``ek_…`` ``apiKey`` with a notice when a server (an older API, an
    older emulator) returns none. Both open realtime sessions (``decart stream --token`` takes either)."""
    value = data.get("token")
    if isinstance(value, str) and value:
        return value
    streams.warn("the server returned no signed token (JWT); printing the client key (ek_…), which works the same")
    return str(data["apiKey"])


async def _create(settings: Settings, body: dict[str, Any]) -> dict[str, Any]:
    async with client_factory(settings) as rest:
        return await rest.create_token(body)


TtlOpt = Annotated[
    int,
    typer.Option(
        "--ttl", metavar="SECONDS", help=f"Seconds the token can be used to open sessions ({TTL_MIN}–{TTL_MAX})."
    ),
]
ModelOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--model", metavar="NAME", help=f"Allow only this model (repeatable, at most {MAX_LIST}); see 'decart models'."
    ),
]
OriginOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--origin",
        metavar="URL",
        help=f"Allow only this web origin, e.g. https://example.com (repeatable, ≤ {MAX_LIST}).",
    ),
]
MaxSessionOpt = Annotated[
    int | None,
    typer.Option(
        "--max-session-duration",
        metavar="SECONDS",
        help="Seconds after which the server ends a session opened with it.",
    ),
]
MetadataOpt = Annotated[
    list[str] | None,
    typer.Option("--metadata", metavar="KEY=VALUE", help="Attach KEY=VALUE to the token (repeatable)."),
]


def token(
    ctx: typer.Context,
    ttl: TtlOpt = TTL_DEFAULT,
    model: ModelOpt = None,
    origin: OriginOpt = None,
    max_session_duration: MaxSessionOpt = None,
    metadata: MetadataOpt = None,
    as_json: JsonOpt = False,
    api_key: ApiKeyOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    base_url: BaseUrlOpt = None,
    local: LocalOpt = False,
) -> None:
    """Create a client token: only the token on stdout, its expiry on stderr (--json: the full response)."""
    if ctx.invoked_subcommand is not None:  # `decart token create …` runs the same function as a command
        return
    body, notices = build_request(
        ttl=ttl,
        models=model or (),
        origins=origin or (),
        max_session_duration=max_session_duration,
        metadata=metadata or (),
    )
    settings = load_settings(api_key=api_key, api_key_file=api_key_file, base_url=base_url, local=local)
    for notice in notices:
        streams.warn(notice)
    if local and base_url is None:
        from decart_cli.commands._local import persistent_server

        settings = persistent_server(settings)
    data = asyncio.run(_create(settings, body))
    if as_json:
        streams.json(data)
        return
    streams.line(_printed_token(data))
    detail = describe_expiry(str(data["expiresAt"]))
    permissions = data.get("permissions") or {}
    if permissions.get("models"):
        detail += f"; models: {', '.join(permissions['models'])}"
    if permissions.get("origins"):
        detail += f"; origins: {', '.join(permissions['origins'])}"
    streams.info(detail)


app.callback()(token)
app.command("create")(token)


def register(root: typer.Typer) -> None:
    """Attach ``token`` (and ``token create``) to the root app."""
    root.add_typer(app, name="token")
