"""`decart serve`'s LiveKit-era flags from the command line: --queue, --lk-single-pc, --loopback-only, help."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from typing import Any

import httpx
import pytest
from emulator_client import T, open_ws, recv_json
from netns import run_scenario
from sdk_venvs import SDK_SCRIPTS
from serve_proc import ServeProcess

FLAGS = ("--queue", "--republish-after", "--lk-drop-after", "--lk-single-pc", "--loopback-only")


def test_every_livekit_flag_has_help_text() -> None:
    """`decart serve --help` lists each LiveKit-era flag with a sentence of help."""
    out = subprocess.run(
        [sys.executable, "-m", "decart_cli", "serve", "--help"], capture_output=True, text=True, timeout=8 * T
    ).stdout
    lines = out.splitlines()
    for flag in FLAGS:
        [index] = [i for i, line in enumerate(lines) if line.strip().startswith(flag)]
        text = " ".join(line.strip() for line in lines[index : index + 3])
        assert len(text) > len(flag) + 30, text


@pytest.mark.slow
def test_serve_flags_reach_the_emulator() -> None:
    """--queue 2 queues a LiveKit join twice; --lk-single-pc off makes /rtc/v1 answer 404; SIGTERM exits 0."""
    with ServeProcess("--queue", "2", "--lk-single-pc", "off") as serve:

        async def talk() -> list[dict[str, Any]]:
            async with await open_ws(serve.ws_url) as ws:
                await ws.send(json.dumps({"type": "livekit_join"}))
                got = []
                while (msg := await recv_json(ws, timeout=4 * T))["type"] != "livekit_room_info":
                    got.append(msg)
                async with httpx.AsyncClient(base_url=serve.http_url) as client:
                    resp = await client.get("/rtc/v1/validate", headers={"Authorization": f"Bearer {msg['token']}"})
                return [*got, {"status": resp.status_code}]

        got = asyncio.run(talk())
        out = serve.stop(signal.SIGTERM, timeout=4 * T)
    kinds = [g["type"] if "type" in g else g["status"] for g in got]
    assert kinds == ["session_id", "status", "queue_position", "queue_position", "status", 404]
    assert [g["position"] for g in got if g.get("type") == "queue_position"] == [2, 1]
    assert out.code == 0


def test_a_bad_lk_single_pc_value_is_one_line_and_exit_2() -> None:
    """--lk-single-pc accepts on or off; anything else is a one-line usage error (exit 2)."""
    proc = subprocess.run(
        [sys.executable, "-m", "decart_cli", "serve", "--port", "0", "--lk-single-pc", "maybe"],
        capture_output=True,
        text=True,
        timeout=8 * T,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--lk-single-pc 'maybe' is not one of on, off" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("loopback_only", [True, False])
def test_loopback_only_decides_the_answers_candidates(loopback_only: bool) -> None:
    """In a namespace: --loopback-only answers with 127.0.0.1 only; without it, the interface address (127.0.0.2)."""
    args = ["--loopback-only"] if loopback_only else []
    found = run_scenario(SDK_SCRIPTS / "serve_candidates.py", *args, timeout=60).check().json()["candidates"]
    addresses = {c[1] for c in found}
    assert addresses == ({"127.0.0.1"} if loopback_only else {"127.0.0.2"})
    assert {c[3] for c in found} == {"host"}
