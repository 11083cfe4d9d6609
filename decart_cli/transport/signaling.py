"""The realtime signaling WebSocket (decart-protocol.md §1): URL building and a thin channel.

Every exception of ``websockets`` or the OS is translated into the :mod:`decart_cli.errors` tree
in one place, :func:`translate_errors`, and chained with ``from``. websockets quotes the URL —
API key included — in some exception texts, so the chained originals are scrubbed with
:func:`~decart_cli.config.redact` before they are attached: no key survives in the ``str``,
``repr`` or traceback of anything raised from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from decart_cli import __version__
from decart_cli.config import Secret, redact
from decart_cli.core.server_errors import CAPACITY_HTTP_STATUSES, refusal_hint
from decart_cli.errors import AuthError, ConnectionFailed, DecartError

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = [
    "MAX_FRAME",
    "USER_AGENT",
    "ChannelClosed",
    "SignalingChannel",
    "UpgradeRefused",
    "build_url",
    "is_loopback",
    "translate_errors",
]

logger = logging.getLogger(__name__)

USER_AGENT = f"decart-cli/{__version__} lang/py"
MAX_FRAME = 64 * 2**20  # reference images are several MB of base64; websockets' default is 1 MiB
STREAM_PATH = "/v1/stream"


def build_url(
    realtime_url: str,
    credential: Secret,
    model: str,
    *,
    resolution: str | None = None,
    speed: str | None = None,
    user_agent: str = USER_AGENT,
) -> str:
    """``{base}/v1/stream?api_key=…&model=…[&resolution=…][&speed=…]&user_agent=…`` as the Python SDK.

    ``http(s)://`` bases become ``ws(s)://`` (Py-direct does the same). Values are encoded with
    :func:`urllib.parse.quote` (spaces → ``%20``, ``/`` kept); ``user_agent`` is always last.
    ``speed=fast`` (Python 0.2.1+, decart-protocol-2026-11.md §2.2) comes after ``resolution``.
    The result holds the credential: never log it (use :func:`~decart_cli.config.redact`).
    """
    base = realtime_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    url = f"{base}{STREAM_PATH}?api_key={quote(credential.reveal())}&model={quote(model)}"
    if resolution is not None:
        url += f"&resolution={quote(resolution)}"
    if speed is not None:
        url += f"&speed={quote(speed)}"
    return f"{url}&user_agent={quote(user_agent)}"


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is ``localhost`` or a loopback address."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ChannelClosed(ConnectionFailed):
    """The WebSocket closed; ``code``/``reason`` are the close frame's (``None`` if there was none)."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.reason = reason


class UpgradeRefused(ConnectionFailed):
    """The server answered the WebSocket upgrade with HTTP ``status`` (not 101, 401 or 403).

    503 (and 429) mean "not now": a capacity refusal, retried with the reconnect backoff like a
    1013 close or an "at capacity" error.
    """

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.capacity = status in CAPACITY_HTTP_STATUSES


