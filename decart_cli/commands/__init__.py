"""One module per command. Each exposes ``register(app)``; heavy imports stay inside functions."""
