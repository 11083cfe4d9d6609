"""Keys never leak: Secret, redact(), the config file's mode, key sources, and every command run
at the highest verbosity (``--debug -vv --log-file``) with a recognisable key, on success and
failure paths, with stdout, stderr and the log file searched for it.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
import os
import re
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import pytest
from serve_proc import ServeProcess
from stream_proc import free_port

from decart_cli import config
from decart_cli.config import Secret, is_client_token, load_settings, redact, register_secret, write_config
from decart_cli.errors import ConfigError
from decart_cli.logs import setup_logging

LEAK_KEY = "sk-LEAKCHECK-1234567890abcdef"
#: Any fragment of the key in any output is a leak (partial prints count too).
LEAK_MARKERS = ("LEAKCHECK", "1234567890abcdef")


def assert_no_leak(label: str, *texts: str) -> None:
    """Fail with the offending line when any marker of the key appears in ``texts``."""
    for text in texts:
        for marker in LEAK_MARKERS:
            if marker.lower() in text.lower():
                line = next(ln for ln in text.splitlines() if marker.lower() in ln.lower())
                pytest.fail(f"{label}: key fragment {marker!r} leaked in: {line[:300]}")


# -- Secret and redact() -----------------------------------------------------------------------


def test_secret_repr_and_str_hide_the_value() -> None:
    """repr(), str(), f-strings and containers of a Secret never show the key."""
    secret = Secret(LEAK_KEY)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret]), repr({"k": secret})):
        assert_no_leak("Secret rendering", text)
    assert secret.reveal() == LEAK_KEY


def test_settings_repr_hides_the_key() -> None:
    """A Settings holding a key and a token prints neither."""
    settings = config.Settings(api_key=Secret(LEAK_KEY), token=Secret("ek_LEAKCHECK_token_abcdef"))
    assert_no_leak("Settings repr", repr(settings), str(settings))


def test_redact_removes_registered_keys_and_their_url_encodings() -> None:
    """A registered key disappears from text raw, %-quoted (with and without '/') and form-encoded."""
    tricky = "sk+LEAKCHECK/1234567890abcdef=x y"
    register_secret(tricky)
    forms = [tricky, quote(tricky, safe=""), quote(tricky), quote_plus(tricky), urlencode({"k": tricky})]
    for form in forms:
        assert_no_leak("redact", redact(f"before {form} after"))
        assert redact(f"before {form} after").startswith("before ")


def test_redact_removes_unregistered_api_key_query_values() -> None:
    """api_key=/token=/apiKey= values are removed even when never registered, also URL-encoded."""
    texts = [
        "wss://api3.decart.ai/v1/stream?api_key=LEAKCHECK-unregistered&model=lucy-2.1",
        "ws://127.0.0.1:1/v1/stream?model=lucy-2.1&api_key=LEAKCHECK%2Bplus",
        "http://x/?apiKey=LEAKCHECK1 and token=LEAKCHECK2",
        "next=ws%3A%2F%2Fh%2Fv1%2Fstream%3Fapi_key%3DLEAKCHECK-encoded%26model%3Dlucy",
        "'api_key=LEAKCHECK-in-quotes'",
    ]
    for text in texts:
        assert_no_leak("redact", redact(text))
    assert redact(texts[0]) == "wss://api3.decart.ai/v1/stream?api_key=***&model=lucy-2.1"
    assert redact(texts[3]).endswith("%26model%3Dlucy")


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


#: A JWT nobody registered (the shape of a LiveKit access token or a signed client token).
UNREGISTERED_JWT = (
    _b64({"alg": "HS256", "typ": "JWT"}) + "." + _b64({"sub": "LEAKCHECK", "video": {"room": "r"}}) + ".c2lnbmF0dXJl"
)


def test_redact_removes_unregistered_jwts_but_not_dotted_words() -> None:
    """A bare JWT (three base64url parts, the first a JSON header) goes, registered or not; host names,
    versions and file names with two dots, whose first part is no JSON, stay."""
    for text in (UNREGISTERED_JWT, f"joining with {UNREGISTERED_JWT}.", f"Bearer {UNREGISTERED_JWT}"):
        assert "***" in redact(text)
        assert not any(part in redact(text) for part in UNREGISTERED_JWT.split(".")), redact(text)
    plain = "wss://api3.decart.ai v1.2.3 clip.tar.gz lucy-2.1 www.example.com 127.0.0.1"
    assert redact(plain) == plain


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"livekit_room_info","livekit_url":"ws://h:7880","token":"lk-LEAKCHECK-opaque","room_name":"r"}',
        '{"token": "LEAKCHECK-with-space", "expiresAt": 1}',
        '{"apiKey": "ek_LEAKCHECK", "token": "x"}',
        "{'token': 'LEAKCHECK-python-repr'}",
        '\'{"type":"livekit_room_info","token":"LEAKCHECK-cut-by-websoc\'...\'ockets"}\'',
    ],
)
def test_redact_removes_json_token_fields(text: str) -> None:
    """JSON (or repr) "token"/"apiKey" values go even when not registered, also when the log cut the value short."""
    assert_no_leak("redact", redact(text))
    assert redact(text).count("***") >= 1


def test_short_values_are_not_registered() -> None:
    """Values under 4 characters are not treated as secrets (they would shred ordinary text)."""
    register_secret("ab")
    assert redact("ab abc") == "ab abc"


def test_logging_redacts_messages_args_and_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A key in a log message, its arguments or an exception's traceback never reaches stderr or the file."""
    Secret(LEAK_KEY)
    log_file = tmp_path / "debug.log"
    setup_logging(logging.DEBUG, str(log_file))
    log = logging.getLogger("decart_cli.test_secrets")
    try:
        log.debug("connecting to ws://h/v1/stream?api_key=%s&model=x", LEAK_KEY)
        log.info("header X-API-KEY: %s", LEAK_KEY)
        try:
            raise RuntimeError(f"failed for {quote(LEAK_KEY)}")
        except RuntimeError:
            log.exception("boom")
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "_decart", False):
                handler.close()
                logging.getLogger().removeHandler(handler)
    captured = capsys.readouterr()
    text = log_file.read_text()
    assert "boom" in text and "RuntimeError" in text
    assert_no_leak("logging", captured.out, captured.err, text)