def _scrub(exc: BaseException | None) -> None:
    """Redact secrets from ``exc`` and its chain in place (args and string attributes)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
        for name, value in list(vars(exc).items()):
            if isinstance(value, str):
                with contextlib.suppress(AttributeError):
                    setattr(exc, name, redact(value))
        exc = exc.__cause__ or exc.__context__


def _closed(exc: BaseException) -> ChannelClosed:
    from websockets.exceptions import ConnectionClosed

    rcvd = exc.rcvd if isinstance(exc, ConnectionClosed) else None
    code = rcvd.code if rcvd is not None else None
    reason = redact(rcvd.reason) if rcvd is not None else ""
    if code is None:
        return ChannelClosed("the signaling connection was lost (no close frame)")
    detail = f" ({reason})" if reason else ""
    return ChannelClosed(f"the server closed the signaling connection: code {code}{detail}", code=code, reason=reason)


@contextlib.contextmanager
def translate_errors(url: str, timeout: float | None = None, *, client_token: bool = False) -> Iterator[None]:
    """Turn websockets/OS exceptions raised inside into :class:`DecartError` (the one place).

    Args:
        url: the URL being used (only its host is ever named).
        timeout: the deadline, named in timeout messages.
        client_token: the credential sent is a client token, not an API key: a refusal names it
            and gives its next step (:func:`~decart_cli.core.server_errors.refusal_hint`).

    Raises:
        AuthError: HTTP 401/403 on the upgrade.
        UpgradeRefused: another HTTP status on the upgrade (503: capacity, retried).
        ChannelClosed: the socket closed (close code kept).
        ConnectionFailed: anything else (refused, DNS, TLS, timeout, bad handshake).
    """
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

    host = urlsplit(url).netloc or "?"
    try:
        yield
    except DecartError:
        raise
    except ConnectionClosed as exc:
        _scrub(exc)
        raise _closed(exc) from exc
    except InvalidStatus as exc:
        _scrub(exc)
        status = exc.response.status_code
        if status in (401, 403):
            raise AuthError(
                f"the realtime server at {host} refused the {'client token' if client_token else 'API key'}"
                f" (HTTP {status} unauthorized)",
                hint=refusal_hint(client_token),
            ) from exc
        if status in CAPACITY_HTTP_STATUSES:
            raise UpgradeRefused(
                f"the realtime server at {host} is at capacity (HTTP {status} at the WebSocket upgrade)",
                status=status,
                hint="retrying; try again in a minute",
            ) from exc
        raise UpgradeRefused(f"WebSocket upgrade to {host} failed: HTTP {status}", status=status) from exc
    except InvalidURI as exc:
        _scrub(exc)
        raise ConnectionFailed(f"invalid realtime URL for host {host!r}", hint="use --realtime-url wss://HOST") from exc
    except InvalidHandshake as exc:
        _scrub(exc)
        raise ConnectionFailed(f"WebSocket handshake with {host} failed: {redact(str(exc))}") from exc
    except TimeoutError as exc:
        _scrub(exc)
        after = f" after {timeout:g} s" if timeout else ""
        raise ConnectionFailed(
            f"timed out connecting to {host}{after}", hint="check the network, or run 'decart netcheck'"
        ) from exc
    except OSError as exc:
        _scrub(exc)
        why = exc.strerror or redact(str(exc)) or type(exc).__name__
        raise ConnectionFailed(
            f"cannot reach the realtime server {host}: {why}",
            hint="check --realtime-url and the network ('decart netcheck'); for the emulator run 'decart serve'",
        ) from exc


class SignalingChannel:
    """One open signaling WebSocket. Create with :meth:`open`; close with :meth:`aclose`."""

    def __init__(self, ws: ClientConnection, url: str) -> None:
        self._ws = ws
        self._url = url

    @classmethod
    async def open(cls, url: str, *, deadline: float, client_token: bool = False) -> SignalingChannel:
        """Open the socket within ``deadline`` seconds.

        ``client_token``: the credential is a client token (a refusal, HTTP 401/403, is worded for it).

        Raises:
            AuthError, UpgradeRefused, ConnectionFailed: see :func:`translate_errors`.
        """
        from websockets.asyncio.client import connect

        with translate_errors(url, deadline, client_token=client_token):
            async with asyncio.timeout(deadline):
                ws = await connect(
                    url,
                    max_size=MAX_FRAME,
                    compression=None,  # like the SDK (aiohttp default): base64 images do not deflate well
                    open_timeout=None,  # bounded by asyncio.timeout above
                    user_agent_header=USER_AGENT,
                    proxy=None if is_loopback(url) else True,
                    close_timeout=1,
                )
        logger.debug("signaling connected to %s", redact(url))
        return cls(ws, url)

    @property
    def closed(self) -> bool:
        """True once the socket is closing or closed (sends would fail)."""
        from websockets.protocol import State

        return self._ws.protocol.state is not State.OPEN

    async def send(self, text: str) -> None:
        """Send one text frame; fails at once (no waiting) if the socket is not open.

        Raises:
            ChannelClosed: the socket is closed.
        """
        if self.closed:
            raise ChannelClosed("cannot send: the signaling connection is closed")
        with translate_errors(self._url):
            await self._ws.send(text)

    async def recv(self) -> str | bytes:
        """The next frame.

        Raises:
            ChannelClosed: the socket closed (normally or not).
        """
        with translate_errors(self._url):
            return await self._ws.recv()

    async def aclose(self, deadline: float = 1.0) -> None:
        """Close with code 1000 (frees the server slot within ~5 s); idempotent, never raises."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(deadline):
                await self._ws.close(1000)
