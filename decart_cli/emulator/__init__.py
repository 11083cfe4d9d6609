"""A faithful local emulator of Decart's realtime API (``decart serve``). Never imports commands.

Modules:
    server       :class:`Emulator` (current loop) and :class:`EmulatorThread` (own loop): the aiohttp app
                 (``/v1/stream``, ``POST /v1/client/tokens``, ``/api/auth/jwks``, the LiveKit stand-in's
                 ``/rtc`` routes) on one port; connection checks.
    session      one ``/v1/stream`` connection of either era: state, acks, ticks, faults, shutdown.
    direct       the direct era's media: an aiortc answerer on the control socket.
    livekit_era  the LiveKit era on the control socket: join, queue, room info, restarts.
    livekit/     the LiveKit stand-in: signalling, SDP edits, tokens, peers, rooms, /rtc handlers.
    media        the processed output track, the input relay, a synthetic input, an audio sink.
    viewer       ``/subscribe/{session_id}``: receive-only viewers of a running session.
    model        the prompt-driven frame "model" on I420 planes (keeps the latency marker).
    tokens       client tokens (``ek_…`` and signed JWTs) and key checks.
    faults       scripted faults per connection.   options  :class:`EmulatorConfig`, output sizes.
    names        model names accepted on ``model=``.   events   the event log.
    runner       foreground run until SIGINT/SIGTERM.   bench    end-to-end measurement script.

Importing this package is cheap; aiohttp/aiortc/cv2/livekit load with ``decart_cli.emulator.server``.
"""
