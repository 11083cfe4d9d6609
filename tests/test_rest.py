"""decart_cli.transport.rest: request shape, status/exception mapping, connect-phase retries.

Network failures use real loopback sockets (refused port, silent server, plain-TCP server on an
https:// URL). httpx.MockTransport stands in only for what no loopback server can produce
honestly here: 422/429/5xx bodies, DNS failure and a connect timeout.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from stream_proc import free_port

from decart_cli import __version__
from decart_cli.config import Secret, Timeouts, redact
from decart_cli.errors import ApiError, ConfigError, ExitStatus, NetworkError, RateLimited
from decart_cli.transport import rest
from decart_cli.transport.rest import TOKENS_PATH, USER_AGENT, RestClient, RetryPolicy

KEY = "sk-REST-TEST-0123456789"
TOKEN_REPLY = {"apiKey": "ek_resttoken0123456789", "expiresAt": "2030-01-01T00:00:00Z"}
FAST = Timeouts(rest=0.6)


class Sleeps:
    """Records the delays the client asked to sleep (and does not sleep)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> tuple[RestClient, Sleeps]:
    sleeps = Sleeps()
    client = RestClient(
        "https://api.example.test",
        Secret(KEY),
        timeouts=FAST,
        transport=httpx.MockTransport(handler),
        sleep=sleeps,
        **kw,  # type: ignore[arg-type]
    )
    return client, sleeps


def reply(
    status: int, body: object = None, *, text: str | None = None, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A loopback server that accepts, reads the request and never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read(65536)
        await asyncio.sleep(30)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for w in writers:
        w.close()
    server.close()


@pytest.fixture
async def plain_tcp_server() -> AsyncIterator[int]:
    """A loopback server speaking plain HTTP, so an https:// URL fails the TLS handshake."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_create_token_sends_sdk_request_shape() -> None:
    """POST /v1/client/tokens carries X-API-KEY, the CLI User-Agent and the JSON body."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=TOKEN_REPLY)

    client, _ = mock_client(handler)
    async with client:
        data = await client.create_token({"expiresIn": 5, "allowedModels": ["lucy-2.1"]})
    assert data == TOKEN_REPLY
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == TOKENS_PATH
    assert request.headers["x-api-key"] == KEY
    assert request.headers["user-agent"] == USER_AGENT == f"decart-cli/{__version__} lang/py"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"expiresIn": 5, "allowedModels": ["lucy-2.1"]}


async def test_issued_token_is_registered_as_secret() -> None:
    """The apiKey and JWT of a token response are redacted from any later log text."""
    body = {"apiKey": "ek_registered_abcdef", "token": "eyJhbGciOiJFZERTQSJ9.jwtpart", "expiresAt": "x"}
    client, _ = mock_client(reply(200, body))
    async with client:
        await client.create_token({})
    assert redact("got ek_registered_abcdef and eyJhbGciOiJFZERTQSJ9.jwtpart") == "got *** and ***"


async def test_no_key_raises_config_error_before_any_request() -> None:
    """Without an API key nothing is sent and the error says how to set one."""
    calls: list[httpx.Request] = []
    client = RestClient("https://api.example.test", None, transport=httpx.MockTransport(calls.append))  # type: ignore[arg-type]
    async with client:
        with pytest.raises(ConfigError) as info:
            await client.create_token({})
    assert calls == []
    assert info.value.exit_status == ExitStatus.USAGE
    assert "DECART_API_KEY" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("status", "body", "exit_status", "words"),
    [
        (
            400,
            {"error": "expiresIn must be <= 3600"},
            ExitStatus.USAGE,
            "invalid request (400): expiresIn must be <= 3600",
        ),
        (
            422,
            {"detail": [{"loc": ["body", "expiresIn"], "msg": "Input should be a valid integer"}]},
            ExitStatus.USAGE,
            "invalid request (422): expiresIn: Input should be a valid integer",
        ),
        (
            401,
            {"error": "Invalid API key"},
            ExitStatus.AUTH,
            "API key rejected by api.example.test (401): Invalid API key",
        ),
        (
            403,
            {"error": "Cannot create token from client token"},
            ExitStatus.AUTH,
            "client token rejected by api.example.test (403): a client token cannot mint another token",
        ),
        (500, {"error": "boom"}, ExitStatus.SERVER, "server error from api.example.test (500): boom"),
        (503, None, ExitStatus.SERVER, "server error from api.example.test (503)"),
        (
            404,
            {"message": "no such route"},
            ExitStatus.ERROR,
            "api.example.test has no /v1/client/tokens (HTTP 404): no such route",
        ),
        (302, {}, ExitStatus.ERROR, "unexpected HTTP 302"),
    ],
)
async def test_status_maps_to_error_and_exit_code(status: int, body: object, exit_status: int, words: str) -> None:
    """Each non-2xx status becomes one ApiError line with the server's words and its exit code."""
    client, sleeps = mock_client(reply(status, body))
    async with client:
        with pytest.raises(ApiError) as info:
            await client.create_token({})
    assert info.value.status == status
    assert info.value.exit_status == exit_status
    assert words in info.value.message
    assert "\n" not in info.value.message
    assert sleeps.delays == []  # a response is final: never retried


