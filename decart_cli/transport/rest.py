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
401, 403                              :class:`ApiError` worded for the credential    AUTH (3)
429                                   :class:`RateLimited` (``retry_after``)         RATE_LIMITED (6)
5xx                                   :class:`ApiError`                              SERVER (7)
other non-2xx; any non-JSON 4xx       :class:`ApiError` ("does not answer like       ERROR (1)
                                      Decart's API", check --base-url)
====================================  =============================================  ==============

Bodies are never printed: the message quotes the API's own short JSON error text (``error`` /
``message`` / ``detail``), and only names any other body ("an HTML page"); ``--debug`` logs a short
sanitised excerpt. A rejected client token is worded as a token (expired, restricted to other
models) with how to mint a new one (:mod:`decart_cli.core.server_errors`).

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
import re
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
from decart_cli.core.server_errors import clip, explain_refusal
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


def _server_message(response: httpx.Response) -> tuple[str | None, str]:
    """``(message, what the body was)``: the API's own short words from a JSON error body
    (``error``/``message``/``detail``), or ``None`` and ``"an HTML page"`` / ``"a non-JSON reply"`` /
    ``"an empty reply"`` / ``"a JSON reply without an error message"``.

    A body that is not one of the API's JSON errors is never quoted (it can be a whole HTML page from
    a proxy or the wrong server); with ``--debug`` a short sanitised excerpt goes to the debug log.
    """
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for field in ("error", "message", "detail"):
            value = body.get(field)
            if isinstance(value, str) and value.strip():
                return _one_line(value), "JSON"
            if isinstance(value, list) and value:  # FastAPI/pydantic 422: [{"loc": [...], "msg": "..."}]
                return _one_line(
                    "; ".join(
                        f"{'.'.join(str(p) for p in item.get('loc', [])[1:])}: {item.get('msg')}"
                        if isinstance(item, dict)
                        else str(item)
                        for item in value
                    )
                ), "JSON"
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return _one_line(value["message"]), "JSON"
        kind = "a JSON reply without an error message"
    elif not text:
        kind = "an empty reply"
    elif "html" in response.headers.get("content-type", "").lower() or text.lstrip().startswith("<"):
        kind = "an HTML page"
    else:
        kind = "a non-JSON reply"
    if text:
        excerpt = re.sub(r"<[^>]*>", " ", text)  # tags out: the words of a page, not its markup
        log.debug("HTTP %d body (%s), sanitised excerpt: %r", response.status_code, kind, _one_line(excerpt, 120))
    return None, kind


def _one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    """``text`` on one line of printable characters, at most ``limit`` long, secrets redacted."""
    return redact(clip(text, limit))


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


_BASE_URL_HINT: Final = (
    "is --base-url / DECART_BASE_URL pointing at Decart's API (https://api.decart.ai)? Use --local for the emulator"
)


def error_for_response(response: httpx.Response, *, credential_kind: str = "api key") -> ApiError | None:
    """The :class:`ApiError` for a non-2xx response, or ``None`` for a success (table above).

    Args:
        credential_kind: ``"api key"`` or ``"client token"`` (``Secret.kind``): a rejected client
            token is worded as a token (expired, restricted) with how to mint a new one.

    The message quotes the API's own short error text when the body is one of its JSON errors, and
    only describes any other body ("an HTML page"): a response body is never printed.
    """
    status = response.status_code
    if 200 <= status < 300:
        return None
    message, body_kind = _server_message(response)
    host = _host(str(response.request.url))
    reason = f"{status} {response.reason_phrase}".strip()
    # Decart's API answers errors in JSON; an HTML page or plain text is a proxy or another server.
    foreign = message is None and body_kind in ("an HTML page", "a non-JSON reply")
    shown = message if message is not None else f"{body_kind}, not an error from Decart's API"
    if status in (401, 403) and not foreign:
        refused = explain_refusal(message or "", client_token=credential_kind == "client token")
        return ApiError(
            f"{refused.subject} rejected by {host} ({status}): {refused.reason or shown}",
            status=status,
            exit_status=ExitStatus.AUTH,
            hint=refused.hint,
        )
    if status == 429:
        after = _retry_after(response)
        wait = f"; retry after {after:.0f} s" if after is not None else ""
        return RateLimited(
            f"rate limited by {host} (429): {message or 'too many requests'}{wait}",
            retry_after=after,
            hint="wait and try again; fewer requests per minute avoid this",
        )
    if status >= 500:
        return ApiError(
            f"server error from {host} ({status}): {shown}",
            status=status,
            exit_status=ExitStatus.SERVER,
            hint="the service (or a proxy in front of it) is having trouble; try again in a minute"
            + ("; if it persists, check --base-url" if foreign else ""),
        )
    if foreign:
        return ApiError(
            f"{host} does not answer like Decart's API: HTTP {reason} with {body_kind}",
            status=status,
            hint=_BASE_URL_HINT,
        )
    if status in (400, 422):
        return ApiError(
            f"invalid request ({status}): {shown}",
            status=status,
            exit_status=ExitStatus.USAGE,
            hint="check the option values against 'decart token --help'",
        )
    if status == 404:
        return ApiError(
            f"{host} has no {response.request.url.path} (HTTP 404): {shown}", status=status, hint=_BASE_URL_HINT
        )
    return ApiError(f"unexpected HTTP {reason} from {host}: {shown}", status=status)


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


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
        kind = self._api_key.kind if authenticated and self._api_key else "api key"
        if error := error_for_response(response, credential_kind=kind):
            raise error
        try:
            return json.loads(response_body)
        except ValueError as exc:
            _, body_kind = _server_message(response)
            raise ApiError(
                f"{_host(url)} does not answer like Decart's API: HTTP {response.status_code} with {body_kind}, not JSON",
                status=response.status_code,
                hint=_BASE_URL_HINT,
            ) from exc

    async def create_token(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/client/tokens`` (decart-protocol.md §6.1); returns the response object.

        The returned ``token`` (signed JWT) and ``apiKey`` (``ek_…``) are registered as secrets so
        logs never show them.

        Raises:
            ApiError: as :meth:`request_json`, or when the response has neither ``token`` nor
                ``apiKey``, or no ``expiresAt``.
        """
        data = await self.request_json("POST", TOKENS_PATH, body=dict(body))
        if not isinstance(data, dict):
            raise ApiError(f"unexpected token response from {_host(self.base_url)}: not a JSON object")
        for field in ("apiKey", "token"):
            if isinstance(data.get(field), str) and data[field]:
                register_secret(data[field])
        if not (_nonempty(data.get("apiKey")) or _nonempty(data.get("token"))) or "expiresAt" not in data:
            raise ApiError(
                f"unexpected token response from {_host(self.base_url)}: no token/apiKey and expiresAt",
                hint=_BASE_URL_HINT,
            )
        return data
