"""The official Python SDK of the LiveKit era (decart==0.2.4, realtime extra, UNCHANGED) against `decart serve`.

Each test runs inside a fresh network namespace (scripts/netns-run: libwebrtc needs the veth's
127.0.0.2) a harness that starts ``decart serve --loopback-only`` and the SDK driver
(tests/sdk/sdk_0_2_4.py, in .venv-sdk/0.2.4) side by side. The SDK passes no RoomOptions, so it
asks for /rtc/v1 (single peer connection); ``--lk-single-pc off`` answers 404 and the unchanged SDK
falls back to /rtc (two peer connections).
"""

from __future__ import annotations

from typing import Any

import pytest
from netns import run_scenario
from sdk_venvs import HARNESS, SDK_SCRIPTS, sdk_python

SDK = "0.2.4"


def run(scenario: str, *serve: str, seconds: float = 5.0) -> dict[str, Any]:
    """Run one scenario of the 0.2.4 driver under the harness; the harness's JSON summary."""
    python = sdk_python(SDK)
    argv = [*(f"--serve={a}" for a in serve), "--", str(python), str(SDK_SCRIPTS / "sdk_0_2_4.py")]
    argv += ["--url", "{http}", scenario, "--seconds", str(seconds)]
    result = run_scenario(HARNESS, *argv, timeout=120).check().json()
    assert result["driver_rc"] == 0 and result["driver"] is not None, result["serve"]["stderr_tail"][-30:]
    return dict(result)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["single", "dual"])
def test_official_sdk_0_2_4_streams_through_the_livekit_stand_in(mode: str) -> None:
    """decart 0.2.4: JWT client token, prompt, 1088×624 @ 30 marked track, set_prompt, set(image), ≥ 90 % back, clean end."""
    result = run("stream", *(["--lk-single-pc", "off"] if mode == "dual" else []), seconds=5.0)
    d, serve = result["driver"], result["serve"]
    log = "\n".join(serve["stderr_tail"])
    print(
        f"\ndecart 0.2.4 ({mode} PC) vs decart serve: captured {d['sent']} at {d['send_fps']} fps, "
        f"{d['sent_since_first']} from the first that came back; received {d['received']} "
        f"({100 * d['received'] / max(1, d['sent_since_first']):.1f} %) at {d['recv_fps']} fps, "
        f"glass-to-glass p50 {d['latency_ms_p50']} ms p95 {d['latency_ms_p95']} ms, connect "
        f"{d['timings_ms']['connect']} ms, first frame {d['first_frame_s']} s; serve CPU {serve['cpu_per_second']} s/s"
    )
    assert d["api_key_prefix"] == "ek_" and d["jwt_parts"] == 3
    assert d["verified"]["allowed_models"] == ["lucy-2.1"]  # the SDK's own tokens.verify against our JWKS
    assert d["verified"]["issuer"] == "https://platform.decart.ai"
    assert d["sizes"] == [[1088, 624]]  # the model's size, whatever simulcast layer the server received
    # Frames captured before the SDK's media path is up (publish, subscription, first keyframe) never
    # leave the client; from the first frame that came back (its marker id) on, ≥ 90 % must return.
    assert d["received"] >= 0.9 * d["sent_since_first"], {k: d[k] for k in ("sent", "sent_since_first", "received")}
    assert d["sent_since_first"] >= 0.5 * d["sent"]  # and the media path was up for most of the run
    # markers survive, scaled back from lower simulcast layers; a frame libwebrtc concealed after a
    # lost packet (rows of two frames, seen under load) fails its checksum and carries no id
    assert d["marked"] >= 0.95 * d["received"]
    assert not d["errors"] and d["states"][-1] == "disconnected"
    assert d["ticks"] and d["ticks"] == sorted(d["ticks"])
    assert ("mode=v0" in log) == (mode == "dual") and ("mode=v1" in log) == (mode == "single")
    assert "credential=client token" in log
    assert "lk_client_leave" in log and serve["rc"] == 0


@pytest.mark.slow
def test_official_sdk_0_2_4_follows_a_republished_output_track() -> None:
    """A set after passthrough restarts generation: the SDK hands over a second track and frames keep coming."""
    d = run("restart", seconds=5.0)["driver"]
    assert len(d["tracks"]) == 2 and d["tracks"][0] != d["tracks"][1]
    assert d["frames_before_set"] > 0
    assert d["per_track"][d["tracks"][1]] >= 30  # the new track carries the rest of the stream
    assert d["received"] >= 0.8 * d["sent_since_first"]


def test_official_sdk_0_2_4_gives_up_at_once_on_token_errors() -> None:
    """An expired JWT and a JWT for another model: connect fails at once with the server's error (no retries)."""
    d = run("rejected")["driver"]
    assert d["expired"]["error"] == "Invalid API key: token expired"
    assert d["model"]["error"] == "Model lucy-2.1 not allowed for this token"
    assert d["expired"]["seconds"] < 5 and d["model"]["seconds"] < 5
