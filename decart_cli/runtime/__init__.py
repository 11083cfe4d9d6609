"""The stream runner (:mod:`.runner`) and what it drives: prompt updates and input (:mod:`.input`),
its state as shown to the user (:mod:`.view`)."""

from decart_cli.runtime.runner import StreamOptions, StreamOutcome, StreamRunner

__all__ = ["StreamOptions", "StreamOutcome", "StreamRunner"]
