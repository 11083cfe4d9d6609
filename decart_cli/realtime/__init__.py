"""The realtime client library: one session driver (:mod:`.session`) over two media transports.

Importing this package loads the session driver only; each media transport (:mod:`.direct`,
:mod:`.livekit`) is imported when a session uses it (:func:`.transport.create`).
"""

from decart_cli.realtime.config import SessionConfig
from decart_cli.realtime.session import RealtimeSession

__all__ = ["RealtimeSession", "SessionConfig"]