# -- config file and key sources -----------------------------------------------------------------


def test_write_config_creates_0600_file_in_0700_dir() -> None:
    """A config file that may hold a key is created owner-only."""
    path = write_config({"api_key": LEAK_KEY})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_settings().api_key == Secret(LEAK_KEY)


def test_write_config_tightens_an_existing_file() -> None:
    """Rewriting an existing 0644 file without a key leaves it 0600 afterwards."""
    path = config.config_dir() / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('base_url = "https://api.decart.ai"\n')
    os.chmod(path, 0o644)
    write_config({"api_key": LEAK_KEY})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_readable_config_with_key_is_refused(mode: int) -> None:
    """A config file holding a key readable by group/others is refused, naming the path and chmod 600."""
    path = write_config({"api_key": LEAK_KEY})
    os.chmod(path, mode)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(path) in info.value.message
    assert f"chmod 600 {path}" in (info.value.hint or "")
    assert_no_leak("ConfigError", info.value.message, info.value.hint or "")


def test_readable_config_without_key_is_accepted() -> None:
    """Without a key in it, a world-readable config file is fine."""
    path = config.config_dir() / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('base_url = "https://example.test"\n')
    os.chmod(path, 0o644)
    assert load_settings().base_url == "https://example.test"


def test_api_key_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    """--api-key - reads the key from stdin, whitespace stripped."""
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(f"  {LEAK_KEY}\n"))
    assert load_settings(api_key="-").api_key == Secret(LEAK_KEY)


def test_api_key_file_reads_the_file(tmp_path: Path) -> None:
    """--api-key-file reads the key from the file, whitespace stripped."""
    key_file = tmp_path / "key"
    key_file.write_text(f"{LEAK_KEY}\n")
    key_file.chmod(0o600)
    assert load_settings(api_key_file=str(key_file)).api_key == Secret(LEAK_KEY)


