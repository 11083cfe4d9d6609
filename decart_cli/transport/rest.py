"""The REST transport: an ``httpx.AsyncClient`` wrapper for Decart's HTTP API (tokens, models).

This is the only module that speaks HTTP to Decart. Everything httpx can raise and every non-2xx
status is translated into the :mod:`decart_cli.errors` tree in ONE place (:func:`translate_errors`
for exceptions, :func:`error_for_response` for statuses), with the original chained via ``from``:

====================================  =============================================  ==============
What happened                         Raised                                         Exit status
====================================  =============================================  ==============
DNS / refused / connect timeout / TLS :class:`NetworkError`                          NETWORK (5)
read / write timeout, dropped reply   :class:`NetworkError` (never retried)          NETWORK (5)
400, 422                              :class:`ApiError` with the server's message    USAGE (2)
401, 403                              :class:`ApiError`                              AUTH (3)
429                                   :class:`RateLimited` (``retry_after``)         RATE_LIMITED (6)
5xx                                   :class:`ApiError`                              SERVER (7)
other non-2xx                         :class:`ApiError`                              ERROR (1)
====================================  =============================================  ==============

Retries: only failures of the *connect phase* (``httpx.ConnectError`` other than TLS,
``httpx.ConnectTimeout``) are retried, with exponential backoff — the request never left this
machine, so repeating it cannot create a second token. Read timeouts and any response are final.

Usage::

    async with RestClient(settings.base_url, settings.api_key, timeouts=settings.timeouts) as rest:
        data = await rest.create_token({"expiresIn": 60})
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from decart_cli import __version__
from decart_cli.config import Secret, Timeouts, redact, register_secret
from decart_cli.errors import ApiError, ConfigError, ExitStatus, NetworkError, RateLimited

__all__ = [
    "TOKENS_PATH",
    "USER_AGENT",
    "RestClient",
    "RetryPolicy",
    "error_for_response",
    "translate_errors",
]

USER_AGENT: Final = f"decart-cli/{__version__} lang/py"
TOKENS_PATH: Final = "/v1/client/tokens"
_MAX_MESSAGE: Final = 300  # characters of a server error body quoted in our one-line message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how fast connect-phase failures are retried.

    Attributes:
        attempts: total attempts (1 = no retry).
        base_delay: delay before the first retry, in seconds; doubled each time.
        max_delay: cap on a single delay.
    """

    attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 2.0

    def delays(self) -> Iterator[float]:
        """The ``attempts - 1`` delays to sleep between attempts."""
        delay = self.base_delay
        for _ in range(max(0, self.attempts - 1)):
            yield min(delay, self.max_delay)
            delay *= 2


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _root_causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from (httpx → httpcore → OSError …)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_tls_failure(exc: BaseException) -> bool:
    return any(isinstance(e, ssl.SSLError) for e in _root_causes(exc)) or "SSL" in str(exc)


def _is_retryable(exc: httpx.HTTPError) -> bool:
    """True only when the request cannot have reached the server (connect phase, not TLS)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return True
    return isinstance(exc, httpx.ConnectError) and not _is_tls_failure(exc)


def _network_error(exc: httpx.HTTPError, url: str, timeouts: httpx.Timeout) -> NetworkError:
    """The one-line :class:`NetworkError` for an httpx exception (never quotes headers or keys)."""
    host = _host(url)
    causes = list(_root_causes(exc))
    local = host.startswith(("127.", "localhost", "[::1]"))
    if isinstance(exc, httpx.ConnectTimeout):
        return NetworkError(
            f"timed out connecting to {host} after {timeouts.connect:g} s",
            hint="check your network; a firewall may be silently dropping traffic",
        )
    if isinstance(exc, httpx.TimeoutException):
        return NetworkError(
            f"no response from {host} within {timeouts.read:g} s",
            hint="the request may have reached the server; check with 'decart netcheck' before retrying",
        )
    if _is_tls_failure(exc):
        reason = next((str(e) for e in causes if isinstance(e, ssl.SSLError)), str(exc))
        return NetworkError(
            f"TLS handshake with {host} failed: {reason}",
            hint="a proxy intercepting TLS, a wrong system clock or an http:// server on an https:// URL causes this",
        )
    if any(isinstance(e, socket.gaierror) for e in causes):
        return NetworkError(
            f"cannot resolve host {urlsplit(url).hostname or host}",
            hint="check the URL (--base-url / DECART_BASE_URL) and your DNS or network connection",
        )
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return NetworkError(
            f"connection refused by {host}",
            hint="start the local emulator with 'decart serve'" if local else "is a firewall blocking it?",
        )
    if isinstance(exc, httpx.ConnectError):
        return NetworkError(f"cannot connect to {host}: {exc}", hint="check your network connection")
    return NetworkError(f"connection to {host} failed: {type(exc).__name__}: {exc}")


@contextmanager
def translate_errors(url: str, timeouts: httpx.Timeout) -> Iterator[None]:
    """Translate any ``httpx.HTTPError`` raised inside into a :class:`NetworkError` (chained)."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise _network_error(exc, url, timeouts) from exc


