"""Configuration precedence: flag > environment > config file > default; --local; timeouts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from decart_cli import config
from decart_cli.errors import ConfigError


def _write_config(text: str) -> Path:
    path = config.config_dir() / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def test_defaults_point_at_the_cloud() -> None:
    """With nothing configured the URLs are Decart's production endpoints and there is no key."""
    s = config.load_settings()
    assert (s.base_url, s.realtime_url, s.api_key) == ("https://api.decart.ai", "wss://api.decart.ai", None)
    legacy = config.load_settings(realtime_url="wss://api3.decart.ai")  # the older host is still accepted
    assert legacy.realtime_url == "wss://api3.decart.ai"


def test_config_file_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values from config.toml override the defaults."""
    _write_config('base_url = "https://file.example"\napi_key = "file-key-1234"\n')
    s = config.load_settings()
    assert s.base_url == "https://file.example"
    assert s.api_key is not None and s.api_key.reveal() == "file-key-1234"


def test_env_beats_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """DECART_* variables override the config file."""
    _write_config('base_url = "https://file.example"\napi_key = "file-key-1234"\n')
    monkeypatch.setenv("DECART_BASE_URL", "https://env.example/")
    monkeypatch.setenv("DECART_API_KEY", "env-key-5678")
    s = config.load_settings()
    assert s.base_url == "https://env.example"
    assert s.api_key is not None and s.api_key.reveal() == "env-key-5678"


def test_flag_beats_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Flags override the environment."""
    monkeypatch.setenv("DECART_REALTIME_URL", "wss://env.example")
    monkeypatch.setenv("DECART_API_KEY", "env-key-5678")
    key_file = tmp_path / "key"
    key_file.write_text("file-flag-key-99\n")
    key_file.chmod(0o600)
    s = config.load_settings(realtime_url="wss://flag.example", api_key_file=str(key_file))
    assert s.realtime_url == "wss://flag.example"
    assert s.api_key is not None and s.api_key.reveal() == "file-flag-key-99"


def test_local_points_both_urls_at_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    """--local targets decart serve and supplies a placeholder key when none is configured."""
    monkeypatch.setenv("DECART_REALTIME_URL", "wss://env.example")
    s = config.load_settings(local=True)
    assert (s.base_url, s.realtime_url) == ("http://127.0.0.1:8787", "ws://127.0.0.1:8787")
    assert s.api_key is not None and s.api_key.reveal() == config.LOCAL_PLACEHOLDER_KEY
    monkeypatch.setenv("DECART_LOCAL_ADDRESS", "127.0.0.1:9999")
    assert config.load_settings(local=True).base_url == "http://127.0.0.1:9999"


def test_token_is_preferred_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client token (DECART_TOKEN) is what goes on the realtime URL when both are set."""
    monkeypatch.setenv("DECART_API_KEY", "permanent-key-1")
    monkeypatch.setenv("DECART_TOKEN", "ek_short_lived_1")
    s = config.load_settings()
    assert s.credential is not None and s.credential.reveal() == "ek_short_lived_1"
    assert s.credential.kind == "client token"


def test_invalid_url_is_a_usage_error() -> None:
    """A malformed URL is rejected with the value named."""
    with pytest.raises(ConfigError, match="not-a-url"):
        config.load_settings(base_url="not-a-url")


def test_timeouts_scale_with_factor(monkeypatch: pytest.MonkeyPatch) -> None:
    """DECART_TIMEOUT_FACTOR multiplies every deadline (tests run with short ones)."""
    monkeypatch.setenv("DECART_TIMEOUT_FACTOR", "0.5")
    t = config.Timeouts().scaled()
    assert t.prompt_ack == 7.5 and t.set_ack == 15.0


def test_a_bad_timeout_factor_counts_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DECART_TIMEOUT_FACTOR that is no number leaves every deadline as it is (no crash in any command)."""
    monkeypatch.setenv("DECART_TIMEOUT_FACTOR", "fast")
    assert config.timeout_factor() == 1.0
    assert config.Timeouts().scaled() == config.Timeouts()