def test_api_key_file_errors_name_the_file_not_the_key(tmp_path: Path) -> None:
    """A missing or empty key file is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match="cannot read API key file"):
        load_settings(api_key_file=str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(ConfigError, match="is empty"):
        load_settings(api_key_file=str(empty))


# -- every command at the highest verbosity ------------------------------------------------------


@dataclass
class Run:
    """One `decart` process: exit code and everything it wrote."""

    code: int
    stdout: str
    stderr: str
    log: str

    def check(self, label: str) -> None:
        """Fail if any fragment of the key is in stdout, stderr or the log file."""
        assert_no_leak(f"{label} (exit {self.code})", self.stdout, self.stderr, self.log)


def base_env(tmp_path: Path) -> dict[str, str]:
    """The test's (already cleaned) environment plus a private config dir and short timeouts."""
    env = dict(os.environ)
    env.update(DECART_CONFIG_DIR=str(tmp_path / "config"), DECART_TIMEOUT_FACTOR="0.2", NO_COLOR="1")
    # The host's namespace: the direct media path (LiveKit runs: test_livekit_token_never_printed).
    env["DECART_TRANSPORT"] = "webrtc"
    return env


def decart(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str = "",
    timeout: float = 60,
) -> Run:
    """Run `python -m decart_cli --debug -vv --log-file F ARGS` to completion."""
    log_file = tmp_path / f"log-{next(_counter)}.txt"
    proc = subprocess.run(
        [sys.executable, "-m", "decart_cli", "--debug", "-vv", "--log-file", str(log_file), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env if env is not None else base_env(tmp_path),
        timeout=timeout,
    )
    log = log_file.read_text(errors="replace") if log_file.exists() else ""
    return Run(proc.returncode, proc.stdout, proc.stderr, log)


_counter = itertools.count()


def key_env(tmp_path: Path, via: str) -> tuple[dict[str, str], list[str], str]:
    """Environment, extra arguments and stdin that hand LEAK_KEY to a command ``via`` env/file/stdin."""
    env = base_env(tmp_path)
    if via == "env":
        env["DECART_API_KEY"] = LEAK_KEY
        return env, [], ""
    if via == "file":
        key_file = tmp_path / "key.txt"
        key_file.write_text(LEAK_KEY + "\n")
        os.chmod(key_file, 0o600)
        return env, ["--api-key-file", str(key_file)], ""
    return env, ["--api-key", "-"], LEAK_KEY + "\n"


VIAS = ["env", "file", "stdin"]


def test_models_at_full_verbosity(tmp_path: Path) -> None:
    """`decart models` with a key in the environment prints no part of it."""
    env, _, _ = key_env(tmp_path, "env")
    for args in (["models"], ["models", "--json"], ["models", "show", "lucy-2.1"]):
        run = decart(tmp_path, *args, env=env)
        assert run.code == 0, run.stderr
        run.check(" ".join(args))


@pytest.mark.parametrize("via", VIAS)
def test_token_unreachable_url_with_traceback(tmp_path: Path, via: str) -> None:
    """`decart token` against a refused port (retries, --debug traceback quoting the URL) leaks nothing."""
    env, extra, stdin = key_env(tmp_path, via)
    port = free_port()
    run = decart(tmp_path, "token", *extra, "--base-url", f"http://127.0.0.1:{port}", env=env, stdin=stdin)
    assert run.code == 5, run.stderr
    assert "Traceback" in run.stderr and f"127.0.0.1:{port}" in run.stderr  # the failure path really ran
    run.check(f"token via {via}, refused")


def test_token_tls_failure(tmp_path: Path) -> None:
    """A TLS handshake failure (https:// URL answered by plain HTTP on loopback) leaks nothing."""
    env, _, _ = key_env(tmp_path, "env")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def answer_in_plain_http() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer_in_plain_http, daemon=True)
        thread.start()
        run = decart(tmp_path, "token", "--base-url", f"https://127.0.0.1:{port}", env=env)
        thread.join(timeout=5)
    assert run.code == 5, run.stderr
    assert "TLS handshake" in run.stderr
    run.check("token TLS failure")


def test_leak_check_itself_catches_a_leak() -> None:
    """The checker fails on the key, on a fragment of it, and ignores case (so the checks above can fail)."""
    for text in (f"x {LEAK_KEY} y", "prefix leakcheck suffix", "tail 1234567890abcdef"):
        with pytest.raises(pytest.fail.Exception):
            assert_no_leak("self-test", "clean", text)


