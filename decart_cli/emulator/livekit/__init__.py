"""The LiveKit stand-in of ``decart serve``: just enough of a LiveKit SFU for one client and one model.

Served on the emulator's own port (``livekit_url`` = ``ws://HOST:PORT``), as livekit-local.md describes:

    signal   pure: join requests (v0 query, v1 ``join_request``), JoinResponse / ParticipantInfo /
             TrackInfo builders, and :class:`~signal.SignalProtocol`, a sans-I/O map from each
             ``SignalRequest`` to replies and peer actions (ping/pong, add_track, trickle, leave …).
    sdp      pure SDP edits: RID header extensions copied into answers (simulcast offers).
    tokens   LiveKit access tokens minted and verified with ``livekit-api`` (emulator-local key).
    peer     aiortc peer connections: trickle buffered until the offer, a fixed-REMB estimator,
             transceiver choice and ``PA_x|TR_y`` stream ids, the output track's sender.
    room     one room per LiveKit-era session: the client participant, ``inference-server-<n>``,
             its output track published / unpublished / published again, failure (``--lk-drop-after``).
    rtc      the aiohttp handlers of ``/rtc``, ``/rtc/v1`` and their ``/validate``: a thin pump
             between the WebSocket, :class:`~signal.SignalProtocol` and the peers.

The stand-in's ``livekit``/aiortc objects never leave this package and :mod:`decart_cli.emulator`.
"""
