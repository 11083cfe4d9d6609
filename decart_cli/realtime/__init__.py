"""The realtime client library: one session driver (:mod:`.session`) over the media transports.

Importing this package loads the session driver only; each media transport is imported when a
session uses it.
"""

from decart_cli.realtime.session import RealtimeSession, SessionConfig

__all__ = ["RealtimeSession", "SessionConfig"]
