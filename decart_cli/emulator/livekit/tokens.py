"""LiveKit access tokens of the stand-in, minted and verified with ``livekit-api``.

The API key and secret are random per emulator and never leave the process: a token is only good
for the ``decart serve`` that minted it. The client presents it as ``Authorization: Bearer`` (or the
older ``access_token`` query parameter), livekit-local.md §4.2.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from typing import Final

__all__ = ["AccessError", "LiveKitKeys", "RoomAccess"]

TOKEN_TTL: Final = datetime.timedelta(hours=6)


class AccessError(Exception):
    """A missing, malformed, expired or foreign access token (``status`` is the HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class RoomAccess:
    """What a verified token grants: ``identity`` may join ``room``."""

    identity: str
    room: str


class LiveKitKeys:
    """The emulator's LiveKit API key and secret (random, process-local).

    The secret is never shown: not in a repr, not in a log line.
    """

    def __init__(self) -> None:
        self.api_key = "APIdecartserve" + secrets.token_hex(4)
        self._secret = secrets.token_urlsafe(32)

    def __repr__(self) -> str:
        return f"LiveKitKeys(api_key={self.api_key!r}, secret='***')"

    def mint(self, identity: str, room: str) -> str:
        """A join token for ``identity`` in ``room`` (publish, subscribe and data allowed)."""
        from livekit.api import AccessToken, VideoGrants

        grants = VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True, can_publish_data=True)
        token = AccessToken(self.api_key, self._secret).with_identity(identity).with_name(identity)
        return token.with_grants(grants).with_ttl(TOKEN_TTL).to_jwt()

    def verify(self, authorization: str | None, query_token: str | None = None) -> RoomAccess:
        """Check ``Authorization: Bearer <jwt>`` (or the ``access_token`` query value).

        Raises:
            AccessError: 401 when the token is missing, malformed, expired, signed by another key,
                or grants no room join.
        """
        from livekit.api import TokenVerifier

        token = None
        if authorization and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        token = token or query_token
        if not token:
            raise AccessError(401, "no access token (Authorization: Bearer <token>)")
        try:
            claims = TokenVerifier(self.api_key, self._secret).verify(token)
        except Exception as exc:  # pyjwt raises a family of errors; all mean "not ours / not valid"
            raise AccessError(401, f"invalid access token: {type(exc).__name__}") from None
        video = claims.video
        if video is None or not video.room_join or not video.room or not claims.identity:
            raise AccessError(401, "the access token grants no room join")
        return RoomAccess(identity=claims.identity, room=video.room)
