"""REST errors in words: never a response body on screen; a rejected client token is worded as a token.

Real components on loopback: a plain HTTP server that is not Decart's API, and the emulator.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli import run_cli
from fixtures_emulator import expire_tokens
from test_netcheck_cli import loopback_endpoints, rows_of
from test_netcheck_cli import run_cli as run_netcheck
from test_netcheck_probes import stun_responder, ws_server

from decart_cli.emulator.server import EmulatorThread
from decart_cli.errors import ExitStatus

PAGE = (
    "<!DOCTYPE html><html><head><title>Welcome to nginx!</title><style>body{width:35em}</style></head>"
    "<body><h1>Welcome to nginx!</h1><p>If you see this page, the nginx web server is successfully installed "
    + "and working. Further configuration is required. " * 20
    + "</p></body></html>"
)


class _NotTheApi(http.server.BaseHTTPRequestHandler):
    """Answers every POST with an HTML page; the status comes from the path's first segment."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        status = int(self.server.status)  # type: ignore[attr-defined]
        body = PAGE.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_the_api() -> Iterator[http.server.HTTPServer]:
    """A web server on loopback that is not Decart's API (think: a wrong --base-url, a proxy's page)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _NotTheApi)
    server.status = 404  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _token(server: http.server.HTTPServer, monkeypatch: pytest.MonkeyPatch, *extra: str):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DECART_API_KEY", "test-key-123456")
    return run_cli([*extra, "token", "--base-url", f"http://127.0.0.1:{server.server_port}"], monkeypatch)


@pytest.mark.parametrize(
    ("status", "code", "first_line"),
    [
        (404, ExitStatus.ERROR, "does not answer like Decart's API: HTTP 404 Not Found with an HTML page"),
        (405, ExitStatus.ERROR, "does not answer like Decart's API: HTTP 405 Method Not Allowed with an HTML page"),
        (401, ExitStatus.ERROR, "does not answer like Decart's API: HTTP 401 Unauthorized with an HTML page"),
        (502, ExitStatus.SERVER, "(502): an HTML page, not an error from Decart's API"),
        (200, ExitStatus.ERROR, "does not answer like Decart's API: HTTP 200 with an HTML page, not JSON"),
    ],
)
def test_an_html_page_is_described_never_printed(
    not_the_api: http.server.HTTPServer, monkeypatch: pytest.MonkeyPatch, status: int, code: int, first_line: str
) -> None:
    """A token request answered by an HTML page: one error line naming the status, a hint to check --base-url,
    and not a word of the page (was: the whole page on one line)."""
    not_the_api.status = status  # type: ignore[attr-defined]
    r = _token(not_the_api, monkeypatch)
    assert r.code == code, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and first_line in lines[0], r.stderr
    assert lines[1].startswith("hint: ") and "--base-url" in lines[1]
    assert "nginx" not in r.stderr and "<" not in r.stderr and r.stdout == ""


def test_debug_shows_a_short_sanitised_excerpt(
    not_the_api: http.server.HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --debug the log carries a short excerpt of the page, tags removed; the error line still quotes none."""
    r = _token(not_the_api, monkeypatch, "--debug")
    excerpt = [line for line in r.stderr.splitlines() if "sanitised excerpt" in line]
    assert len(excerpt) == 1 and "Welcome to nginx!" in excerpt[0] and "<" not in excerpt[0]
    assert len(excerpt[0]) < 300
    error = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "nginx" not in error[0]


def test_expired_client_token_for_decart_token_says_token(
    emulator: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An expired client token used as the key of `decart token`: "client token … it has expired", how to mint anew,
    not "check DECART_API_KEY"."""
    token = emulator.issue_token(expires_in=1)["apiKey"]
    expire_tokens(emulator)
    monkeypatch.setenv("DECART_API_KEY", token)
    r = run_cli(["token", "--base-url", emulator.http_url], monkeypatch)
    assert r.code == ExitStatus.AUTH
    lines = r.stderr.splitlines()
    assert lines[0] == f"error: client token rejected by 127.0.0.1:{emulator.port} (401): it has expired"
    assert lines[1].startswith("hint: mint a new one with 'decart token'") and token not in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("models", "expires", "detail", "fix"),
    [
        (
            ["lucy-2.5"],
            60,
            "server rejected the client token: it does not allow model lucy-2.1",
            "decart token --model",
        ),
        (None, 1, "server rejected the client token: it has expired", "mint a new one with 'decart token'"),
    ],
)
async def test_netcheck_auth_words_a_restricted_or_expired_client_token(
    emulator: EmulatorThread, tmp_path: Path, models: list[str] | None, expires: int, detail: str, fix: str
) -> None:
    """netcheck --auth with a model-restricted or expired client token names the token's problem and how to mint one."""
    token = emulator.issue_token(expires_in=expires, allowed_models=models)["apiKey"]
    if expires == 1:
        expire_tokens(emulator)
    async with ws_server() as tcp_port, stun_responder() as udp_port:
        endpoints = loopback_endpoints(tcp_port, udp_port)
        endpoints["signaling"]["ws_url"] = f"{emulator.ws_url}/v1/stream?model=lucy-2.1"
        _code, out, _err, _s = await run_netcheck(["--json", "--auth", "--timeout", "5"], endpoints, DECART_TOKEN=token)
    row = rows_of(json.loads(out))[("websocket-auth", "signaling")]
    assert row["result"] == "fail" and row["detail"] == detail, row
    assert fix in row["fix"] and "DECART_API_KEY" not in row["fix"] and token not in out
