"""Client tokens as ``POST /v1/client/tokens`` issues them (decart-protocol.md §6.1, §1.4), and key checks.

Pure bookkeeping (no I/O): the server module turns :class:`TokenError` into HTTP statuses and
WebSocket ``error`` messages. Thread-safe, because :class:`~decart_cli.emulator.server.EmulatorThread`
lets tests call :meth:`TokenStore.issue` from the test thread while the loop thread checks keys.

Each token is issued twice over, as the service does today (decart-protocol-2026-11.md §5): the
opaque ``apiKey`` (``ek_…``, looked up here) and the signed JWT ``token``, verified offline from its
claims. The JWT is signed **EdDSA (Ed25519)** like the platform's, with a key made per emulator;
its public half is served as a JWKS at ``/api/auth/jwks`` so the official SDK's
``tokens.verify(token, jwks_url=…)`` can check it. Claims: ``sub``, ``iss`` = ``aud`` =
``https://platform.decart.ai``, ``iat``, ``exp``, ``jti``, ``organizationId``,
``parent_api_key_id``, ``api_key_name``, ``service_tier``, and when set ``models``, ``origins``,
``constraints``, ``metadata`` (``attribution`` from ``metadata.attribution``). Either form opens
``/v1/stream`` until ``exp``; ``models`` and ``constraints.realtime.maxSessionDuration`` apply to both.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from decart_cli.emulator.names import resolve_model

__all__ = ["Access", "Token", "TokenError", "TokenStore"]

TOKEN_PREFIX: Final = "ek_"
MAX_LIST: Final = 20
MAX_EXPIRES_IN: Final = 3600
DEFAULT_EXPIRES_IN: Final = 60

JWT_ISSUER: Final = "https://platform.decart.ai"  # iss and aud, as the SDK's verify expects
JWT_ALGORITHM: Final = "EdDSA"
JWT_LEEWAY: Final = 0  # the emulator is the gateway: a token ends exactly at exp

INVALID_KEY: Final = "Invalid API key"
EXPIRED: Final = "Invalid API key: token expired"
CLIENT_TOKEN_MINT: Final = "Cannot create token from client token"


class TokenError(Exception):
    """A rejected request: ``status`` is the HTTP status, ``message`` the ``{"error": ...}`` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Token:
    """One issued client token. ``models`` holds canonical model names (``None`` = any model)."""

    key: str
    expires_at: float
    models: frozenset[str] | None = None
    origins: tuple[str, ...] | None = None
    max_session_duration: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never show the key itself
        return f"Token(expires_at={self.expires_at}, models={self.models}, origins={self.origins})"


@dataclass(frozen=True)
class Access:
    """What a credential may do on ``/v1/stream``: ``token`` is set for client tokens."""

    token: Token | None = None

    @property
    def max_session_duration(self) -> int | None:
        """Session length cap in seconds from the token's constraints, if any."""
        return self.token.max_session_duration if self.token else None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _string_list(body: dict[str, Any], name: str) -> list[str] | None:
    if name not in body or body[name] is None:
        return None
    value = body[name]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise TokenError(400, f"{name} must be a list of non-empty strings")
    if len(value) > MAX_LIST:
        raise TokenError(400, f"{name} has {len(value)} entries; at most {MAX_LIST} are allowed")
    return value


def _valid_origin(origin: str) -> bool:
    parts = urlsplit(origin)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
    )


