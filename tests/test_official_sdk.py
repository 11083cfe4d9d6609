"""The official Python SDK of the direct-WebRTC era (decart==0.0.40), UNCHANGED, against the emulator.

The SDK runs in its own virtualenv (``make sdk-venvs``) as a subprocess (tests/sdk/sdk_0_0_40.py)
against the in-process emulator. If a test fails because of the emulator, the emulator is fixed;
the SDK is never patched. The driver keeps its packets on 127.0.0.1: aioice offers 127.0.0.1 only
and non-loopback names (the SDK's hard-coded Google STUN server) fail without a lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from emulator_client import T
from fixtures_emulator import expire_tokens
from sdk_venvs import run_sdk

from decart_cli.emulator.server import EmulatorThread

MakeEmulator = Callable[..., EmulatorThread]
SDK = "0.0.40"


def _wait_for_close(emu: EmulatorThread) -> None:
    deadline = time.monotonic() + T
    while not any(e["event"] == "close" for e in emu.events) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.slow
def test_official_sdk_streams_through_the_emulator(emulator: EmulatorThread) -> None:
    """SDK 0.0.40: mints a client token, connects with it, set_prompt and set(image) are acked, ≥ 90 % frames return."""
    result = run_sdk(SDK, "sdk_0_0_40.py", "--url", emulator.http_url, "stream", timeout=20 * T)
    sent, received = result["sent"], result["received"]
    print(
        f"\nSDK 0.0.40 vs emulator: sent {sent} frames, received {received} ({100 * received / max(1, sent):.1f} %), "
        f"first frame after {result['first_frame_s']} s, timings {result['timings_ms']} ms, ticks {result['ticks']}"
    )
    assert result["token_prefix"] == "ek_" and result["permissions"] == {"models": ["lucy-2.1"]}
    assert result["session_id"]
    assert not result["errors"], result["errors"]
    assert result["sizes"] == [[1088, 624]]
    assert result["stamp"] == result["marker"]  # the marker is preserved
    assert received >= 0.9 * sent
    assert result["ticks"] and result["ticks"] == sorted(result["ticks"])
    assert result["states"][-1] == "disconnected"
    _wait_for_close(emulator)
    events = emulator.events
    sent_types = [e["type"] for e in events if e["event"] == "sent"]
    assert sent_types.count("prompt_ack") == 2 and sent_types.count("set_image_ack") == 1
    final = [e for e in events if e["event"] == "state"][-1]
    assert final["prompt"] == "pencil sketch" and final["image"] == "90x120"
    assert [e["credential"] for e in events if e["event"] == "session"] == ["client token"]
    assert any(e["event"] == "close" for e in events)


@pytest.mark.slow
def test_official_sdk_survives_capacity_reject_garbage_and_slow_acks(make_emulator: MakeEmulator) -> None:
    """SDK 0.0.40 retries a 1013 capacity reject, ignores interleaved garbage frames and waits for slow acks."""
    emu = make_emulator(reject_first=1, garbage=True, ack_delay_ms=150)
    result = run_sdk(SDK, "sdk_0_0_40.py", "--url", emu.http_url, "faults", timeout=20 * T)
    assert result["received"] >= 10
    assert emu.connections == 2
    assert any(e["event"] == "fault" and e["fault"] == "reject_first" for e in emu.events)


@pytest.mark.parametrize("case", ["expired", "model"])
def test_official_sdk_gives_up_at_once_on_token_errors(emulator: EmulatorThread, case: str, tmp_path: Path) -> None:
    """An expired token or a model outside allowedModels is permanent for SDK 0.0.40: one attempt, no retry."""
    if case == "expired":
        key = emulator.issue_token(expires_in=1)["apiKey"]
        expire_tokens(emulator)
    else:
        key = emulator.issue_token(allowed_models=["lucy-vton-3"])["apiKey"]
    key_file = tmp_path / "key"
    key_file.write_text(key)
    result = run_sdk(
        SDK, "sdk_0_0_40.py", "--url", emulator.http_url, "rejected", "--key-file", str(key_file), timeout=8 * T
    )
    text = (result["error"] or "").lower()
    assert ("invalid api key" in text) if case == "expired" else ("not allowed" in text)
    assert emulator.connections == 1


@pytest.mark.slow
def test_official_sdk_reconnects_after_a_drop(make_emulator: MakeEmulator) -> None:
    """--drop-after: the SDK sees the socket die and reconnects on its own, re-sending passthrough (§4.3).

    No frames are expected after the reconnect: aiortc 1.16 ends a local track when its peer
    connection closes, and SDK 0.0.40 re-adds that ended track to the new peer connection.
    """
    emu = make_emulator(drop_after=0.8)
    result = run_sdk(SDK, "sdk_0_0_40.py", "--url", emu.http_url, "reconnect", timeout=20 * T)
    states = result["states"]
    assert "reconnecting" in states and states[-1] in ("connected", "generating"), states
    assert emu.connections >= 2
    events = emu.events
    assert [e["conn"] for e in events if e["event"] == "fault" and e["fault"] == "drop"] == [1]
    assert [e["code"] for e in events if e["event"] == "close" and e["conn"] == 1] == [1006]
    second = [e for e in events if e["event"] == "state" and e["conn"] == 2]
    assert second and second[0]["passthrough"] is True  # the SDK forgets the prompt on reconnect


@pytest.mark.slow
def test_official_sdk_viewer_watches_a_running_session(emulator: EmulatorThread) -> None:
    """SDK 0.0.40 subscribe(): a viewer with the producer's subscribe token receives its output frames."""
    result = run_sdk(SDK, "sdk_0_0_40.py", "--url", emulator.http_url, "viewer", timeout=20 * T)
    assert result["had_token"]
    assert result["received"] >= 10
    assert result["sizes"] == [[1088, 624]]
    assert result["stamp"] == result["marker"]


def test_a_missing_sdk_virtualenv_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without .venv-sdk/VERSION the SDK tests fail (never skip) with one line: run make sdk-venvs."""
    import sdk_venvs

    monkeypatch.setattr(sdk_venvs, "SDK_DIR", tmp_path)
    with pytest.raises(pytest.fail.Exception) as info:
        sdk_venvs.sdk_python("0.0.40")
    assert str(info.value) == "the decart==0.0.40 SDK virtualenv is missing (.venv-sdk/0.0.40): run make sdk-venvs"