async def test_403_from_client_token_hints_at_permanent_key() -> None:
    """A client token used to mint a token gets a hint to use the permanent key."""
    client, _ = mock_client(reply(403, {"error": "Cannot create token from client token"}))
    async with client:
        with pytest.raises(ApiError) as info:
            await client.create_token({})
    assert "permanent API key" in (info.value.hint or "")


async def test_plain_text_error_body_is_one_line_and_truncated() -> None:
    """A long multi-line text body is folded into one line of bounded length."""
    client, _ = mock_client(reply(502, text="<html>\n" + "x" * 2000 + "\n</html>"))
    async with client:
        with pytest.raises(ApiError) as info:
            await client.create_token({})
    assert "\n" not in info.value.message
    assert len(info.value.message) < 400


async def test_error_body_echoing_the_key_is_redacted() -> None:
    """A server that quotes the key back does not get it printed."""
    client, _ = mock_client(reply(401, {"error": f"key {KEY} is not valid"}))
    async with client:
        with pytest.raises(ApiError) as info:
            await client.create_token({})
    assert KEY not in info.value.message


async def test_429_with_retry_after_seconds() -> None:
    """429 becomes RateLimited with retry_after from the header, and says when to retry."""
    client, sleeps = mock_client(reply(429, {"error": "rate_limited"}, headers={"Retry-After": "7"}))
    async with client:
        with pytest.raises(RateLimited) as info:
            await client.create_token({})
    assert info.value.retry_after == 7
    assert info.value.exit_status == ExitStatus.RATE_LIMITED
    assert "retry after 7 s" in info.value.message
    assert sleeps.delays == []


