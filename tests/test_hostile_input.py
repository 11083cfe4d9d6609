"""Bad values a newcomer (or a failed `$(…)`) hands the CLI: each is one error line and exit 2, before any I/O."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cli import run_cli

from decart_cli.config import Secret, is_client_token, load_settings
from decart_cli.errors import ConfigError, ExitStatus

# Nothing listens here: a command that got past validation would fail to connect (exit 1 or 5), not hang.
DEAD_WS = ["--realtime-url", "ws://127.0.0.1:9"]
DEAD_REST = "http://127.0.0.1:9"


def jwt(claims: dict[str, object]) -> str:
    """A JWT-shaped token (header.payload.signature, base64url); the signature is not checked here."""

    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'EdDSA', 'typ': 'JWT'})}.{part(claims)}.{'c2lnbmF0dXJl' * 4}"


def one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert "internal error" not in stderr and "Traceback" not in stderr
    return errors[0]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_text("test-key-123456\n")
    path.chmod(0o600)
    return path


def test_empty_token_flag_is_refused(monkeypatch: pytest.MonkeyPatch, key_file: Path) -> None:
    """`--token ""` (a `$(decart token)` that failed) is refused instead of silently streaming with the key."""
    r = run_cli(["stream", "--camera", "test", "--token", "", "--api-key-file", str(key_file), *DEAD_WS], monkeypatch)
    assert r.code == ExitStatus.USAGE
    assert one_error(r.stderr) == "error: --token is empty"


def test_empty_token_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exported but empty DECART_TOKEN is refused, with a hint to unset it."""
    monkeypatch.setenv("DECART_TOKEN", "")
    monkeypatch.setenv("DECART_API_KEY", "test-key-123456")
    r = run_cli(["stream", "--camera", "test", *DEAD_WS], monkeypatch)
    assert r.code == ExitStatus.USAGE
    assert one_error(r.stderr) == "error: DECART_TOKEN is empty" and "unset DECART_TOKEN" in r.stderr


@pytest.mark.parametrize("value", ["ek_abcdefghijkl", jwt({"sub": "u1", "exp": 4102444800})])
def test_both_token_forms_are_client_tokens(value: str) -> None:
    """An ek_… key and a signed JWT are both taken by --token and reported as a "client token"."""
    settings = load_settings(token=value)
    assert settings.credential is not None and settings.credential.reveal() == value
    assert settings.credential.kind == "client token" and is_client_token(value)
    assert Secret("sk-permanent-12345").kind == "api key"


@pytest.mark.parametrize("value", ["sk-permanent-12345", "a.b", "eyJ.only-two", "x.y.z w"])
def test_other_token_shapes_are_refused_without_echoing_them(value: str) -> None:
    """A --token that is neither form is refused, naming the option but never the value."""
    with pytest.raises(ConfigError) as info:
        load_settings(token=value)
    assert "--token" in info.value.message and value not in info.value.message


def test_log_file_in_a_missing_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--log-file in a directory that does not exist is one line naming it, exit 2 (was "internal error")."""
    path = tmp_path / "missing" / "x.log"
    r = run_cli(["--log-file", str(path), "models"], monkeypatch)
    assert r.code == ExitStatus.USAGE
    assert one_error(r.stderr) == f"error: --log-file '{path}': directory '{path.parent}' does not exist"
    assert r.stdout == ""


def test_log_file_that_is_a_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--log-file naming a directory says so."""
    r = run_cli(["--log-file", str(tmp_path), "models"], monkeypatch)
    assert r.code == ExitStatus.USAGE
    assert one_error(r.stderr) == f"error: --log-file '{tmp_path}' is a directory"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_readable_by_others_is_refused(monkeypatch: pytest.MonkeyPatch, key_file: Path, mode: int) -> None:
    """--api-key-file readable by group or others is refused (as the README promises), naming chmod 600 PATH."""
    key_file.chmod(mode)
    r = run_cli(["token", "--api-key-file", str(key_file), "--base-url", DEAD_REST], monkeypatch)
    assert r.code == ExitStatus.USAGE
    assert one_error(r.stderr) == f"error: API key file '{key_file}' is readable by others (mode {mode:04o})"
    assert f"hint: run: chmod 600 {key_file}" in r.stderr
    assert "test-key-123456" not in r.stderr


def test_key_file_with_mode_600_is_accepted(monkeypatch: pytest.MonkeyPatch, key_file: Path) -> None:
    """A 0600 key file passes the check (the command then fails only on the dead URL, exit 5)."""
    r = run_cli(["token", "--api-key-file", str(key_file), "--base-url", DEAD_REST], monkeypatch)
    assert r.code == ExitStatus.NETWORK, r.stderr


@pytest.mark.parametrize(
    ("key", "what"),
    [
        ("kéy-1234567", "a non-ASCII character (position 2 of 11)"),
        ("key 12345", "a space or control character (position 4 of 9)"),
    ],
)
def test_malformed_api_key_is_one_line_not_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, key: str, what: str
) -> None:
    """A key with a non-ASCII character or a space (a bad paste) is one line naming its source, never the key."""
    monkeypatch.setenv("DECART_API_KEY", key)
    r = run_cli(["token", "--base-url", DEAD_REST], monkeypatch)
    assert r.code == ExitStatus.USAGE
    assert one_error(r.stderr) == f"error: the key from DECART_API_KEY contains {what}"
    assert key not in r.stderr


def test_record_naming_a_directory(monkeypatch: pytest.MonkeyPatch, key_file: Path, tmp_path: Path) -> None:
    """--record DIR says it is a directory (was "unsupported extension")."""
    r = run_cli(
        ["stream", "--camera", "test", "--record", str(tmp_path), "--api-key-file", str(key_file), *DEAD_WS],
        monkeypatch,
    )
    assert r.code == ExitStatus.USAGE
    assert one_error(r.stderr) == f"error: --record '{tmp_path}' is a directory"