@contextlib.contextmanager
def serving(tmp_path: Path, *args: str) -> Iterator[ServeProcess]:
    """A running `decart --debug -vv --log-file F serve …`; its own output is leak-checked when the block ends."""
    server = ServeProcess(
        *args,
        global_args=("--debug", "-vv"),
        log_file=True,
        env=base_env(tmp_path),
        directory=tmp_path / f"serve-{next(_counter)}",
    )
    try:
        yield server
    finally:
        out = server.stop()
    Run(out.code, out.stdout, out.stderr, out.log).check(
        f"serve {' '.join(a if 'LEAK' not in a else '<key>' for a in args)}"
    )
    assert "listening on" in out.stdout and "'api_key': '***'" in out.stderr  # clients did connect


def stream_args(server: ServeProcess | None = None, realtime_url: str | None = None) -> list[str]:
    """A short synthetic-camera stream with JSON events."""
    target = ["--base-url", server.http_url, "--realtime-url", server.ws_url] if server else []
    if realtime_url:
        target = ["--realtime-url", realtime_url]
    return ["stream", *target, "--camera", "test", "--duration", "1", "--json", "--no-window"]


@pytest.mark.slow
def test_serve_with_the_key_and_clients_using_it(tmp_path: Path) -> None:
    """`decart serve --api-key KEY` accepting token and stream clients with KEY: no process prints it."""
    with serving(tmp_path, "--api-key", LEAK_KEY) as server:
        # Each key source (env/file/stdin) is covered by the refused-port test; one suffices here.
        env, extra, stdin = key_env(tmp_path, "file")
        run = decart(tmp_path, "token", "--base-url", server.http_url, *extra, env=env, stdin=stdin)
        assert run.code == 0 and is_client_token(run.stdout.strip()), run.stderr  # a JWT, or ek_ from an older server
        run.check("token via file, accepted")
        env, extra, stdin = key_env(tmp_path, "env")
        run = decart(tmp_path, *stream_args(server), env=env)
        assert run.code == 0, run.stderr[-2000:]
        assert '"event":"generation_started"' in run.stdout  # it really streamed
        # The signaling URL carrying api_key= was logged at debug level — redacted.
        assert "api_key=***" in run.log and "websockets.client" in run.log
        run.check("stream, accepted")
        wrong = decart(tmp_path, "token", "--base-url", server.http_url, "--api-key", "-", stdin="wrong-key-999\n")
        assert wrong.code == 3
        wrong.check("token with a wrong key against serve holding the key")


@pytest.mark.slow
def test_clients_rejected_by_serve_with_another_key(tmp_path: Path) -> None:
    """Against `decart serve --api-key other`, token, stream and netcheck --auth fail without printing KEY."""
    with serving(tmp_path, "--api-key", "the-other-key-0000") as server:
        env, extra, stdin = key_env(tmp_path, "env")
        run = decart(tmp_path, "token", "--base-url", server.http_url, *extra, env=env, stdin=stdin)
        assert run.code == 3 and "Invalid API key" in run.stderr, run.stderr
        run.check("token via env, rejected")
        env, extra, stdin = key_env(tmp_path, "stdin")
        run = decart(tmp_path, *stream_args(server), *extra, env=env, stdin=stdin)
        assert run.code == 3, run.stderr[-2000:]
        assert "Invalid API key" in run.stderr
        run.check("stream, rejected")
        env = base_env(tmp_path)
        env["DECART_TOKEN"] = "ek_LEAKCHECK-client-token-0000"  # a client token is a secret too
        run = decart(tmp_path, *stream_args(server), env=env)
        assert run.code == 3 and "Invalid API key" in run.stderr, run.stderr[-2000:]
        run.check("stream --token, rejected")
        env, _, _ = key_env(tmp_path, "env")
        env["DECART_NETCHECK_ENDPOINTS"] = json.dumps(netcheck_endpoints(server.port, server.ws_url))
        run = decart(tmp_path, "netcheck", "--json", "--auth", "--timeout", "3", env=env)
        auth = [row for row in json.loads(run.stdout)["checks"] if row["check"] == "websocket-auth"]
        assert auth and auth[0]["result"] == "fail" and "Invalid API key" in auth[0]["detail"]
        run.check("netcheck --auth, rejected")


