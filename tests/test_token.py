"""`decart token`: option validation, script-friendly output, error classes and exit codes.

Real requests go to `decart serve` (the emulator fixtures); httpx.MockTransport stands in only for
the statuses the emulator cannot produce (422, 429, 5xx).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cli import Result, run_cli
from fixtures_emulator import expire_tokens
from stream_proc import free_port
from test_hostile_input import jwt

from decart_cli.commands import token as token_cmd
from decart_cli.config import Secret, Settings, is_client_token, load_settings
from decart_cli.emulator.server import EmulatorThread
from decart_cli.errors import ExitStatus, UnknownModelError, UsageError
from decart_cli.transport.rest import RestClient

KEY = "sk-TOKEN-TEST-abcdef123456"


def run(args: list[str], stdin: str = "") -> Result:
    """Run the CLI; a private MonkeyPatch so the test's own env patches survive the run."""
    return run_cli(args, pytest.MonkeyPatch(), stdin)


class Recorder:
    """A MockTransport handler that records requests and returns a canned response."""

    def __init__(self, response: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._response = response

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._response(request)


@pytest.fixture
def mock_api(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Recorder]:
    """Route `decart token` through an httpx.MockTransport answering with the given status/body."""

    def install(status: int = 200, body: object = None, headers: dict[str, str] | None = None) -> Recorder:
        recorder = Recorder(lambda request: httpx.Response(status, json=body, headers=headers))

        def factory(s: Settings) -> RestClient:
            return RestClient(s.base_url, s.api_key, timeouts=s.timeouts, transport=httpx.MockTransport(recorder))

        monkeypatch.setattr(token_cmd, "client_factory", factory)
        monkeypatch.setenv("DECART_API_KEY", KEY)
        return recorder

    return install


# -- build_request: pure validation ------------------------------------------------------------


def test_default_request_body_is_ttl_only() -> None:
    """With no options the body asks for the default 60 s expiry and nothing else."""
    assert token_cmd.build_request() == ({"expiresIn": 60}, [])


def test_full_request_body_matches_the_sdk_fields() -> None:
    """Every option lands in the SDK's field (expiresIn, allowedModels, allowedOrigins, constraints, metadata)."""
    body, notices = token_cmd.build_request(
        ttl=300,
        models=["lucy-2.1", "LUCY-latest", "lucy-2.1"],
        origins=["https://Example.com/", "http://localhost:3000"],
        max_session_duration=120,
        metadata=["user=alice", "note=a=b"],
    )
    assert body == {
        "expiresIn": 300,
        "allowedModels": ["lucy-2.1", "lucy-latest"],
        "allowedOrigins": ["https://example.com", "http://localhost:3000"],
        "constraints": {"realtime": {"maxSessionDuration": 120}},
        "metadata": {"user": "alice", "note": "a=b"},
    }
    assert notices == []


def test_deprecated_model_is_mapped_with_notice() -> None:
    """A deprecated model name is replaced by the canonical one and a notice is returned."""
    body, notices = token_cmd.build_request(models=["mirage_v2"])
    assert body["allowedModels"] == ["lucy-restyle-2"]
    assert len(notices) == 1 and "deprecated" in notices[0]


@pytest.mark.parametrize("ttl", [0, -5, 3601])
def test_ttl_out_of_range(ttl: int) -> None:
    """--ttl outside 1–3600 is a usage error naming the value and the range."""
    with pytest.raises(UsageError, match=f"--ttl {ttl} is out of range") as info:
        token_cmd.build_request(ttl=ttl)
    assert "1–3600" in (info.value.hint or "")


def test_ttl_bounds_are_accepted() -> None:
    """1 and 3600 are valid."""
    assert token_cmd.build_request(ttl=1)[0]["expiresIn"] == 1
    assert token_cmd.build_request(ttl=3600)[0]["expiresIn"] == 3600


def test_unknown_model_suggests() -> None:
    """A typo in --model is rejected with close catalogue names."""
    with pytest.raises(UnknownModelError) as info:
        token_cmd.build_request(models=["lucy-2.7"])
    assert "lucy-2.5" in info.value.suggestions


@pytest.mark.parametrize(
    "origin",
    [
        "example.com",
        "ftp://example.com",
        "https://",
        "https://example.com/app",
        "https://example.com?x=1",
        "https://u:p@example.com",
        "https://example.com:99999",
        "https://example.com#top",
    ],
)
def test_bad_origin(origin: str) -> None:
    """An origin must be scheme://host[:port] with http(s) and nothing else."""
    with pytest.raises(UsageError, match="invalid origin"):
        token_cmd.build_request(origins=[origin])


def test_origin_ipv6_and_port_kept() -> None:
    """IPv6 hosts keep their brackets and explicit ports are kept."""
    body, _ = token_cmd.build_request(origins=["http://[::1]:8080"])
    assert body["allowedOrigins"] == ["http://[::1]:8080"]


def test_more_than_20_origins_rejected() -> None:
    """At most 20 distinct origins (the API's limit)."""
    origins = [f"https://app{i}.example.com" for i in range(21)]
    with pytest.raises(UsageError, match="too many origins: 21 given, at most 20"):
        token_cmd.build_request(origins=origins)
    assert len(token_cmd.build_request(origins=origins[:20])[0]["allowedOrigins"]) == 20


@pytest.mark.parametrize("pair", ["novalue", "=x", "two words=x"])
def test_bad_metadata(pair: str) -> None:
    """--metadata needs KEY=VALUE with a non-empty key without spaces."""
    with pytest.raises(UsageError, match="invalid metadata"):
        token_cmd.build_request(metadata=[pair])


def test_max_session_duration_must_be_positive() -> None:
    """--max-session-duration 0 is rejected."""
    with pytest.raises(UsageError, match="--max-session-duration 0"):
        token_cmd.build_request(max_session_duration=0)


def test_describe_expiry_in_words() -> None:
    """Expiry is said in seconds or minutes, with the UTC time."""
    now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert (
        token_cmd.describe_expiry("2030-01-01T12:01:00Z", now)
        == "token expires in 60 seconds (at 2030-01-01 12:01:00 UTC)"
    )
    assert token_cmd.describe_expiry("2030-01-01T12:05:00+00:00", now).startswith("token expires in 5 minutes")
    assert token_cmd.describe_expiry("2030-01-01T12:00:01", now).startswith("token expires in 1 second ")
    assert "already expired" in token_cmd.describe_expiry("2029-12-31T00:00:00Z", now)
    assert token_cmd.describe_expiry("tomorrow", now) == "token expires at tomorrow"


def test_exported_names() -> None:
    """The module's public API is pinned."""
    assert sorted(token_cmd.__all__) == ["build_request", "describe_expiry", "register"]


# -- CLI over MockTransport -----------------------------------------------------------------------


REPLY = {
    "apiKey": "ek_mocked_token_0123456789",
    "expiresAt": "2099-01-01T00:00:00Z",
    "permissions": {"models": ["lucy-2.1"], "origins": ["https://example.com"]},
}


def test_cli_plain_output_is_only_the_token(mock_api: Callable[..., Recorder]) -> None:
    """stdout is exactly the token line; expiry and restrictions go to stderr."""
    recorder = mock_api(200, REPLY)
    r = run(["token", "--model", "lucy-2.1", "--origin", "https://example.com", "--ttl", "120"])
    assert r.code == 0, r.stderr
    assert r.stdout == "ek_mocked_token_0123456789\n"
    assert (
        "token expires in" in r.stderr and "models: lucy-2.1" in r.stderr and "origins: https://example.com" in r.stderr
    )
    (request,) = recorder.requests
    assert json.loads(request.content) == {
        "expiresIn": 120,
        "allowedModels": ["lucy-2.1"],
        "allowedOrigins": ["https://example.com"],
    }
    assert request.headers["x-api-key"] == KEY


def test_cli_create_subcommand_is_the_same(mock_api: Callable[..., Recorder]) -> None:
    """`decart token create` takes the same options and prints the same output."""
    recorder = mock_api(200, REPLY)
    r = run(["token", "create", "--ttl", "5", "--metadata", "k=v", "--max-session-duration", "30"])
    assert (r.code, r.stdout) == (0, "ek_mocked_token_0123456789\n")
    assert json.loads(recorder.requests[0].content) == {
        "expiresIn": 5,
        "constraints": {"realtime": {"maxSessionDuration": 30}},
        "metadata": {"k": "v"},
    }


def test_cli_json_prints_the_full_response(mock_api: Callable[..., Recorder]) -> None:
    """--json prints the server's response object and nothing on stderr."""
    mock_api(200, REPLY)
    r = run(["token", "--json"])
    assert r.code == 0
    assert json.loads(r.stdout) == REPLY
    assert r.stderr == ""


@pytest.mark.parametrize(
    "args",
    [
        ["--ttl", "0"],
        ["--ttl", "3601"],
        ["--model", "lucy-2.7"],
        ["--origin", "example.com"],
        ["--metadata", "x"],
        ["--ttl", "abc"],
        ["--max-session-duration", "-1"],
    ],
)
def test_cli_invalid_values_exit_2_before_any_request(mock_api: Callable[..., Recorder], args: list[str]) -> None:
    """Bad option values exit 2 with one error line, and nothing is sent."""
    recorder = mock_api(200, REPLY)
    r = run(["token", *args])
    assert r.code == ExitStatus.USAGE
    assert r.stdout == ""
    assert recorder.requests == []


def test_cli_unknown_model_suggests(mock_api: Callable[..., Recorder]) -> None:
    """A typo in --model prints 'did you mean'."""
    mock_api(200, REPLY)
    r = run(["token", "--model", "lucy-2.7"])
    assert "unknown model 'lucy-2.7'" in r.stderr and "did you mean 'lucy-2.6'" in r.stderr


def test_cli_no_key_says_how_to_set_one() -> None:
    """Without any key: exit 2 and a hint naming DECART_API_KEY and --api-key-file."""
    r = run(["token", "--base-url", "http://127.0.0.1:9"])
    assert r.code == ExitStatus.USAGE
    assert r.stderr.splitlines()[0] == "error: no API key configured"
    assert "DECART_API_KEY" in r.stderr and "--api-key-file" in r.stderr


@pytest.mark.parametrize(
    ("status", "body", "headers", "code", "words"),
    [
        (
            422,
            {"detail": [{"loc": ["body", "expiresIn"], "msg": "too large"}]},
            None,
            ExitStatus.USAGE,
            "invalid request (422): expiresIn: too large",
        ),
        (
            400,
            {"error": "allowedOrigins[0] is not an origin"},
            None,
            ExitStatus.USAGE,
            "invalid request (400): allowedOrigins[0] is not an origin",
        ),
        (429, {"error": "rate_limited"}, {"Retry-After": "30"}, ExitStatus.RATE_LIMITED, "retry after 30 s"),
        (500, {"error": "internal"}, None, ExitStatus.SERVER, "server error from"),
        (503, {"error": "maintenance"}, None, ExitStatus.SERVER, "(503): maintenance"),
    ],
)
def test_cli_http_errors_map_to_exit_codes(
    mock_api: Callable[..., Recorder], status: int, body: object, headers: dict[str, str] | None, code: int, words: str
) -> None:
    """Each HTTP error class gives one error line (plus hint) and its own exit code."""
    mock_api(status, body, headers)
    r = run(["token"])
    assert r.code == code
    assert r.stdout == ""
    first = r.stderr.splitlines()[0]
    assert first.startswith("error: ") and words in first
    assert "Traceback" not in r.stderr


def test_cli_connection_refused_exits_5(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable loopback port gives a network error naming the host, exit 5."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DECART_API_KEY", KEY)
    monkeypatch.setenv("DECART_TIMEOUT_FACTOR", "0.2")
    r = run(["token", "--base-url", f"http://127.0.0.1:{port}"])
    assert r.code == ExitStatus.NETWORK
    assert r.stderr.splitlines()[0] == f"error: connection refused by 127.0.0.1:{port}"


# -- against the emulator (`decart serve`) ---------------------------------------------------------


async def first_ws_message(ws_url: str, credential: str, model: str) -> dict[str, object] | None:
    """Open /v1/stream with ``credential`` like any client would; return the server's first message.

    An accepted credential gets ``session_id`` first, a refused one ``error`` (then a close).
    """
    from urllib.parse import urlencode

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    url = f"{ws_url}/v1/stream?{urlencode({'api_key': credential, 'model': model})}"
    async with connect(url, open_timeout=5) as ws:
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
        except (TimeoutError, ConnectionClosed):
            return None
    return dict(json.loads(raw))


def mint(args: list[str]) -> str:
    """`decart token ARGS` against the environment's emulator; the one stdout line."""
    r = run(["token", *args])
    assert r.code == 0, r.stderr
    return r.stdout.strip()


def test_emulator_plain_output_is_one_line_with_the_token(emulator_env: EmulatorThread) -> None:
    """Against `decart serve`, stdout is exactly one line holding an ek_ token; the expiry is on stderr."""
    start = time.perf_counter()
    r = run(["token", "--ttl", "90", "--metadata", "who=test"])
    print(f"\nmeasured: `decart token` in-process against decart serve: {(time.perf_counter() - start) * 1000:.0f} ms")
    assert r.code == 0, r.stderr
    lines = r.stdout.split("\n")
    # The JWT when the emulator signs one (issue 10), else its ek_ key with a notice.
    assert len(lines) == 2 and lines[1] == "" and is_client_token(lines[0])
    expiry = [line for line in r.stderr.splitlines() if not line.startswith("warning: ")]
    assert expiry[0].startswith("token expires in ")  # 90 s ≥ 90 → minutes, 89 s → seconds (clock skew)
    issued = [e for e in emulator_env.events if e["event"] == "token_issued"]
    assert len(issued) == 1


def test_emulator_json_holds_api_key_and_expiry(emulator_env: EmulatorThread) -> None:
    """--json prints the emulator's response with apiKey, expiresAt and the permissions asked for."""
    r = run(["token", "create", "--json", "--model", "lucy-2.1", "--origin", "https://example.com"])
    assert r.code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["apiKey"].startswith("ek_")
    assert datetime.fromisoformat(data["expiresAt"].replace("Z", "+00:00")) > datetime.now(UTC)
    assert data["permissions"] == {"models": ["lucy-2.1"], "origins": ["https://example.com"]}


async def test_emulator_token_restricted_to_its_models(emulator_env: EmulatorThread) -> None:
    """A token for lucy-2.1 opens lucy-2.1 but lucy-2.5 is refused with a message naming the model."""
    token = await asyncio.to_thread(mint, ["--model", "lucy-2.1", "--ttl", "30"])
    refused = await first_ws_message(emulator_env.ws_url, token, "lucy-2.5")
    assert refused == {"type": "error", "error": "Model lucy-2.5 not allowed for this token"}
    accepted = await first_ws_message(emulator_env.ws_url, token, "lucy-2.1")
    assert accepted is not None and accepted["type"] == "session_id"
    sessions = [e for e in emulator_env.events if e["event"] == "session"]
    assert [(e["model"], e["credential"]) for e in sessions] == [("lucy-2.1", "client token")]


async def test_emulator_expired_token_is_refused(emulator_env: EmulatorThread) -> None:
    """A 1-second token works at once and is refused as expired once its time is up."""
    token = await asyncio.to_thread(mint, ["--ttl", "1"])
    accepted = await first_ws_message(emulator_env.ws_url, token, "lucy-2.1")
    assert accepted is not None and accepted["type"] == "session_id"
    expire_tokens(emulator_env)  # its time is up
    refused = await first_ws_message(emulator_env.ws_url, token, "lucy-2.1")
    assert refused == {"type": "error", "error": "Invalid API key: token expired"}


def test_emulator_rejects_a_wrong_key_exit_3(make_emulator: Callable[..., EmulatorThread]) -> None:
    """`decart serve --api-key other` rejects our key: exit 3, the server's words, a hint."""
    emu = make_emulator(api_key="the-right-key-123")
    r = run(["token", "--base-url", emu.http_url, "--api-key", "-"], stdin="the-wrong-key-456\n")
    assert r.code == ExitStatus.AUTH
    assert r.stderr.splitlines()[0] == f"error: API key rejected by 127.0.0.1:{emu.port} (401): Invalid API key"
    assert r.stderr.splitlines()[1].startswith("hint: check DECART_API_KEY")
    assert r.stdout == ""


def test_emulator_client_token_cannot_mint(emulator_env: EmulatorThread, monkeypatch: pytest.MonkeyPatch) -> None:
    """Using a client token as the key gets 403 and a hint to use the permanent key."""
    token = mint([])
    monkeypatch.setenv("DECART_API_KEY", token)
    r = run(["token"])
    assert r.code == ExitStatus.AUTH
    assert r.stderr.splitlines()[0] == (
        f"error: client token rejected by 127.0.0.1:{emulator_env.port} (403): a client token cannot mint another token"
    )
    assert "permanent API key" in r.stderr


def test_local_flag_mints_from_the_emulator(emulator: EmulatorThread, monkeypatch: pytest.MonkeyPatch) -> None:
    """`decart token --local` needs no key and talks to DECART_LOCAL_ADDRESS."""
    monkeypatch.setenv("DECART_LOCAL_ADDRESS", f"127.0.0.1:{emulator.port}")
    assert is_client_token(mint(["--local", "--ttl", "5"]))


def test_stream_credential_prefers_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """DECART_TOKEN (or --token) becomes Settings.credential, even with --local and no key."""
    monkeypatch.setenv("DECART_TOKEN", "ek_from_env_123456")
    s = load_settings(local=True)
    assert s.api_key is None and s.credential == Secret("ek_from_env_123456")
    s = load_settings(token="ek_from_flag_123456", api_key="permanent-key-1234")
    assert s.credential == Secret("ek_from_flag_123456") and s.credential.kind == "client token"


def _shell(command: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a shell pipeline with `decart` meaning this interpreter's `python -m decart_cli`."""
    decart = f"{shlex.quote(sys.executable)} -m decart_cli"
    return subprocess.run(
        ["bash", "-c", command.replace("decart ", decart + " ")],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _expire_once_a_session_runs(emu: EmulatorThread, timeout: float = 60) -> None:
    """Let the emulator's tokens expire (:func:`expire_tokens`) as soon as a session has started on it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.get("event") == "session" for e in emu.events):
            expire_tokens(emu)
            return
        time.sleep(0.02)


def _local_env(emu: EmulatorThread) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECART_")}
    env.update(DECART_LOCAL_ADDRESS=f"127.0.0.1:{emu.port}", DECART_CONFIG_DIR=os.environ["DECART_CONFIG_DIR"])
    return env


@pytest.mark.slow
def test_stream_with_a_minted_token_then_expired(emulator: EmulatorThread) -> None:
    """`decart stream --local --token "$(decart token --local --ttl 3)"` streams; the same token later exits 3."""
    env = _local_env(emulator)
    stream = "decart stream --local --camera test --duration 1 --json --no-window"
    r = _shell(f'T="$(decart token --local --ttl 3 --model lucy-2.1)" && echo "$T" && {stream} --token "$T"', env)
    assert r.returncode == 0, r.stderr[-2000:]
    minted = r.stdout.splitlines()[0]
    assert '"event":"generation_started"' in r.stdout
    sessions = [e for e in emulator.events if e["event"] == "session"]
    assert [e["credential"] for e in sessions] == ["client token"]
    expire_tokens(emulator)  # its time is up
    r = _shell(f"{stream} --token {shlex.quote(minted)}", env)
    assert r.returncode == ExitStatus.AUTH, r.stderr[-2000:]
    assert "token expired" in r.stderr
    assert minted not in r.stderr + r.stdout


@pytest.mark.slow
def test_stream_reconnect_after_token_expiry_fails_clearly(make_emulator: Callable[..., EmulatorThread]) -> None:
    """A running session outlives its token (its expiry passes while it streams: the emulator's token clock jumps
    ahead once the session started); the reconnect after a drop is refused: exit 3, 'token expired'."""
    emu = make_emulator(drop_after=1.5)
    env = _local_env(emu)
    watcher = threading.Thread(target=_expire_once_a_session_runs, args=(emu,), daemon=True)
    watcher.start()
    r = _shell(
        'T="$(decart token --local --ttl 60)" && '
        'decart stream --local --camera test --duration 20 --json --no-window --token "$T"',
        env,
    )
    watcher.join(5)
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert any(e["event"] == "generation_started" for e in events)  # the session ran past the token's expiry
    assert r.returncode == ExitStatus.AUTH, r.stderr[-2000:]
    assert "token expired" in r.stderr
    print(f"\nmeasured: reconnect refusal after expiry → exit {r.returncode}: {r.stderr.splitlines()[-2:]}")


# -- today's response: the signed JWT; `token --local` and the README's pipeline ---------------------

JWT = jwt({"sub": "user-1", "exp": 4102444800, "models": ["lucy-2.1"]})
TODAY = {"apiKey": "ek_mocked_token_0123456789", "token": JWT, "expiresAt": "2099-01-01T00:00:00Z"}


def test_prints_the_jwt_when_the_response_has_one(mock_api: Callable[..., Recorder]) -> None:
    """With today's response {apiKey, token, expiresAt} stdout is exactly the JWT `token`, no notice."""
    mock_api(200, TODAY)
    r = run(["token", "--ttl", "60"])
    assert r.code == 0, r.stderr
    assert r.stdout == JWT + "\n"
    assert "warning" not in r.stderr and "token expires in" in r.stderr


def test_json_keeps_the_whole_response(mock_api: Callable[..., Recorder]) -> None:
    """--json prints the full response, apiKey and token both."""
    mock_api(200, {**TODAY, "permissions": {"models": ["lucy-2.1"]}})
    r = run(["token", "--json"])
    assert r.code == 0 and json.loads(r.stdout) == {**TODAY, "permissions": {"models": ["lucy-2.1"]}}


def test_falls_back_to_the_client_key_with_a_notice(mock_api: Callable[..., Recorder]) -> None:
    """A server that sends no JWT (older API or emulator): the ek_ key is printed, with one notice on stderr."""
    mock_api(200, {k: v for k, v in TODAY.items() if k != "token"})
    r = run(["token"])
    assert r.code == 0 and r.stdout == "ek_mocked_token_0123456789\n"
    assert [line for line in r.stderr.splitlines() if line.startswith("warning:")] == [
        "warning: the server returned no signed token (JWT); printing the client key (ek_…), which works the same"
    ]


def test_a_response_with_neither_is_an_error(mock_api: Callable[..., Recorder]) -> None:
    """No token and no apiKey: one error line, nothing on stdout."""
    mock_api(200, {"expiresAt": "2099-01-01T00:00:00Z"})
    r = run(["token"])
    assert r.code == 1 and r.stdout == ""
    assert "no token/apiKey" in r.stderr.splitlines()[0]


@pytest.mark.slow
def test_readme_pipeline_works_as_written_with_nothing_running(tmp_path: Path) -> None:
    """`decart stream --local --token "$(decart token --local --ttl 5)"` with no emulator running: token --local
    starts one that stays up, the stream finds it and its token is accepted (was: token failed, stream ran without)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECART_")}
    env.update(DECART_LOCAL_ADDRESS=f"127.0.0.1:{port}", DECART_CONFIG_DIR=str(tmp_path / "cfg"))
    decart = f"{sys.executable} -m decart_cli"
    command = (
        f'{decart} stream --local --token "$({decart} token --local --ttl 5)" --camera test '
        "--duration 1 --json --no-window"
    )
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    match = re.search(r"started a local emulator on http://127\.0\.0\.1:(\d+) \(pid (\d+), log ([^)]+)\)", proc.stderr)
    assert match, proc.stderr
    pid = int(match.group(2))
    log_path = Path(match.group(3))
    try:
        assert int(match.group(1)) == port
        assert proc.returncode == 0, proc.stderr
        events = [json.loads(line) for line in proc.stdout.splitlines()]
        assert any(e["event"] == "generation_started" for e in events)
        assert "for this session" not in proc.stderr  # the stream found token's emulator, it did not start one
        log = log_path.read_text()
        assert "credential=client token" in log or "client token" in log, log[-2000:]
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        log_path.unlink(missing_ok=True)
