"""A faithful local emulator of Decart's realtime API (``decart serve``). Never imports commands.

Modules:
    server   :class:`Emulator` (current loop) and :class:`EmulatorThread` (own loop): aiohttp app with
             WebSocket ``/v1/stream`` and ``POST /v1/client/tokens`` on one port; connection checks.
    session  one ``/v1/stream`` connection: acks, aiortc answerer, ticks, faults, shutdown.
    media    the processed output track, a synthetic input for receive-only offers, an audio sink.
    viewer   ``/subscribe/{session_id}``: receive-only viewers of a running session.
    model    the prompt-driven frame "model" on I420 planes (keeps the latency marker unchanged).
    tokens   client tokens (``ek_…``) and key checks.      faults   scripted faults per connection.
    options  :class:`EmulatorConfig` and output sizes.     names    model names accepted on ``model=``.
    events   the event log (dicts for tests, one log line per event for humans).
    runner   foreground run until SIGINT/SIGTERM.           bench    end-to-end measurement script.

Importing this package is cheap; aiohttp/aiortc/cv2 load with ``decart_cli.emulator.server``.
"""