def _server_message(response: httpx.Response) -> str:
    """The server's own words: ``error``/``message``/``detail`` of a JSON body, else the text."""
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for field in ("error", "message", "detail"):
            value = body.get(field)
            if isinstance(value, str) and value:
                text = value
                break
            if isinstance(value, list) and value:  # FastAPI/pydantic 422: [{"loc": [...], "msg": "..."}]
                text = "; ".join(
                    f"{'.'.join(str(p) for p in item.get('loc', [])[1:])}: {item.get('msg')}"
                    if isinstance(item, dict)
                    else str(item)
                    for item in value
                )
                break
    text = " ".join(text.split())  # one line
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1] + "…"
    return redact(text) or response.reason_phrase or "no message"


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or HTTP-date), or ``None``."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_response(response: httpx.Response) -> ApiError | None:
    """The :class:`ApiError` for a non-2xx response, or ``None`` for a success (table above)."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    message = _server_message(response)
    host = _host(str(response.request.url))
    if status in (400, 422):
        return ApiError(
            f"invalid request ({status}): {message}",
            status=status,
            exit_status=ExitStatus.USAGE,
            hint="check the option values against 'decart token --help'",
        )
    if status in (401, 403):
        hint = (
            "use a permanent API key here, not a client token (ek_…)"
            if "client token" in message.lower()
            else "check DECART_API_KEY / --api-key-file; create a key at https://platform.decart.ai"
        )
        return ApiError(
            f"API key rejected by {host} ({status}): {message}", status=status, exit_status=ExitStatus.AUTH, hint=hint
        )
    if status == 429:
        after = _retry_after(response)
        wait = f"; retry after {after:.0f} s" if after is not None else ""
        return RateLimited(
            f"rate limited by {host} (429): {message}{wait}",
            retry_after=after,
            hint="wait and try again; fewer requests per minute avoid this",
        )
    if status >= 500:
        return ApiError(
            f"server error from {host} ({status}): {message}",
            status=status,
            exit_status=ExitStatus.SERVER,
            hint="the service is having trouble; try again in a minute",
        )
    return ApiError(f"unexpected HTTP {status} from {host}: {message}", status=status)


class RestClient:
    """Decart's REST API over one pooled ``httpx.AsyncClient``. Use as an async context manager.

    Args:
        base_url: e.g. ``https://api.decart.ai`` or ``http://127.0.0.1:8787`` (no trailing slash needed).
        api_key: sent as ``X-API-KEY``; ``None`` is allowed for unauthenticated calls, and
            :meth:`create_token` then raises :class:`ConfigError`.
        timeouts: ``rest`` bounds each read/write/pool wait, half of it the TCP/TLS connect.
        transport: an ``httpx.AsyncBaseTransport`` to use instead of the network (tests).
        retry: connect-phase retry policy.
        sleep: the coroutine used to wait between retries (tests pass a recorder).
    """

    def __init__(
        self,
        base_url: str,
        api_key: Secret | None,
        *,
        timeouts: Timeouts | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        rest = (timeouts or Timeouts().scaled()).rest
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(rest, connect=rest / 2)
        self.retry = retry or RetryPolicy()
        self._api_key = api_key
        self._sleep = sleep
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self.timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,  # a redirect could carry X-API-KEY to another host
        )

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent."""
        if not self._client.is_closed:
            await self._client.aclose()

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        authenticated: bool = True,
    ) -> Any:
        """Send one request and return the decoded JSON of a 2xx response.

        Raises:
            ConfigError: ``authenticated`` but no API key was given.
            NetworkError: no HTTP answer (after connect-phase retries).
            ApiError: non-2xx status or a body that is not JSON (see the module table).
        """
        url = self.base_url + path
        headers: dict[str, str] = {}
        if authenticated:
            if not self._api_key:
                raise ConfigError(
                    "no API key configured",
                    hint="set DECART_API_KEY, or pass --api-key-file PATH (or --api-key - to read stdin); "
                    "use --local for the emulator",
                )
            headers["X-API-KEY"] = self._api_key.reveal()
        delays = self.retry.delays()
        attempt = 1
        while True:
            try:
                with translate_errors(url, self.timeout):
                    response = await self._client.request(method, path, json=body, headers=headers)
                    response_body = await response.aread()
                break
            except NetworkError as exc:
                cause = exc.__cause__
                delay = next(delays, None) if isinstance(cause, httpx.HTTPError) and _is_retryable(cause) else None
                if delay is None:
                    raise
                log.info("%s %s: %s; retry %d in %.2f s", method, url, exc.message, attempt, delay)
                attempt += 1
                await self._sleep(delay)
        log.debug("%s %s -> %d (%d bytes)", method, url, response.status_code, len(response_body))
        if error := error_for_response(response):
            raise error
        try:
            return json.loads(response_body)
        except ValueError as exc:
            raise ApiError(
                f"unexpected response from {_host(url)}: not JSON (HTTP {response.status_code})",
                status=response.status_code,
                hint="is --base-url pointing at Decart's API?",
            ) from exc

    async def create_token(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/client/tokens`` (decart-protocol.md §6.1); returns the response object.

        The returned ``apiKey`` (and ``token``) are registered as secrets so logs never show them.

        Raises:
            ApiError: as :meth:`request_json`, or when the response lacks ``apiKey``/``expiresAt``.
        """
        data = await self.request_json("POST", TOKENS_PATH, body=dict(body))
        if not isinstance(data, dict) or not isinstance(data.get("apiKey"), str) or "expiresAt" not in data:
            raise ApiError(f"unexpected token response from {_host(self.base_url)}: no apiKey/expiresAt")
        register_secret(data["apiKey"])
        if isinstance(data.get("token"), str):
            register_secret(data["token"])
        return data
