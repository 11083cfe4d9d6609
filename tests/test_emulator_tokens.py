"""POST /v1/client/tokens on the emulator, and issued tokens used on /v1/stream (decart-protocol.md §6.1, §1.4)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from emulator_client import T, open_ws, recv_json, recv_until
from fixtures_emulator import expire_tokens

from decart_cli.emulator.server import EmulatorThread
from decart_cli.emulator.tokens import TokenError, TokenStore

MakeEmulator = Callable[..., EmulatorThread]
KEY = "test-key-123456"


def post(emu: EmulatorThread, body: Any = None, *, key: str | None = KEY, header: str = "X-API-KEY") -> httpx.Response:
    """POST /v1/client/tokens with ``body`` as JSON (or raw text when a str)."""
    headers = {header: key} if key is not None else {}
    with httpx.Client(base_url=emu.http_url, timeout=T) as client:
        if isinstance(body, str):
            return client.post(
                "/v1/client/tokens", content=body, headers={**headers, "Content-Type": "application/json"}
            )
        return client.post("/v1/client/tokens", json={} if body is None else body, headers=headers)


def test_token_defaults_to_60_seconds_without_permissions(emulator: EmulatorThread) -> None:
    """An empty body issues an ek_ key and a signed JWT expiring in ~60 s, ISO 8601 UTC 'Z', no permissions."""
    before = time.time()
    resp = post(emulator)
    assert resp.status_code == 200
    data = resp.json()
    assert set(data) == {"apiKey", "token", "expiresAt"}
    assert data["apiKey"].startswith("ek_") and len(data["apiKey"]) > 20
    assert data["token"].startswith("eyJ") and data["token"].count(".") == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["expiresAt"])
    expires = datetime.strptime(data["expiresAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert before + 58 <= expires <= time.time() + 61


def test_restricted_token_echoes_permissions_and_constraints(emulator: EmulatorThread) -> None:
    """allowedModels/allowedOrigins come back as permissions; constraints are echoed; the header is case-insensitive."""
    body = {
        "expiresIn": 120,
        "allowedModels": ["lucy-2.1", "lucy-restyle-latest"],
        "allowedOrigins": ["https://example.com"],
        "constraints": {"realtime": {"maxSessionDuration": 30}},
        "metadata": {"role": "viewer"},
    }
    data = post(emulator, body, header="x-api-key").json()
    assert data["permissions"] == {"models": ["lucy-2.1", "lucy-restyle-latest"], "origins": ["https://example.com"]}
    assert data["constraints"] == {"realtime": {"maxSessionDuration": 30}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expiresIn": 0}, "expiresIn"),
        ({"expiresIn": 3601}, "expiresIn"),
        ({"expiresIn": "60"}, "expiresIn"),
        ({"allowedModels": "lucy-2.1"}, "allowedModels"),
        ({"allowedModels": ["lucy-9000"]}, "allowedModels"),
        ({"allowedModels": ["lucy-2.1"] * 21}, "allowedModels"),
        ({"allowedOrigins": ["example.com"]}, "allowedOrigins"),
        ({"allowedOrigins": ["https://example.com/path"]}, "allowedOrigins"),
        ({"constraints": {"realtime": {"maxSessionDuration": -5}}}, "maxSessionDuration"),
        ({"constraints": []}, "constraints"),
        ({"metadata": "x"}, "metadata"),
        ([], "body"),
        ("{not json", "body"),
    ],
)
def test_bad_body_is_400_naming_the_field(emulator: EmulatorThread, body: Any, field: str) -> None:
    """Each invalid body field gets 400 {"error": ...} naming that field."""
    resp = post(emulator, body)
    assert resp.status_code == 400
    assert field in resp.json()["error"]


def test_missing_or_wrong_key_is_401(make_emulator: MakeEmulator) -> None:
    """No X-API-KEY, or a key other than --api-key, gets 401 {"error": "Invalid API key"}."""
    emu = make_emulator(api_key="the-real-key")
    for key in (None, "", "not-the-key"):
        resp = post(emu, key=key)
        assert resp.status_code == 401
        assert resp.json() == {"error": "Invalid API key"}
    assert post(emu, key="the-real-key").status_code == 200


def test_client_token_cannot_mint_another(emulator: EmulatorThread) -> None:
    """A client token used as X-API-KEY gets 403 'Cannot create token from client token'."""
    token = post(emulator).json()["apiKey"]
    resp = post(emulator, key=token)
    assert resp.status_code == 403
    assert resp.json() == {"error": "Cannot create token from client token"}


async def test_issued_token_opens_a_session(emulator: EmulatorThread) -> None:
    """A token from issue_token() works as api_key on /v1/stream; the session is logged as a client token."""
    token = emulator.issue_token(expires_in=30)["apiKey"]
    async with await open_ws(emulator.ws_url, key=token) as ws:
        assert (await recv_json(ws))["type"] == "session_id"
    sessions = [e for e in emulator.events if e["event"] == "session"]
    assert sessions[-1]["credential"] == "client token"
    assert token not in str(emulator.events)


async def test_unknown_ek_token_is_an_invalid_key(emulator: EmulatorThread) -> None:
    """A token this emulator never issued is rejected like a wrong key."""
    ws = await open_ws(emulator.ws_url, key="ek_never_issued_by_this_emulator")
    assert await recv_json(ws) == {"type": "error", "error": "Invalid API key"}
    await asyncio.wait_for(ws.wait_closed(), T)


async def test_token_restricted_to_other_models_is_not_allowed(emulator: EmulatorThread) -> None:
    """allowedModels [lucy-2.1]: lucy-latest (its alias) works, lucy-2.5 gets '... not allowed ...' and a close."""
    token = emulator.issue_token(allowed_models=["lucy-2.1"])["apiKey"]
    async with await open_ws(emulator.ws_url, key=token, model="lucy-latest") as ws:
        assert (await recv_json(ws))["type"] == "session_id"
    ws = await open_ws(emulator.ws_url, key=token, model="lucy-2.5")
    error = await recv_json(ws)
    assert error == {"type": "error", "error": "Model lucy-2.5 not allowed for this token"}
    await asyncio.wait_for(ws.wait_closed(), T)
    assert ws.close_code == 1008


async def test_expired_token_is_an_invalid_api_key(emulator: EmulatorThread) -> None:
    """After expiresIn the token gets 'Invalid API key: token expired' (permanent for clients) and a close."""
    token = emulator.issue_token(expires_in=1)["apiKey"]
    expire_tokens(emulator)
    ws = await open_ws(emulator.ws_url, key=token)
    error = await recv_json(ws)
    assert error == {"type": "error", "error": "Invalid API key: token expired"}
    assert "invalid api key" in error["error"].lower()
    await asyncio.wait_for(ws.wait_closed(), T)


async def test_origin_must_match_when_present(emulator: EmulatorThread) -> None:
    """allowedOrigins: a wrong Origin header gets 'Origin not allowed'; no Origin or the right one works."""
    token = emulator.issue_token(allowed_origins=["https://app.example"])["apiKey"]
    ws = await open_ws(emulator.ws_url, key=token, headers={"Origin": "https://evil.example"})
    assert await recv_json(ws) == {"type": "error", "error": "Origin not allowed"}
    await asyncio.wait_for(ws.wait_closed(), T)
    for headers in (None, {"Origin": "https://app.example"}):
        async with await open_ws(emulator.ws_url, key=token, headers=headers) as ws:
            assert (await recv_json(ws))["type"] == "session_id"


async def test_max_session_duration_ends_with_timeout(emulator: EmulatorThread) -> None:
    """constraints.realtime.maxSessionDuration: the server sends generation_ended reason 'timeout' and closes."""
    token = emulator.issue_token(max_session_duration=1)["apiKey"]
    start = time.monotonic()
    ws = await open_ws(emulator.ws_url, key=token)
    ended = await recv_until(ws, "generation_ended")
    assert ended["reason"] == "timeout"
    assert time.monotonic() - start >= 0.9
    await asyncio.wait_for(ws.wait_closed(), T)
    assert ws.close_code == 1000


def test_issue_token_rejects_bad_values(emulator: EmulatorThread) -> None:
    """issue_token() validates like the REST endpoint and raises ValueError naming the field."""
    with pytest.raises(ValueError, match="expiresIn"):
        emulator.issue_token(expires_in=0)
    with pytest.raises(ValueError, match="allowedModels"):
        emulator.issue_token(allowed_models=["nope"])


def test_token_store_expiry_uses_its_clock() -> None:
    """TokenStore checks expiry against its clock: valid before expiresAt, 'token expired' after."""
    now = [1000.0]
    store = TokenStore(clock=lambda: now[0])
    key = store.create("any-key", {"expiresIn": 10})["apiKey"]
    assert store.check_key(key).token is not None
    now[0] = 1010.0
    with pytest.raises(TokenError, match="token expired"):
        store.check_key(key)


def test_signed_token_claims_verify_against_the_jwks(emulator: EmulatorThread) -> None:
    """The JWT is EdDSA-signed with the key the JWKS serves; its claims mirror the request (2026-11 §5)."""
    import jwt

    body = {
        "expiresIn": 120,
        "allowedModels": ["lucy-2.1"],
        "allowedOrigins": ["https://example.com"],
        "constraints": {"realtime": {"maxSessionDuration": 30}},
        "metadata": {"attribution": {"team": "video"}},
    }
    data = post(emulator, body).json()
    with httpx.Client(base_url=emulator.http_url, timeout=T) as client:
        jwks = client.get("/api/auth/jwks").json()
    [key] = jwks["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA" and "d" not in key
    assert jwt.get_unverified_header(data["token"])["kid"] == key["kid"]
    claims = jwt.decode(
        data["token"],
        jwt.PyJWK(key).key,
        algorithms=["EdDSA"],
        issuer="https://platform.decart.ai",
        audience="https://platform.decart.ai",
    )
    expires = datetime.strptime(data["expiresAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert claims["exp"] == int(expires) and claims["sub"] and claims["jti"]
    assert claims["models"] == ["lucy-2.1"] and claims["origins"] == ["https://example.com"]
    assert claims["constraints"] == {"realtime": {"maxSessionDuration": 30}}
    assert claims["attribution"] == {"team": "video"} and claims["service_tier"] == 1


async def test_signed_token_opens_the_stream_like_its_ek_twin(emulator: EmulatorThread) -> None:
    """Both the ek_ key and the JWT of one token open /v1/stream as a client token."""
    issued = emulator.issue_token(allowed_models=["lucy-2.1"])
    for key in (issued["apiKey"], issued["token"]):
        async with await open_ws(emulator.ws_url, key=key) as ws:
            assert (await recv_json(ws))["type"] == "session_id"
    assert [e["credential"] for e in emulator.events if e["event"] == "session"] == ["client token"] * 2
    assert issued["token"] not in str(emulator.events)


def test_emulator_modules_export_what_they_define() -> None:
    """Every emulator module has an explicit __all__ without duplicates whose names all exist."""
    import importlib
    import pkgutil

    import decart_cli.emulator as package
    import decart_cli.emulator.livekit as livekit

    names = [f"decart_cli.emulator.{m.name}" for m in pkgutil.iter_modules(package.__path__) if not m.ispkg]
    names += [f"decart_cli.emulator.livekit.{m.name}" for m in pkgutil.iter_modules(livekit.__path__)]
    for name in names:
        module = importlib.import_module(name)
        exported = module.__all__
        assert len(exported) == len(set(exported)), name
        assert all(hasattr(module, item) for item in exported), name