async def test_429_with_retry_after_http_date() -> None:
    """Retry-After given as an HTTP date is converted to seconds from now."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    client, _ = mock_client(reply(429, text="slow down", headers={"Retry-After": when}))
    async with client:
        with pytest.raises(RateLimited) as info:
            await client.create_token({})
    assert info.value.retry_after is not None and 100 < info.value.retry_after <= 120


async def test_429_without_retry_after() -> None:
    """429 without the header still maps to RateLimited, with no retry_after."""
    client, _ = mock_client(reply(429, text="slow down", headers={"Retry-After": "soon"}))
    async with client:
        with pytest.raises(RateLimited) as info:
            await client.create_token({})
    assert info.value.retry_after is None


async def test_non_json_success_is_an_api_error() -> None:
    """A 200 whose body is not JSON (wrong --base-url) is reported, not crashed on."""
    client, _ = mock_client(reply(200, text="<html>hello</html>"))
    async with client:
        with pytest.raises(ApiError, match="not JSON"):
            await client.create_token({})


async def test_token_reply_without_api_key_is_an_api_error() -> None:
    """A JSON reply missing apiKey/expiresAt is rejected with a clear message."""
    client, _ = mock_client(reply(200, {"hello": "world"}))
    async with client:
        with pytest.raises(ApiError, match="no token/apiKey"):
            await client.create_token({})


async def test_connection_refused_is_retried_then_network_error() -> None:
    """A refused loopback port is retried with backoff, then NetworkError names host and a next step."""
    port = free_port()
    sleeps = Sleeps()
    async with RestClient(f"http://127.0.0.1:{port}", Secret(KEY), timeouts=FAST, sleep=sleeps) as client:
        with pytest.raises(NetworkError) as info:
            await client.create_token({})
    assert sleeps.delays == [0.25, 0.5]
    assert info.value.message == f"connection refused by 127.0.0.1:{port}"
    assert info.value.exit_status == ExitStatus.NETWORK
    assert "decart serve" in (info.value.hint or "")
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_connect_error_then_success_is_retried() -> None:
    """Two connect failures followed by a reply succeed after two backoff sleeps."""
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) < 3:
            raise httpx.ConnectError("All connection attempts failed", request=request)
        return httpx.Response(200, json=TOKEN_REPLY)

    client, sleeps = mock_client(handler)
    async with client:
        assert await client.create_token({}) == TOKEN_REPLY
    assert len(attempts) == 3
    assert sleeps.delays == [0.25, 0.5]


async def test_connect_timeout_is_retried_and_reported() -> None:
    """A connect timeout is retried (request never sent) and reported with the connect deadline."""
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        raise httpx.ConnectTimeout("timed out", request=request)

    client, sleeps = mock_client(handler, retry=RetryPolicy(attempts=4, base_delay=0.1, max_delay=0.15))
    async with client:
        with pytest.raises(NetworkError) as info:
            await client.create_token({})
    assert len(attempts) == 4
    assert sleeps.delays == [0.1, 0.15, 0.15]
    assert info.value.message == "timed out connecting to api.example.test after 0.3 s"


async def test_dns_failure_is_named() -> None:
    """A name-resolution failure names the host and points at --base-url."""

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc

    client, _ = mock_client(handler, retry=RetryPolicy(attempts=1))
    async with client:
        with pytest.raises(NetworkError) as info:
            await client.create_token({})
    assert info.value.message == "cannot resolve host api.example.test"
    assert "--base-url" in (info.value.hint or "")


async def test_read_timeout_is_never_retried(silent_server: int) -> None:
    """A server that got the request but never answers is not asked twice (it may have minted a token)."""
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{silent_server}"
    async with RestClient(url, Secret(KEY), timeouts=Timeouts(rest=0.3), sleep=sleeps) as client:
        with pytest.raises(NetworkError) as info:
            await client.create_token({})
    assert sleeps.delays == []
    assert info.value.message == f"no response from 127.0.0.1:{silent_server} within 0.3 s"
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


async def test_tls_failure_is_named_and_not_retried(plain_tcp_server: int) -> None:
    """An https:// URL answered by a plain-HTTP server fails the TLS handshake: named, not retried."""
    sleeps = Sleeps()
    url = f"https://127.0.0.1:{plain_tcp_server}"
    async with RestClient(url, Secret(KEY), timeouts=FAST, sleep=sleeps) as client:
        with pytest.raises(NetworkError) as info:
            await client.create_token({})
    assert sleeps.delays == []
    assert info.value.message.startswith(f"TLS handshake with 127.0.0.1:{plain_tcp_server} failed")
    assert "http://" in (info.value.hint or "")


async def test_other_transport_errors_are_network_errors() -> None:
    """A dropped connection mid-reply becomes a NetworkError and is not retried."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    client, sleeps = mock_client(handler)
    async with client:
        with pytest.raises(NetworkError, match="connection to api.example.test failed: RemoteProtocolError"):
            await client.create_token({})
    assert sleeps.delays == []


def test_retry_policy_delays_double_and_cap() -> None:
    """Backoff doubles from base_delay, is capped, and yields attempts-1 delays."""
    assert list(RetryPolicy(attempts=5, base_delay=0.5, max_delay=1.5).delays()) == [0.5, 1.0, 1.5, 1.5]
    assert list(RetryPolicy(attempts=1).delays()) == []


async def test_aclose_is_idempotent() -> None:
    """Closing twice is harmless."""
    client, _ = mock_client(reply(200, TOKEN_REPLY))
    await client.aclose()
    await client.aclose()
    assert client._client.is_closed


def test_structured_timeouts_from_settings() -> None:
    """Read/write/pool use Timeouts.rest and connect half of it."""
    client = RestClient("http://127.0.0.1:1", None, timeouts=Timeouts(rest=8.0))
    assert client.timeout == httpx.Timeout(8.0, connect=4.0)
    asyncio.run(client.aclose())


def test_exported_names() -> None:
    """The public API is pinned."""
    assert sorted(rest.__all__) == sorted(
        ["TOKENS_PATH", "USER_AGENT", "RestClient", "RetryPolicy", "error_for_response", "translate_errors"]
    )
