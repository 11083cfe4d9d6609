"""decart: stream a camera into Decart's realtime video models from the terminal."""

__version__ = "0.1.0"

__all__ = ["__version__"]