def netcheck_endpoints(tcp_port: int, ws_url: str | None = None) -> dict[str, object]:
    """Every netcheck target on loopback (IP literals: no DNS); STUN/media at a closed UDP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        udp = int(s.getsockname()[1])
    targets: dict[str, object] = {n: {"host": "127.0.0.1", "port": tcp_port} for n in ("api", "signaling", "platform")}
    targets["turn"] = {"host": "127.0.0.1", "port": tcp_port, "udp_port": udp}
    targets["media"] = {"host": "127.0.0.1", "port": tcp_port, "udp_port": udp}
    targets["stun"] = {"host": "127.0.0.1", "udp_port": udp}
    if ws_url:
        targets["signaling"] = {"host": "127.0.0.1", "port": tcp_port, "ws_url": f"{ws_url}/v1/stream?model=lucy-2.1"}
    return targets


@pytest.mark.slow
def test_stream_and_netcheck_unreachable(tmp_path: Path) -> None:
    """A refused realtime URL (websockets quotes the URL with api_key=) and netcheck on dead ports leak nothing."""
    port = free_port()
    env, extra, stdin = key_env(tmp_path, "file")
    run = decart(tmp_path, *stream_args(realtime_url=f"ws://127.0.0.1:{port}"), "--no-reconnect", *extra, env=env)
    assert run.code != 0 and f"127.0.0.1:{port}" in run.stderr, run.stderr[-2000:]
    run.check("stream, refused")
    env, _, _ = key_env(tmp_path, "env")
    env["DECART_NETCHECK_ENDPOINTS"] = json.dumps(netcheck_endpoints(port, f"ws://127.0.0.1:{port}"))
    run = decart(tmp_path, "netcheck", "--json", "--auth", "--timeout", "3", env=env)
    assert run.code == 1 and json.loads(run.stdout)["streaming_should_work"] is False
    run.check("netcheck --auth, refused")


@pytest.mark.slow
def test_stream_local_with_child_emulator(tmp_path: Path) -> None:
    """`decart stream --local --camera test --duration 1 --json` (child `decart serve`) with KEY in the env."""
    env, _, _ = key_env(tmp_path, "env")
    env["DECART_LOCAL_ADDRESS"] = f"127.0.0.1:{free_port()}"
    run = decart(tmp_path, "stream", "--local", "--camera", "test", "--duration", "1", "--json", "--no-window", env=env)
    assert run.code == 0, run.stderr[-2000:]
    run.check("stream --local")


JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")  # a LiveKit access token, a signed client token


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["livekit", "webrtc"])
def test_tokens_and_key_never_printed_at_full_verbosity(tmp_path: Path, transport: str) -> None:
    """Over either transport (in the test namespace) at --debug -vv with a log file, with a signed client token
    (JWT) and websockets logging whole frames: neither the API key, nor the client token, nor the LiveKit access
    token handed over in livekit_room_info appears in stdout, stderr or the log — which does hold those frames."""
    from test_stream_livekit import scenario

    log = tmp_path / "debug.log"
    summary = scenario(
        tmp_path,
        *("--camera", "test", "--duration", "1", "--json", "--no-window", "--transport", transport),
        globals_=("--debug", "-vv", f"--log-file={log}"),
        token={"expires_in": 120},
        # Whole frames in websockets' debug log (it elides them past 75 characters by default): the
        # frames carrying tokens are then logged in full, and only redaction keeps the tokens out.
        env={"DECART_API_KEY": LEAK_KEY, "WEBSOCKETS_MAX_LOG_SIZE": "100000"},
    )
    assert summary["rc"] == 0, summary["stderr"][-2000:]
    client_token = summary["client_token"]
    assert JWT.fullmatch(client_token.rsplit(".", 1)[0]), "the stream must use a signed (JWT) client token"
    text = log.read_text()
    stdout = json.dumps(summary["records"])
    assert "api_key=***" in text and "websockets.client" in text  # the URL carrying the token was logged
    if transport == "livekit":
        assert "joined LiveKit room" in text
        assert '"type":"livekit_room_info"' in text and '"token":"***"' in text  # the whole frame, redacted
    for where, blob in (("stdout", stdout), ("stderr", summary["stderr"]), ("log", text)):
        assert_no_leak(f"{transport} stream {where}", blob)
        match = JWT.search(blob)
        assert match is None, f"a JWT leaked in {where}: {match.group(0)[:16]}…"
        for part in client_token.split("."):
            assert part not in blob, f"part of the client token leaked in {where}"