class TokenStore:
    """Issues ``ek_`` tokens and checks the credentials presented to the emulator.

    Args:
        api_key: the only permanent key accepted, or ``None`` to accept any non-empty key.
        clock: wall-clock source (``time.time``), kept as the ``clock`` attribute: every expiry, of an
            ``ek_`` key and of a JWT alike, is judged by it (tests move it forward instead of waiting).
    """

    def __init__(self, api_key: str | None = None, clock: Any = time.time) -> None:
        self._api_key = api_key
        self.clock = clock
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()
        self._signing_key = Ed25519PrivateKey.generate()
        self.key_id = "decart-serve-" + secrets.token_hex(4)
        parent = api_key or "any-key"
        self._parent_id = "key_" + hashlib.sha256(parent.encode()).hexdigest()[:16]

    def __repr__(self) -> str:  # neither the key nor the signing key
        return f"TokenStore(tokens={len(self._tokens)}, key_id={self.key_id!r})"

    def jwks(self) -> dict[str, Any]:
        """The public signing key as a JWKS (``GET /api/auth/jwks``)."""
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(self._signing_key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.key_id, "alg": JWT_ALGORITHM, "use": "sig"}]}

    # -- permanent keys and tokens ----------------------------------------------------------------

    def check_key(self, key: str | None) -> Access:
        """Validate a credential from ``api_key=`` or ``X-API-KEY``.

        Raises:
            TokenError: 401 ``Invalid API key`` (missing, wrong, unknown ``ek_`` token) or
                401 ``Invalid API key: token expired``.
        """
        if not key:
            raise TokenError(401, INVALID_KEY)
        if key.count(".") == 2 and key.startswith("eyJ"):  # a signed client token (JWT)
            return Access(self._verify_jwt(key))
        if key.startswith(TOKEN_PREFIX):
            with self._lock:
                token = self._tokens.get(key)
            if token is None:
                raise TokenError(401, INVALID_KEY)
            if self.clock() >= token.expires_at:
                raise TokenError(401, EXPIRED)
            return Access(token)
        if self._api_key is not None and not secrets.compare_digest(key, self._api_key):
            raise TokenError(401, INVALID_KEY)
        return Access()

    @staticmethod
    def check_model(access: Access, model: str) -> None:
        """Raise ``TokenError(403, ...)`` when a token's ``allowedModels`` excludes ``model`` (canonical)."""
        token = access.token
        if token is not None and token.models is not None and model not in token.models:
            raise TokenError(403, f"Model {model} not allowed for this token")

    @staticmethod
    def check_origin(access: Access, origin: str | None) -> None:
        """Raise ``TokenError(403, "Origin not allowed")`` when the Origin header is present and unlisted."""
        token = access.token
        if token is None or token.origins is None or origin is None:
            return  # non-browser clients send no Origin: defence-in-depth only (§1.4)
        if origin not in token.origins:
            raise TokenError(403, "Origin not allowed")

    # -- minting ------------------------------------------------------------------------------------

    def create(self, key: str | None, body: Any) -> dict[str, Any]:
        """Handle ``POST /v1/client/tokens``: validate the caller's key and the body, issue a token.

        Raises:
            TokenError: 401 bad key, 403 key is itself a client token, 400 bad body (naming the field).
        """
        access = self.check_key(key)
        if access.token is not None:
            raise TokenError(403, CLIENT_TOKEN_MINT)
        if not isinstance(body, dict):
            raise TokenError(400, "request body must be a JSON object")
        return self.issue_from_body(body)

    def issue_from_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """Validate a token request body and issue the token (no key check)."""
        expires_in = body.get("expiresIn", DEFAULT_EXPIRES_IN)
        if expires_in is None:
            expires_in = DEFAULT_EXPIRES_IN
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 1 <= expires_in <= MAX_EXPIRES_IN:
            raise TokenError(400, f"expiresIn must be an integer from 1 to {MAX_EXPIRES_IN} seconds")
        models = _string_list(body, "allowedModels")
        canonical: set[str] = set()
        for name in models or []:
            model = resolve_model(name)
            if model is None:
                raise TokenError(400, f"allowedModels: unknown model {name!r}")
            canonical.add(model.name)
        origins = _string_list(body, "allowedOrigins")
        for origin in origins or []:
            if not _valid_origin(origin):
                raise TokenError(400, f"allowedOrigins: {origin!r} is not a full origin such as https://example.com")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise TokenError(400, "metadata must be an object")
        max_duration = self._max_duration(body.get("constraints"))

        token = Token(
            key=TOKEN_PREFIX + secrets.token_urlsafe(24),
            expires_at=self.clock() + expires_in,
            models=frozenset(canonical) if models is not None else None,
            origins=tuple(origins) if origins is not None else None,
            max_session_duration=max_duration,
            metadata=dict(metadata or {}),
        )
        with self._lock:
            self._tokens[token.key] = token
        signed = self._sign(token, issued_at=self.clock(), constraints=body.get("constraints"))
        response: dict[str, Any] = {"apiKey": token.key, "token": signed, "expiresAt": _iso(token.expires_at)}
        if models is not None or origins is not None:
            permissions: dict[str, list[str]] = {}
            if models is not None:
                permissions["models"] = list(models)
            if origins is not None:
                permissions["origins"] = list(origins)
            response["permissions"] = permissions
        if body.get("constraints") is not None:
            response["constraints"] = body["constraints"]
        return response

    # -- signed tokens --------------------------------------------------------------------------------

    def _sign(self, token: Token, *, issued_at: float, constraints: Any) -> str:
        claims: dict[str, Any] = {
            "sub": "user_decart_serve",
            "iss": JWT_ISSUER,
            "aud": JWT_ISSUER,
            "iat": int(issued_at),
            "exp": int(token.expires_at),
            "jti": "tok_" + secrets.token_hex(8),
            "organizationId": "org_decart_serve",
            "parent_api_key_id": self._parent_id,
            "api_key_name": "decart serve",
            "service_tier": 1,
        }
        if token.models is not None:
            claims["models"] = sorted(token.models)
        if token.origins is not None:
            claims["origins"] = list(token.origins)
        if constraints is not None:
            claims["constraints"] = constraints
        if token.metadata:
            claims["metadata"] = token.metadata
            attribution = token.metadata.get("attribution")
            if isinstance(attribution, dict):
                claims["attribution"] = attribution
        return jwt.encode(claims, self._signing_key, algorithm=JWT_ALGORITHM, headers={"kid": self.key_id})

    def _verify_jwt(self, text: str) -> Token:
        """The token a JWT stands for, from its verified claims.

        Raises:
            TokenError: 401 ``Invalid API key: token expired`` past ``exp``; 401 ``Invalid API key``
                for a bad signature, issuer, audience or claim.
        """
        try:
            claims = jwt.decode(
                text,
                self._signing_key.public_key(),
                algorithms=[JWT_ALGORITHM],
                issuer=JWT_ISSUER,
                audience=JWT_ISSUER,
                # exp is checked below against this store's clock, the one ek_ keys expire by
                options={"require": ["exp", "sub", "iss", "aud"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise TokenError(401, INVALID_KEY) from None
        if not isinstance(claims["exp"], int | float):
            raise TokenError(401, INVALID_KEY)
        if self.clock() >= claims["exp"] + JWT_LEEWAY:
            raise TokenError(401, EXPIRED)
        models = claims.get("models")
        origins = claims.get("origins")
        try:
            max_duration = self._max_duration(claims.get("constraints"))
        except TokenError:
            raise TokenError(401, INVALID_KEY) from None
        return Token(
            key="",  # a JWT is not kept: it stands for itself
            expires_at=float(claims["exp"]),
            models=frozenset(models) if isinstance(models, list) else None,
            origins=tuple(origins) if isinstance(origins, list) else None,
            max_session_duration=max_duration,
            metadata=dict(claims.get("metadata") or {}),
        )

    @staticmethod
    def _max_duration(constraints: Any) -> int | None:
        if constraints is None:
            return None
        if not isinstance(constraints, dict):
            raise TokenError(400, "constraints must be an object")
        realtime = constraints.get("realtime")
        if realtime is None:
            return None
        if not isinstance(realtime, dict):
            raise TokenError(400, "constraints.realtime must be an object")
        value = realtime.get("maxSessionDuration")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TokenError(400, "constraints.realtime.maxSessionDuration must be a positive integer (seconds)")
        return value
